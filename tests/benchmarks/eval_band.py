"""How the band model's music compares with real band music it never saw, per instrument group.

    python tests/benchmarks/eval_band.py [MODEL] --dataset runs/band [--per-style 6]
        [--seconds 30] [--out runs/band-eval] [--sampler probability] [--json FIGURES.json]

MODEL (default: the shipped ``band``) generates ``--per-style`` pieces for every style it knows
(line-up and tempo drawn from its training files of the style, as ``melodia generate --model
band --style S`` does), then:

1. checks every piece: each line-up instrument plays, nothing else does, drums only on
   channel 10, no overlapping notes of one pitch within a track, the tempo asked for is in the
   file;
2. times generation: events/s and the real-time factor (seconds of music per second of work);
3. compares the pieces with the dataset's *test* files (``melodia evaluate --by-instrument``):
   per instrument group, KDE overlaps and a classifier two-sample test;
4. trains a style classifier on the dataset's *train* files (labelled by style) and reports the
   share of generated pieces it assigns to the style they were asked for.

The test files are only measured here; nothing is tuned on them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import mido
import numpy as np


def _generate(job: tuple[str, str, int, float, str, Path]) -> dict:
    from melodia.generation.config import GenerateConfig, SamplerConfig
    from melodia.generation.generator import generate_ids
    from melodia.midi import write_midi

    model, style, seed, seconds, sampler, out, knobs = job
    start = time.perf_counter()
    result = generate_ids(model, GenerateConfig(
        seconds=seconds, seed=seed, style=style, randomness=knobs["randomness"],
        repeat=knobs["repeat"], drum_grid=knobs["drum_grid"], keep_playing=knobs["keep_playing"],
        sampler=SamplerConfig(sampler=sampler, top_p=knobs["top_p"])))
    elapsed = time.perf_counter() - start
    score = result.scores()[0]
    write_midi(score, out)
    return {"file": str(out), "style": style, "seed": seed, "seconds": elapsed,
            "events": int(len(result.pieces[0]) - result.primer_events),
            "music_s": float(score.end_s), "instruments": result.band["instruments"],
            "qpm": result.band["qpm"]}


def check_file(path: str, instruments: list[int], qpm: float) -> dict[str, bool]:
    """The DAW-facing checks of one generated file."""
    mid = mido.MidiFile(path)
    tempos = [m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"]
    playing, drum_only_on_10, overlap_free = set(), True, True
    for track in mid.tracks:
        programs = [m.program for m in track if m.type == "program_change"]
        sounding: dict[tuple[int, int], int] = defaultdict(int)
        channels = set()
        for m in track:
            if m.type == "note_on" and m.velocity:
                channels.add(m.channel)
                key = (m.channel, m.note)
                sounding[key] += 1
                overlap_free &= sounding[key] == 1
            elif m.type in ("note_off", "note_on"):
                sounding[(m.channel, m.note)] = max(0, sounding[(m.channel, m.note)] - 1)
        if not channels:
            continue
        if 9 in channels:
            drum_only_on_10 &= channels == {9}
            playing.add(128)
        else:
            drum_only_on_10 &= 9 not in channels
            playing.update(programs)
    return {"all_play": set(instruments) <= playing, "only_lineup": playing <= set(instruments),
            "drums_on_10": drum_only_on_10, "no_overlaps": overlap_free,
            "tempo": bool(tempos) and abs(mido.tempo2bpm(tempos[0]) - qpm) < 0.01}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="band")
    p.add_argument("--dataset", required=True, help="the band dataset (its test split is the "
                   "reference, its train split teaches the style classifier)")
    p.add_argument("--per-style", type=int, default=6)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--sampler", default="probability", choices=("probability", "embedding"))
    p.add_argument("--out", type=Path, default=Path("runs/band-eval"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--randomness", type=float, default=None, help="as melodia generate")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--repeat", type=lambda t: None if t == "corpus" else float(t), default=0.0,
                   help="as melodia generate (a number, or corpus)")
    p.add_argument("--drum-grid", action="store_true", help="as melodia generate")
    p.add_argument("--keep-playing", action=argparse.BooleanOptionalAction, default=True,
                   help="as melodia generate")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--reference-split", default="test", choices=("test", "validation"),
                   help="held-out files to compare with: validation while developing, test "
                   "for the reported figures (default test)")
    args = p.parse_args()

    from melodia.corpus.shards import TokenDataset
    from melodia.evaluate.band import compare_by_group
    from melodia.evaluate.styles import style_accuracy, style_table
    from melodia.generation.session import band_styles

    data = TokenDataset(args.dataset)
    styles = band_styles(args.model)
    jobs = []
    for style in styles:
        (args.out / style).mkdir(parents=True, exist_ok=True)
        knobs = {"randomness": args.randomness, "top_p": args.top_p, "repeat": args.repeat,
                 "drum_grid": args.drum_grid, "keep_playing": args.keep_playing}
        jobs += [(args.model, style, seed, args.seconds, args.sampler,
                  args.out / style / f"{style}-{seed}.mid", knobs)
                 for seed in range(args.per_style)]
    with Pool(args.workers) as pool:
        pieces = pool.map(_generate, jobs)
    checks = {k: 0 for k in ("all_play", "only_lineup", "drums_on_10", "no_overlaps", "tempo")}
    for piece in pieces:
        for k, ok in check_file(piece["file"], piece["instruments"], piece["qpm"]).items():
            checks[k] += ok
    events = sum(x["events"] for x in pieces)
    work = sum(x["seconds"] for x in pieces)
    music = sum(x["music_s"] for x in pieces)
    four = [x for x in pieces if len(x["instruments"]) == 4]
    speed = {"events_per_s": events / work, "real_time_factor": music / work,
             "events_per_music_s": events / music, "pieces": len(pieces),
             "four_piece_events_per_s": (sum(x["events"] for x in four)
                                         / max(sum(x["seconds"] for x in four), 1e-9)),
             "four_piece_real_time_factor": (sum(x["music_s"] for x in four)
                                             / max(sum(x["seconds"] for x in four), 1e-9)),
             "four_piece_pieces": len(four)}
    print(f"checks over {len(pieces)} pieces: " + ", ".join(f"{k} {v}/{len(pieces)}"
                                                           for k, v in checks.items()))
    print("speed (1 thread per process): " + json.dumps({k: round(v, 2) for k, v in
                                                        speed.items()}))

    held_out = [r["path"] for r in data.files(args.reference_split)]
    report = compare_by_group([x["file"] for x in pieces], held_out, workers=args.workers)
    print(f"\ngenerated vs held-out {args.reference_split} files, per instrument group")
    print(report.table())

    real = defaultdict(list)
    for record in data.files("train"):
        if record.get("style"):
            real[record["style"]].append(record["path"])
    generated = defaultdict(list)
    for piece in pieces:
        generated[piece["style"]].append(piece["file"])
    styles_result = style_accuracy(dict(real), dict(generated), workers=args.workers)
    print("\nstyle classifier (trained on the train files)")
    print(style_table(styles_result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "model": args.model, "sampler": args.sampler, "randomness": args.randomness,
            "top_p": args.top_p, "checks": checks, "speed": speed,
            "by_group": report.to_dict(), "styles": styles_result,
            "pieces": pieces}, indent=1, default=lambda o: o.tolist()
            if isinstance(o, np.ndarray) else str(o)))


if __name__ == "__main__":
    main()
