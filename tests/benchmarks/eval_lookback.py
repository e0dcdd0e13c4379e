"""Do the bar lookback inputs carry the groove of real band music?

    PYTHONPATH=. python tests/benchmarks/eval_lookback.py [FOLDER] [--min-drums 50]

For every MIDI file of FOLDER (default: the committed Freedoom files) with at least
``--min-drums`` drum hits: the share of drum hits whose kind the lag-1 window at their own beat
holds (:mod:`melodia.features.lookback`), and the same with the hits moved to random beats of
the piece (a groove that never returns); and for files with a bass (> 20 notes), the share of
bass notes whose pitch class the window holds. Prints medians and quartiles over the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from melodia.features.lookback import features_of, lookback_rows
from melodia.midi.instruments import DRUMS
from tests.conftest import DATA
from tests.features.test_lookback import _drums_foreseen, _onsets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", type=Path, default=DATA / "freedoom")
    p.add_argument("--min-drums", type=int, default=50)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    real, moved, bass = [], [], []
    for path in sorted(args.folder.glob("*.mid")):
        beats, instruments, pitches = _onsets(path)
        if (instruments == DRUMS).sum() >= args.min_drums:
            real.append(_drums_foreseen(beats, instruments, pitches))
            moved.append(_drums_foreseen(rng.uniform(beats.min(), beats.max(), len(beats)),
                                         instruments, pitches))
        kinds = features_of(instruments, pitches)
        notes = np.flatnonzero((instruments >= 32) & (instruments < 40))
        if len(notes) > 20:
            bass.append(float(lookback_rows(beats, kinds, beats)[notes, kinds[notes]].mean()))
    for name, values in (("drum hits, real", real), ("drum hits, moved at random", moved),
                         ("bass pitch classes, real", bass)):
        q1, med, q3 = np.percentile(values, [25, 50, 75]) if values else (np.nan,) * 3
        print(f"{name:>28}: {len(values):3d} files, median {med:.2f} (IQR {q1:.2f}-{q3:.2f})")


if __name__ == "__main__":
    main()
