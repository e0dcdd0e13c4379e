"""Accompaniment on real band files the model never saw, with their drums and bass removed.

    python tests/benchmarks/eval_accompany.py [--set test|validation] [--mma DIR]
        [--seconds 30] [--seeds 1] [--free-drums] [--harmony X] [--bass-harmony X]
        [--files N] [--json OUT.json]

For every file that has drums, a bass and other parts: the first ``--seconds`` of its other
parts are written as a given file, ``melodia accompany`` plays drums and bass with them
(``--lineup drums,bass``; Freedoom files ``--style metal``), and three sets of parts are scored
against the given music (:mod:`melodia.evaluate.accompaniment`):

- **generated**: the accompaniment melodia played;
- **real**: the file's own bass and drums (the level to reach);
- **broken link**: the generated parts transposed by a random 1..11 semitones and half a beat
  late (the level to beat).

Figures: ``harmonic`` (bass and chord notes whose pitch class sounds in the given music's beat
or its implied triad), ``bass`` (the bass notes alone, pitch classes sounding in the beat, no
triad: issue 32's measure), ``rhythmic`` (drum onsets on the 16ths), and the bass and drum
notes per second (a prior that silenced the bass would score well and play badly).

Files: Freedoom's tracks of the band model's test split (``--set test``, 7 files) or its
validation split (``--set validation``, 3 files: for choosing settings), and the MMA example
songs (``--mma ../shared/corpus/band/mma``: Debian's mma examples, not the grooves the band
model was trained on), split by a hash of their name (half ``test``, half ``validation``).
The given tracks are checked byte for byte in every output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FREEDOOM_SPLIT = {"test": ["doom2_D_DDTBL3", "doom1_D_E1M7", "doom1_D_E1M1", "doom1_D_E2M4",
                           "doom1_D_E1M9", "doom2_D_RUNNIN", "doom1_D_E3M9"],
                  "validation": ["doom1_D_E3M8", "doom1_D_INTROA", "doom1_D_E2M3"]}


def files(which: str, mma: Path | None) -> list[tuple[Path, str | None]]:
    out = [(ROOT / "data/midi/freedoom" / f"{n}.mid", "metal") for n in FREEDOOM_SPLIT[which]]
    if mma is not None:
        for path in sorted(mma.glob("*.mid")):
            half = int(hashlib.sha1(path.name.encode()).hexdigest(), 16) % 2
            if (half == 0) == (which == "test"):
                out.append((path, None))
    return out


def crop(score, seconds: float):
    from melodia.midi import Score, Track

    tracks = []
    for t in score.tracks:
        notes = t.notes[t.notes["start_s"] < seconds].copy()
        notes["end_s"] = np.minimum(notes["end_s"], seconds)
        tracks.append(Track(notes, program=t.program, is_drum=t.is_drum, name=t.name))
    return Score(tracks, tempos=score.tempos, time_signatures=score.time_signatures)


def split(score):
    from melodia.midi.instruments import family_of

    drums = [t for t in score.tracks if t.is_drum and len(t.notes)]
    bass = [t for t in score.tracks if not t.is_drum and family_of(t.program) == "bass"
            and len(t.notes)]
    taken = {id(t) for t in drums + bass}
    rest = [t for t in score.tracks if id(t) not in taken and len(t.notes)]
    return drums, bass, rest


def notes_per_second(tracks, family: str, seconds: float) -> float:
    from melodia.midi.instruments import family_of

    chosen = [t for t in tracks if (family == "drums") == t.is_drum
              and (t.is_drum or family_of(t.program) == family)]
    return sum(len(t.notes) for t in chosen) / max(seconds, 1e-9)


MEASURES = ("harmonic", "bass", "rhythmic", "bass/s", "drums/s")


def rates(scores: dict, tracks, seconds: float) -> dict:
    """``scores`` with the bass and drum notes per second of ``tracks``."""
    return {**scores, "bass/s": notes_per_second(tracks, "bass", seconds),
            "drums/s": notes_per_second(tracks, "drums", seconds)}


def main() -> int:
    from melodia.evaluate.accompaniment import accompaniment_scores, broken_link
    from melodia.generation.accompaniment import accompany_ids
    from melodia.generation.config import GenerateConfig
    from melodia.midi import Score, midi_bytes, read_midi
    from melodia.midi.merge import track_chunks

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=("test", "validation"), default="validation")
    p.add_argument("--mma", type=Path, default=None)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--model", default="band")
    p.add_argument("--free-drums", action="store_true", help="drums off the grid too")
    p.add_argument("--harmony", type=float, default=None,
                   help="the harmony prior's strength (default: melodia's)")
    p.add_argument("--bass-harmony", type=float, default=None,
                   help="the bass's own pull to the sounding pitch classes (default: melodia's)")
    p.add_argument("--files", type=int, default=None, help="only the first N files (exploring)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    rows, unchanged, elapsed, n_seconds = [], 0, 0.0, 0.0
    rng = np.random.default_rng(0)
    for path, style in files(args.set, args.mma)[: args.files]:
        score = crop(read_midi(path), args.seconds)
        drums, bass, rest = split(score)
        if not (drums and bass and rest):
            continue
        given = midi_bytes(Score(rest, tempos=score.tempos,
                                 time_signatures=score.time_signatures))
        given_score = read_midi(given)
        real = rates(accompaniment_scores(given_score.tracks, drums + bass, score.tempos),
                     drums + bass, given_score.end_s)
        for seed in range(args.seeds):
            start = time.perf_counter()
            result = accompany_ids(args.model, given, GenerateConfig(
                seed=seed + 1, lineup="drums,bass", style=style), drum_grid=not args.free_drums,
                **({} if args.harmony is None else {"harmony": args.harmony}),
                **({} if args.bass_harmony is None else {"bass_harmony": args.bass_harmony}))
            elapsed += time.perf_counter() - start
            n_seconds += given_score.end_s
            out = result.midi_bytes()
            unchanged += track_chunks(out)[: len(track_chunks(given))] == track_chunks(given)
            parts = result.parts[0]
            gen = rates(accompaniment_scores(given_score.tracks, parts, given_score.tempos),
                        parts, given_score.end_s)
            moved = broken_link(parts, given_score.tempos, rng)
            base = rates(accompaniment_scores(given_score.tracks, moved, given_score.tempos),
                         moved, given_score.end_s)
            rows.append({"file": path.name, "seed": seed + 1, "generated": gen, "real": real,
                         "broken": base})
            print(f"{path.name:28s} " + " | ".join(
                f"{m} {gen[m]:.3f} {real[m]:.3f} {base[m]:.3f}" for m in MEASURES[:3])
                + f" | bass/s {gen['bass/s']:.2f} {real['bass/s']:.2f}"
                + f" | drums/s {gen['drums/s']:.2f} {real['drums/s']:.2f}"
                + "  (gen real broken)", flush=True)

    def mean(kind: str, key: str) -> float:
        values = [r[kind][key] for r in rows if not math.isnan(r[kind][key])]
        return float(np.mean(values)) if values else math.nan

    summary = {k: {m: mean(k, m) for m in MEASURES}
               for k in ("generated", "real", "broken")}
    summary["files"] = len(rows)
    summary["given tracks unchanged"] = f"{unchanged}/{len(rows)}"
    summary["real-time factor"] = n_seconds / max(elapsed, 1e-9)
    g, r, b = summary["generated"], summary["real"], summary["broken"]
    print(f"\n{len(rows)} accompaniments ({args.set}): harmonic {g['harmonic']:.3f} (real "
          f"{r['harmonic']:.3f}, broken link {b['harmonic']:.3f}; goals >= "
          f"{0.8 * r['harmonic']:.3f} and >= {1.5 * b['harmonic']:.3f}); bass in the beat "
          f"{g['bass']:.3f} (real {r['bass']:.3f}, broken link {b['bass']:.3f}; goal >= "
          f"{0.8 * r['bass']:.3f}); bass notes/s {g['bass/s']:.2f} (real {r['bass/s']:.2f}), "
          f"drums {g['drums/s']:.2f} (real {r['drums/s']:.2f}); rhythmic "
          f"{g['rhythmic']:.3f} (real {r['rhythmic']:.3f}, goal >= {0.8 * r['rhythmic']:.3f}); "
          f"given tracks unchanged {unchanged}/{len(rows)}; "
          f"{summary['real-time factor']:.1f}x real time")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
