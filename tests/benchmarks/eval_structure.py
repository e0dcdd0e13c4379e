"""Does band music come back? Bar return and 16th-grid share per instrument group, two folders.

Each file is read, round-tripped through the band encoding and cut into ``--excerpt-seconds``
excerpts (``melodia.evaluate.band.measure_band_file``); the table gives, per group, the mean
over excerpts of ``bar_return`` (share of bars whose 16th-grid notes have Jaccard >= 0.8 with an
earlier bar of the same part) and ``grid16`` (share of onsets within 20 ms of the 16th grid).

    for s in metal funk; do for i in 1 2 3 4; do
        melodia generate --model band --style $s --seconds 30 --seed $i -o gen/$s-$i.mid; done; done
    python tests/benchmarks/eval_structure.py gen data/midi/freedoom
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

STATS = ("bar_return", "grid16")


def group_means(folder: Path, excerpt_s: float) -> dict[tuple[str, str], float]:
    from melodia.evaluate.band import BandEvalConfig, measure_band_file, stat_names

    values: dict[tuple[str, str], list[float]] = {}
    for path in sorted(folder.rglob("*.mid")):
        measured = measure_band_file(path, BandEvalConfig(excerpt_s=excerpt_s))
        for group, excerpts in measured.groups.items():
            names = stat_names(group)
            for stat in STATS:
                values.setdefault((group, stat), []).extend(excerpts.values[:, names.index(stat)])
    return {k: float(np.nanmean(v)) for k, v in values.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("generated", type=Path)
    ap.add_argument("reference", type=Path)
    ap.add_argument("--excerpt-seconds", type=float, default=30.0)
    a = ap.parse_args()
    gen = group_means(a.generated, a.excerpt_seconds)
    ref = group_means(a.reference, a.excerpt_seconds)
    print(f"{'group':8s} " + "  ".join(f"{s + ' gen':>14s} {s + ' ref':>14s}" for s in STATS))
    for group in ("drums", "bass", "guitar", "keys", "all"):
        cells = [f"{gen.get((group, s), float('nan')):14.3f} {ref.get((group, s), float('nan')):14.3f}"
                 for s in STATS]
        print(f"{group:8s} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
