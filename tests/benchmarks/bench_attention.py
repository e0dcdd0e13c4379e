"""Batch-1 generation speed of the attention family beside the shipped LSTM, as a user gets it.

Each model plays ``--events`` events through ``melodia.iter_events`` (sampler, grammar, note
state and controls included, one torch thread, as ``melodia generate`` runs), and the script
prints events/s over events 1,000-2,000 and over the last 1,000, their ratio (a KV cache with a
sliding window should keep it near 1), and how much the resident memory grew from event 1,000
to the end. Transformers are built at the given sizes with random weights (speed does not depend
on what a model learned) and the piano model's inputs (controls and note state).

    python tests/benchmarks/bench_attention.py                       # 11,000 events
    python tests/benchmarks/bench_attention.py --events 40000 --sizes 4x256:512 6x512:1024
    python tests/benchmarks/bench_attention.py --sizes 4x256:512 attention-rnn/2x512:256
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Resident set size now, MB (Linux /proc; falls back to the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def transformer(size: str, folder: Path) -> Path:
    """A random model ``[KIND/]LAYERSxWIDTH:CONTEXT`` (a transformer unless KIND says
    ``attention-rnn``) with the shipped piano model's inputs."""
    import torch

    from melodia.encoding import get_encoding
    from melodia.model.checkpoint import save_checkpoint
    from melodia.model.config import ModelConfig
    from melodia.model.families import make_model
    from melodia.model.registry import load_model

    kind, _, size = size.rpartition("/")
    kind = kind or "transformer"
    shape, context = size.split(":")
    layers, width = (int(x) for x in shape.split("x"))
    piano = load_model("piano").model_config
    torch.manual_seed(0)
    model = make_model(ModelConfig(kind=kind, embed_dim=width, hidden_size=width,
                                   num_layers=layers, num_heads=max(1, width // 64),
                                   context=int(context), dropout=0.0,
                                   control_dim=piano.control_dim, state_dim=piano.state_dim))
    return save_checkpoint(folder / f"{kind}-{layers}x{width}-{context}.pt", model,
                           get_encoding("piano"), step=0)


def measure(model, events: int) -> dict:
    from melodia.generation.generator import iter_events

    stream = iter_events(model, seed=1)
    marks, memory = {}, {}
    start = time.perf_counter()
    for i in range(1, events + 1):
        next(stream)
        if i in (1000, 2000, events - 1000, events):
            marks[i] = time.perf_counter()
            memory[i] = rss_mb()
    early = 1000 / (marks[2000] - marks[1000])
    late = 1000 / (marks[events] - marks[events - 1000])
    return {"early": early, "late": late, "ratio": late / early,
            "grew_mb": memory[events] - memory[1000], "total_s": marks[events] - start}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=11000)
    ap.add_argument("--sizes", nargs="+", default=["4x256:512", "4x256:1024"],
                    help="models as [KIND/]LAYERSxWIDTH:CONTEXT (KIND: transformer, the "
                         "default, or attention-rnn)")
    a = ap.parse_args()
    if a.events < 3000:
        ap.error("--events must be >= 3000")
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("shipped piano LSTM", "piano")]
        models += [(s if "/" in s else f"transformer {s}", str(transformer(s, Path(tmp))))
                   for s in a.sizes]
        for name, model in models:
            r = measure(model, a.events)
            rows.append((name, r))
            print(f"{name:28s} events 1,000-2,000: {r['early']:7,.0f}/s   last 1,000: "
                  f"{r['late']:7,.0f}/s   ratio {r['ratio']:.2f}   memory +{r['grew_mb']:.1f} MB "
                  f"({a.events:,} events in {r['total_s']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
