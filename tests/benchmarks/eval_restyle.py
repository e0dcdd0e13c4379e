"""Restyle songs the band model never trained on into every style it knows; measure issue 36.

    python tests/benchmarks/eval_restyle.py [--corpus runs/band-default/src]
        [--mma ../shared/corpus/band/mma] [--set test|validation] [--files 8] [--seconds 30]
        [--seed 1] [--out runs/restyle-eval] [--json FIGURES.json]

Songs: Freedoom's tracks of the band model's test split and the MMA example songs of the test
half (both as ``eval_accompany.py`` splits them), their first ``--seconds``, taking turns between
the two sources until ``--files`` songs in which restyle finds a melody. Each song is restyled
into every style with the package defaults (the style's feel and a line-up of its own, drawn by
``--seed``), one thread, and measured:

- **style**: a classifier trained on the band corpus's *train* files by style (``--corpus``, the
  output of ``data/band/make_corpus.py``) names the asked style (goal >= 70%; confusion table);
- **harmony**: the new pitched parts' harmonic agreement with the original's pitched music (all
  its tracks), against the original's own accompaniment (each of its pitched tracks other than
  the melody against the rest) and a broken link (the new parts 1..11 semitones up and half a
  beat late); goals >= 0.8 x the original's, >= 1.5 x the broken link's;
- **melody**: every pitch kept in order, and the largest onset move in beats (the feel moves an
  off-beat eighth by 1/6 beat);
- **bars that return** in the new drums and bass (issue 33's measure) beside the songs' own;
- **speed**: seconds of work per minute of song (goal: a 3-minute song in under 60 s).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.eval_accompany import crop, files  # noqa: E402


def songs(which: str, mma: Path | None, count: int, seconds: float) -> list[tuple[str, object]]:
    """``count`` songs (name, cropped score) with a melody restyle finds, taking turns between
    Freedoom and MMA."""
    from melodia.errors import GenerateError
    from melodia.generation.restyle import find_melody
    from melodia.midi import midi_bytes, read_midi

    pool = files(which, mma)
    by_source = [[p for p, s in pool if s == "metal"], [p for p, s in pool if s is None]]
    order = [p for pair in zip(*by_source) for p in pair]
    order += [p for p in by_source[0] + by_source[1] if p not in order]
    out = []
    for path in order:
        score = read_midi(midi_bytes(crop(read_midi(path), seconds)))  # as restyle reads it
        try:
            find_melody(score)
        except GenerateError:
            continue
        out.append((path.stem, score))
        if len(out) == count:
            break
    return out


def harmony_figures(original, melody: list[int], new) -> dict[str, float]:
    from melodia.evaluate.accompaniment import broken_link, harmonic_agreement

    pitched = [i for i, t in enumerate(original.tracks) if not t.is_drum and len(t.notes)]
    given = [original.tracks[i].notes for i in pitched]
    parts = [t for t in new if not t.is_drum]
    ours = harmonic_agreement(given, [t.notes for t in parts], original.tempos)
    broken = broken_link(parts, original.tempos, np.random.default_rng(0))
    theirs, weights = [], []
    for i in pitched:
        if i in melody:
            continue
        rest = [original.tracks[j].notes for j in pitched if j != i]
        score = harmonic_agreement(rest, [original.tracks[i].notes], original.tempos)
        if not math.isnan(score):
            theirs.append(score)
            weights.append(len(original.tracks[i].notes))
    return {"new": ours,
            "broken": harmonic_agreement(given, [t.notes for t in broken], original.tempos),
            "original": float(np.average(theirs, weights=weights)) if theirs else math.nan}


def _in_order(notes: np.ndarray) -> np.ndarray:
    """``notes`` by onset (to the millisecond), then pitch: a chord's notes in one order."""
    return notes[np.lexsort((notes["pitch"], np.round(notes["start_s"], 3)))]


def melody_figures(original, melody: list[int], restyled) -> dict[str, float]:
    from melodia.evaluate.stats import grid_positions

    kept = [_in_order(original.tracks[i].notes) for i in melody]
    back = [_in_order(t.notes) for t in restyled.tracks[:len(melody)]]
    same = all(list(a["pitch"]) == list(b["pitch"]) for a, b in zip(kept, back))
    moves = [np.abs(grid_positions(b["start_s"], original.tempos, 1)
                    - grid_positions(a["start_s"], original.tempos, 1)).max(initial=0.0)
             for a, b in zip(kept, back) if len(a) == len(b)]
    return {"pitches_in_order": float(same), "max_move_beats": float(max(moves, default=0.0))}


