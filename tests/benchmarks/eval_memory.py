"""Does the piano's memory bring its themes back? Structure of generated pieces per --memory.

    python tests/benchmarks/eval_memory.py [--model piano] [--memory 0 0.5 1] [--pieces 24]
        [--seconds 30] [--reference ../shared/corpus/piano/hannds --reference-files 11]

For each memory level, ``--pieces`` pieces of ``--seconds`` from the shipped piano model
(package defaults otherwise, seeds 1..N), and 30 s excerpts of the reference files (by default
the validation files of data/recipes/fit_memory.py's split: never the files a figure is
claimed on), through melodia's encoding round trip; per row: motif recurrence (the top line's
4-interval windows whose pattern recurs) as mean, sd, pieces above 0.6 and pieces at 0; rhythm
recurrence; notes per second; generation speed (events/s, batch 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def row(label: str, stats: list[dict], speed: float | None = None) -> str:
    motif = np.array([s["motif_recurrence"] for s in stats], float)
    rhythm = np.array([s["rhythm_recurrence"] for s in stats], float)
    density = np.array([s["note_density"] for s in stats], float)
    fast = "" if speed is None else f" {speed:9.0f}"
    return (f"{label:14s} {len(stats):4d} {np.nanmean(motif):6.3f} ± {np.nanstd(motif):5.3f} "
            f"{int(np.sum(motif > 0.6)):5d} {int(np.sum(motif == 0)):5d} "
            f"{np.nanmean(rhythm):7.3f} {np.nanmean(density):7.2f}{fast}")


def main() -> int:
    import runpy

    split = runpy.run_path(str(ROOT / "data/recipes/fit_memory.py"))["split"]
    from melodia.evaluate.music import excerpt_stats, file_excerpts, score_notes
    from melodia.generation.config import GenerateConfig
    from melodia.generation.generator import generate_ids

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="piano", help="a shipped name or a checkpoint")
    p.add_argument("--memory", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--pieces", type=int, default=24)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--reference", type=Path, default=ROOT.parent / "shared/corpus/piano/hannds")
    p.add_argument("--reference-files", type=int, default=11)
    p.add_argument("--lean", type=float, nargs="+", default=[None],
                   help="the gate's sampling lean (logits added at memory 1, times the memory; "
                   "default the shipped gate's)")
    p.add_argument("--run-cap", type=int, nargs="+", default=[None],
                   help="the loop guard: events copied in a row before the memory fades "
                   "(default the shipped gate's)")
    args = p.parse_args()
    import dataclasses

    from melodia.model.memory import gate_for
    from melodia.model.registry import load_model

    shipped = load_model(args.model)
    print(f"{'':14s} {'n':>4s} {'motif mean ± sd':>15s} {'>0.6':>5s} {'=0':>5s} "
          f"{'rhythm':>7s} {'notes/s':>7s} {'events/s':>9s}")
    settings = [(m, lean, cap) for m in args.memory for lean in args.lean for cap in args.run_cap]
    for memory, lean, cap in settings:
        gate = gate_for(shipped).to_dict()
        gate.update(lean=gate["lean"] if lean is None else lean,
                    run_cap=cap or gate["run_cap"])
        piano = dataclasses.replace(shipped, extra={**shipped.extra, "memory": gate})
        stats, events, seconds = [], 0, 0.0
        for seed in range(1, args.pieces + 1):
            config = GenerateConfig(seconds=args.seconds, seed=seed, memory=memory)
            t0 = time.perf_counter()
            made = generate_ids(piano, config)
            seconds += time.perf_counter() - t0
            events += sum(len(piece) - made.primer_events for piece in made.pieces)
            stats.append(excerpt_stats(score_notes(made.scores()[0]), args.seconds))
        label = (f"m {memory:g}" + ("" if lean is None else f" lean {lean:g}")
                 + (f" cap {cap}" if cap else ""))
        print(row(label, stats, events / seconds), flush=True)
    _, valid = split(sorted(args.reference.glob("*.mid")))
    reference = [excerpt_stats(ex) for path in valid[: args.reference_files]
                 for ex in file_excerpts(path, excerpt_s=30.0)]
    print(row("real (valid.)", reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
