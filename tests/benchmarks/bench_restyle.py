"""How long restyle takes on a 3-minute song (issue 36's goal: under 60 s on this 2-core CPU).

    python tests/benchmarks/bench_restyle.py [--threads 1] [--styles swing,metal,funk]

The song: Freedoom's D_E1M4 (doom1, BSD; 4 min 15 s), its first 180 s. Each style restyles it
with the package defaults (its own line-up, drawn by seed 1) after one warm-up run that loads
the model; the figure is the wall time of ``restyle_ids``. Run it with nothing else on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.eval_accompany import crop  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--styles", default="swing,metal,funk")
    p.add_argument("--seconds", type=float, default=180.0)
    args = p.parse_args()

    import torch

    from melodia.generation.config import GenerateConfig
    from melodia.generation.restyle import restyle_ids
    from melodia.midi import midi_bytes, read_midi

    torch.set_num_threads(args.threads)
    song = midi_bytes(crop(read_midi(ROOT / "data/midi/freedoom/doom1_D_E1M4.mid"), args.seconds))
    restyle_ids("band", song, GenerateConfig(seed=1, style="swing", lineup="drums,bass"))
    for style in args.styles.split(","):
        start = time.perf_counter()
        result = restyle_ids("band", song, GenerateConfig(seed=1, style=style))
        print(f"{style}: {time.perf_counter() - start:.1f} s for a {result.result.end_s:.0f} s "
              f"song ({', '.join(result.band['names'])}), {args.threads} thread(s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