def returns(tracks, tempos) -> dict[str, float]:
    from melodia.evaluate.structure import bar_return
    from melodia.midi.instruments import family_of

    drums = [t.notes for t in tracks if t.is_drum and len(t.notes)]
    bass = [t.notes for t in tracks if not t.is_drum and family_of(t.program) == "bass"
            and len(t.notes)]
    return {"drums": bar_return(np.concatenate(drums), tempos) if drums else math.nan,
            "bass": bar_return(np.concatenate(bass), tempos) if bass else math.nan}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="band")
    p.add_argument("--corpus", type=Path, default=ROOT / "runs/band-default/src")
    p.add_argument("--mma", type=Path, default=ROOT.parent / "shared/corpus/band/mma")
    p.add_argument("--set", default="test", choices=("test", "validation"))
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--styles", default=None, help="comma-separated (default: the model's)")
    p.add_argument("--repeat", default="0", help="0..1 or corpus (restyle's --repeat)")
    p.add_argument("--harmony", type=float, default=None, help="restyle's --harmony")
    p.add_argument("--no-classifier", action="store_true", help="skip the style classifier")
    p.add_argument("--out", type=Path, default=ROOT / "runs/restyle-eval")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    import torch

    from melodia.evaluate.styles import style_accuracy, style_table
    from melodia.generation.config import GenerateConfig
    from melodia.generation.restyle import restyle_ids
    from melodia.generation.session import band_styles
    from melodia.midi import midi_bytes, read_midi

    torch.set_num_threads(1)
    styles = args.styles.split(",") if args.styles else band_styles(args.model)
    chosen = songs(args.set, args.mma if args.mma.is_dir() else None, args.files, args.seconds)
    print(f"{len(chosen)} songs ({args.set}): {', '.join(n for n, _ in chosen)}", flush=True)
    rows, generated = [], defaultdict(list)
    for name, score in chosen:
        given = midi_bytes(score)
        song_returns = returns(score.tracks, score.tempos)
        for style in styles:
            start = time.perf_counter()
            repeat = None if args.repeat == "corpus" else float(args.repeat)
            harmony = {} if args.harmony is None else {"harmony": args.harmony}
            result = restyle_ids(args.model, given, GenerateConfig(seed=args.seed, style=style,
                                                                   repeat=repeat), **harmony)
            work = time.perf_counter() - start
            out = args.out / style / f"{name}.mid"
            result.write(out)
            generated[style].append(str(out))
            back = read_midi(out)
            new = result.result.parts[0]
            row = {"song": name, "style": style, "feel": result.feel, "moved": result.moved,
                   "lineup": result.band["names"], "work_s": work,
                   "music_s": float(score.end_s),
                   **{f"harmony_{k}": v for k, v in
                      harmony_figures(score, result.melody, new).items()},
                   **melody_figures(score, result.melody, back),
                   **{f"return_{k}": v for k, v in returns(new, score.tempos).items()},
                   **{f"song_return_{k}": v for k, v in song_returns.items()}}
            rows.append(row)
            print(f"{name[:24]:24s} {style:8s} harmony {row['harmony_new']:.2f} (song "
                  f"{row['harmony_original']:.2f}, broken {row['harmony_broken']:.2f})  "
                  f"melody {'kept' if row['pitches_in_order'] else 'CHANGED'} (moves <= "
                  f"{row['max_move_beats']:.3f} beat)  returns drums {row['return_drums']:.2f} "
                  f"bass {row['return_bass']:.2f}  {work:.1f} s for {score.end_s:.0f} s",
                  flush=True)

    def mean(key: str) -> float:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return float(np.mean(values)) if values else math.nan

    per_minute = sum(r["work_s"] for r in rows) / sum(r["music_s"] for r in rows) * 60
    summary = {k: mean(k) for k in ("harmony_new", "harmony_original", "harmony_broken",
                                    "pitches_in_order", "return_drums", "return_bass",
                                    "song_return_drums", "song_return_bass")}
    summary["max_move_beats"] = max(r["max_move_beats"] for r in rows)
    summary["work_s_per_song_minute"] = per_minute
    print(f"\n{len(rows)} restyles of {len(chosen)} songs x {len(styles)} styles")
    print(f"harmony: new {summary['harmony_new']:.3f} = "
          f"{summary['harmony_new'] / summary['harmony_original']:.2f} x the songs' own "
          f"accompaniment ({summary['harmony_original']:.3f}; goal >= 0.8 x) and "
          f"{summary['harmony_new'] / summary['harmony_broken']:.2f} x a broken link "
          f"({summary['harmony_broken']:.3f}; goal >= 1.5 x)")
    print(f"melody: pitches in order in {summary['pitches_in_order']:.0%} of restyles; onsets "
          f"moved at most {summary['max_move_beats']:.3f} beat (the feel's 1/6 = 0.167)")
    print(f"bars that return: drums {summary['return_drums']:.2f}, bass "
          f"{summary['return_bass']:.2f} (the songs' own {summary['song_return_drums']:.2f}, "
          f"{summary['song_return_bass']:.2f})")
    print(f"speed: {per_minute:.1f} s of work per minute of song, one thread "
          f"(a 3-minute song: {3 * per_minute:.0f} s; goal < 60 s)")
    if args.no_classifier:
        return 0
    real = defaultdict(list)
    with open(args.corpus / "splits.csv") as f:
        for record in csv.DictReader(f):
            if record["split"] == "train":
                real[record["midi_filename"].split("/")[0]].append(
                    str(args.corpus / record["midi_filename"]))
    classified = style_accuracy(dict(real), dict(generated), workers=2)
    print("\nstyle classifier (trained on the band corpus's train files)")
    print(style_table(classified))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "summary": summary,
                                         "styles": classified}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
