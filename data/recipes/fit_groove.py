"""Learn the band's plan of what returns: ``melodia/weights/band_groove.json``.

    python data/recipes/fit_groove.py CORPUS [--out melodia/weights/band_groove.json]
        [--calibrate] [--strengths 3,6,10] [--seeds 2]

CORPUS is the band corpus of ``data/band/make_corpus.py`` (``<style>/*.mid`` and
``splits.csv``). Only its **train** files are counted: for every part of every file, the
relation of each bar to the bar 1, 2, 4 or 8 back most like it
(:func:`melodia.features.groove.bar_relations`), as a Markov chain per style and part group.

``--calibrate`` then chooses the copy prior's strength per part group on the **validation**
files: the mean similarity of the validation files' returning bars to their source bar is the
target; pieces generated with the shipped band model (each strength, every style, ``--seeds``
seeds, 30 s, line-up and tempo drawn from the style's files) are measured the same way (each
planned bar against its source bar), and the strength nearest the target is kept. Test files
are never read.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from melodia.features.groove import GrooveTable, bar_relations, bar_sets, jaccard, relations
from melodia.midi import read_midi
from melodia.midi.instruments import group_of

GROUPS = ("drums", "bass", "guitar", "keys", "strings", "winds", "synth", "other")


def split_files(corpus: Path, split: str) -> list[tuple[str, Path]]:
    """``(style, path)`` of the corpus's files in ``split``."""
    with open(corpus / "splits.csv", newline="") as f:
        return [(row["midi_filename"].split("/")[0], corpus / row["midi_filename"])
                for row in csv.DictReader(f) if row["split"] == split]


def parts(path: Path) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """``(group, notes)`` of every track with notes, and the file's tempo map."""
    score = read_midi(path)
    out = [("drums" if t.is_drum else group_of(t.program), t.notes)
           for t in score.tracks if len(t.notes)]
    return out, score.tempos


def fit(files: list[tuple[str, Path]]) -> GrooveTable:
    """Count the bar relations of every part of ``files``."""
    table = GrooveTable()
    for style, path in files:
        tracks, tempos = parts(path)
        for group, notes in tracks:
            bars = bar_sets(notes, tempos)
            table.add(style, group, relations(bars))
            table.add_presence(style, group, bars)
    return table


def returning_similarity(files: list[tuple[str, Path]]) -> dict[str, float]:
    """Per group: the mean similarity of the files' returning bars to their source bar."""
    sums: dict[str, list[float]] = defaultdict(list)
    for _, path in files:
        tracks, tempos = parts(path)
        for group, notes in tracks:
            sums[group] += [s for k, s in bar_relations(notes, tempos) if k]
    return {g: float(np.mean(v)) for g, v in sums.items() if v}


def _piece_similarity(job: tuple[dict, float, str, int]) -> list[tuple[str, float]]:
    """``(group, similarity)`` of each planned bar of one generated piece to its source bar
    (where the source bar has notes: an empty one leaves nothing to lean on)."""
    from melodia.generation import groove  # torch: only for --calibrate
    from melodia.generation.config import GenerateConfig
    from melodia.generation.generator import generate_ids

    data, strength, style, seed = job
    table = GrooveTable.from_dict(data)
    table.strength = {g: strength for g in GROUPS}
    result = generate_ids("band", GenerateConfig(seconds=30.0, seed=seed, style=style),
                          groove=table)
    score = result.scores()[0]
    qpm, instruments = result.band["qpm"], result.band["instruments"]
    bars = int(np.ceil(30.0 * qpm / 240.0)) + 1
    plan = groove.draw_plans(table, result.band["style"], instruments, bars, 1, seed, None)[0]
    out = []
    for track in score.tracks:
        i = 128 if track.is_drum else track.program
        sets = bar_sets(track.notes, score.tempos)
        out += [(group_of(i), jaccard(sets[n], sets[n - k]))
                for n, k in enumerate(plan.get(i, [])) if k and n < len(sets) and sets[n - k]]
    return out


def generated_similarity(table: GrooveTable, strength: float, styles: list[str],
                         seeds: int, workers: int = 2) -> dict[str, list[float]]:
    """Per group: each planned bar's similarity to its source bar in generated pieces."""
    jobs = [(table.to_dict(), strength, style, seed) for style in styles
            for seed in range(100, 100 + seeds)]
    out: dict[str, list[float]] = defaultdict(list)
    with Pool(workers) as pool:
        for piece in pool.map(_piece_similarity, jobs):
            for group, similarity in piece:
                out[group].append(similarity)
    return out


def calibrate(table: GrooveTable, corpus: Path, strengths: list[float], seeds: int) -> None:
    """Set ``table.strength`` per group to the strength whose generated similarity is nearest
    the validation files' (see the module's text)."""
    target = returning_similarity(split_files(corpus, "validation"))
    styles = sorted({s for s, _ in split_files(corpus, "train")})
    measured = {s: generated_similarity(table, s, styles, seeds) for s in strengths}
    chosen = {}
    for group, want in sorted(target.items()):
        got = {s: float(np.mean(m[group])) for s, m in measured.items() if m.get(group)}
        print(f"{group:8s} validation {want:.3f}; generated "
              + ", ".join(f"{s:g}: {v:.3f}" for s, v in got.items()))
        if got:
            chosen[group] = min(got, key=lambda s: abs(got[s] - want))
    table.strength = chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", type=Path)
    p.add_argument("--out", type=Path, default=Path("melodia/weights/band_groove.json"))
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--strengths", default="3,6,10")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--strengths-from", type=Path, default=None,
                   help="keep the calibrated strengths of this table instead of calibrating")
    args = p.parse_args(argv)
    table = fit(split_files(args.corpus, "train"))
    for style in sorted(table.transitions):
        print(style, " ".join(f"{g}={table.return_share(style, g):.2f}"
                              for g in sorted(table.transitions[style])))
    if args.strengths_from:
        table.strength = GrooveTable.load(args.strengths_from).strength
    if args.calibrate:
        calibrate(table, args.corpus, [float(s) for s in args.strengths.split(",")], args.seeds)
    table.save(args.out)
    print(f"wrote {args.out}: strengths {table.strength}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
