"""Infill on real band files the model never saw: do the filled bars join the music around them?

    python tests/benchmarks/eval_infill.py [--set test|validation] [--mma DIR] [--bars 5-8]
        [--candidates 4] [--randomness R] [--lean 10] [--json OUT.json]

For every file with drums, a bass and other parts (the files of ``eval_accompany.py``, same
split), bars ``--bars`` are filled twice: the bass and drums only (the other tracks given), and
every track. Each fill's seams (bar distance, ``1 - Jaccard`` of the (instrument, 16th, pitch)
sets, from the bar before the span to its first bar and from its last bar to the bar after) are
set beside:

- **real range**: the distances between neighbouring bars of the same tracks over the whole
  file as it was (median and 90th percentile): the goal is seams within it;
- **real seams**: the same two seams of the file as it was (its own bars at the span);
- **one candidate**: the seams of the first candidate alone (what choosing among
  ``--candidates`` fills adds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_accompany import crop, files, split  # noqa: E402


def _mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def main() -> int:
    from melodia.evaluate.accompaniment import bar_neighbours, seam_distances
    from melodia.generation.config import GenerateConfig
    from melodia.generation.infill import infill_ids
    from melodia.midi import midi_bytes, read_midi

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=("test", "validation"), default="validation")
    p.add_argument("--mma", type=Path, default=None)
    p.add_argument("--bars", default="5-8")
    p.add_argument("--seconds", type=float, default=60.0, help="each file's first seconds")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--randomness", type=float, default=None)
    p.add_argument("--lean", type=float, default=10.0, help="the copy prior strength (0: off)")
    p.add_argument("--model", default="band")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    rows, elapsed = [], 0.0
    for path, style in files(args.set, args.mma):
        score = crop(read_midi(path), args.seconds)
        drums, bass, rest = split(score)
        if not (drums and bass and rest):
            continue
        song = midi_bytes(score)
        score = read_midi(song)
        names = sorted({t.name for t in drums + bass if t.name})
        for label, spec in (("bass+drums", ",".join(names) or "bass,drums"), ("all", None)):
            start = time.perf_counter()
            result = infill_ids(args.model, song, args.bars, spec, GenerateConfig(
                seed=1, style=style, randomness=args.randomness), args.candidates,
                lean=args.lean)
            elapsed += time.perf_counter() - start
            t0, t1 = result.span
            tracks = [score.tracks[i] for i in result.tracks]
            real = bar_neighbours(tracks, score)
            row = {"file": path.name, "tracks": label, "seams": result.seams[result.chosen],
                   "one candidate": result.seams[0],
                   "real seams": seam_distances(tracks, score, t0, t1),
                   "real median": float(np.median(real)) if len(real) else math.nan,
                   "real p90": float(np.percentile(real, 90)) if len(real) else math.nan}
            rows.append(row)
            print(f"{path.name:28s} {label:10s} seams {_fmt(row['seams'])} one {_fmt(row['one candidate'])}"
                  f" real seams {_fmt(row['real seams'])} real range median "
                  f"{row['real median']:.3f} p90 {row['real p90']:.3f}", flush=True)
    seams = [s for r in rows for s in r["seams"] if not math.isnan(s)]
    within = [s <= r["real p90"] + 1e-9 for r in rows for s in r["seams"] if not math.isnan(s)]
    summary = {"fills": len(rows), "seam mean": _mean(seams),
               "one-candidate seam mean": _mean([s for r in rows for s in r["one candidate"]]),
               "real seam mean": _mean([s for r in rows for s in r["real seams"]]),
               "real neighbour median": _mean([r["real median"] for r in rows]),
               "real neighbour p90": _mean([r["real p90"] for r in rows]),
               "seams within real p90": f"{sum(within)}/{len(within)}",
               "seconds per fill": elapsed / max(len(rows), 1)}
    print(f"\n{len(rows)} fills ({args.set}, bars {args.bars}, {args.candidates} candidates, "
          f"lean {args.lean}): "
          f"seam {summary['seam mean']:.3f} (one candidate {summary['one-candidate seam mean']:.3f}"
          f"); real seams {summary['real seam mean']:.3f}, real neighbours median "
          f"{summary['real neighbour median']:.3f} p90 {summary['real neighbour p90']:.3f}; "
          f"seams within the file's real p90: {summary['seams within real p90']}; "
          f"{summary['seconds per fill']:.1f} s per fill")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


def _fmt(pair) -> str:
    return "/".join("  -  " if math.isnan(v) else f"{v:.3f}" for v in pair)


if __name__ == "__main__":
    raise SystemExit(main())
