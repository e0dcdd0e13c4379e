"""Musical quality of a model: generate, then compare with real music it never saw.

Generates ``--num`` pieces of ``--seconds`` (seeds ``--seed``, ``--seed + 1``, ...; one batch, so
each piece draws its own corpus controls) with the given sampler settings, writes them as MIDI,
and compares them with ``--reference`` through ``melodia.evaluate.compare`` (the same numbers as
``melodia evaluate --generated ... --reference ...``). Optionally also:

- ``--density-check 4,8,12``: for each D, ``--num`` pieces with ``density=D``: mean notes/s;
- ``--key-check C,G,Am,Dm``: for each key, ``--num`` pieces of 20 s with ``key=K``: the share
  whose Krumhansl-Schmuckler key (music21's profile; melodia.evaluate.keys) is K;
- ``--data DATASET --split test``: held-out NLL of the model (nats/event, whole files).

Run on demand (not part of the test suite), e.g.::

    python tests/benchmarks/eval_quality.py melodia/weights/piano.pt \\
        --reference runs/src/heldout/test --num 24 --seconds 30 --json out.json

Tune settings against a validation reference and report on the test reference: never tune on
the files you report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate_set(model, out: Path, num: int, seconds: float, seed: int, **options) -> list[Path]:
    from melodia.generation.config import GenerateConfig, SamplerConfig
    from melodia.generation.generator import generate_ids
    from melodia.midi import write_midi

    sampler = SamplerConfig(**{k: v for k, v in options.items() if k in (
        "sampler", "temperature", "top_k", "top_p", "noise", "noise_kind", "metric")})
    config = GenerateConfig(seconds=seconds, num=num, seed=seed, sampler=sampler,
                            density=options.get("density"), key=options.get("key"),
                            corpus_controls=options.get("corpus_controls", True),
                            **{k: options[k] for k in ("memory",) if k in options})
    out.mkdir(parents=True, exist_ok=True)
    result = generate_ids(model, config)
    paths = []
    for i, score in enumerate(result.scores()):
        paths.append(write_midi(score, out / f"gen_{seed + i:03d}.mid"))
    return paths


def summary(report) -> dict:
    rows = {r.name: r for r in report.stats}
    pick = ("note_density", "polyphony", "pitch_class_entropy", "key_correlation",
            "key_stability", "semitone_clash", "velocity_std", "ioi_median", "length_median")
    out = {"mean_overlap": report.mean_overlap, "classifier_accuracy": report.classifier_accuracy}
    for name in pick:
        out[name] = (rows[name].generated_mean, rows[name].reference_mean, rows[name].overlap)
    return out


def key_check(model, keys: list[str], num: int, seed: int, options: dict) -> dict[str, float]:
    from melodia.encoding import get_encoding
    from melodia.evaluate.keys import estimate_key
    from melodia.evaluate.music import score_notes

    enc, results = get_encoding("piano"), {}
    for key in keys:
        with tempfile.TemporaryDirectory() as tmp:
            paths = generate_set(model, Path(tmp), num, 20.0, seed, key=key, **options)
            found = [estimate_key(score_notes(enc.decode(enc.encode_file(q))), 20.0)[0]
                     for q in paths]
            results[key] = float(np.mean([f == key_index(key) for f in found]))
    return results


def key_index(key: str) -> int:
    """0..11 major, 12..23 minor (melodia.evaluate.keys' numbering) of a key name."""
    from melodia.features.keys import parse_key

    tonic, mode = parse_key(key)
    return tonic + (12 if mode == "minor" else 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--reference", required=True, help="folder of real MIDI the model never saw")
    p.add_argument("--num", type=int, default=24)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", default="probability")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--noise", type=float, default=None)
    p.add_argument("--noise-kind", default="gaussian")
    p.add_argument("--no-corpus-controls", action="store_true")
    p.add_argument("--memory", type=float, default=None,
                   help="the short-term model's pull, 0..1 (default: the package default)")
    p.add_argument("--density-check", default="", help="comma-separated notes/s, e.g. 4,8,12")
    p.add_argument("--key-check", default="", help="comma-separated keys, e.g. C,G,Am,Dm")
    p.add_argument("--data", default=None, help="dataset for held-out NLL")
    p.add_argument("--split", default="test")
    p.add_argument("--out", default=None, help="keep the generated MIDI here")
    p.add_argument("--json", default=None, help="write all figures here")
    args = p.parse_args(argv)

    from melodia.evaluate import compare

    options = dict(sampler=args.sampler, temperature=args.temperature, top_p=args.top_p,
                   top_k=args.top_k, noise=args.noise, noise_kind=args.noise_kind,
                   corpus_controls=not args.no_corpus_controls)
    if args.memory is not None:
        options["memory"] = args.memory
    figures: dict = {"model": args.model, "options": options, "num": args.num,
                     "seconds": args.seconds}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        generate_set(args.model, out, args.num, args.seconds, args.seed, **options)
        figures["generate_s"] = time.perf_counter() - t0
        report = compare(out, args.reference, workers=2)
    print(report.table())
    figures["summary"] = summary(report)
    figures["report"] = report.to_dict()
    if args.density_check:
        figures["density"] = {}
        for d in [float(x) for x in args.density_check.split(",")]:
            with tempfile.TemporaryDirectory() as tmp:
                paths = generate_set(args.model, Path(tmp), args.num, args.seconds, args.seed,
                                     density=d, **options)
                from melodia.midi import read_midi

                rates = [sum(len(t.notes) for t in read_midi(q).tracks) / args.seconds
                         for q in paths]
            figures["density"][d] = float(np.mean(rates))
            print(f"--density {d:g}: {np.mean(rates):.2f} notes/s")
    if args.key_check:
        figures["keys"] = key_check(args.model, args.key_check.split(","), args.num, args.seed,
                                    options)
        for k, share in figures["keys"].items():
            print(f"--key {k}: estimate == {k} in {share:.0%} of {args.num} x 20 s")
    if args.data:
        from melodia.evaluate import evaluate

        nll = evaluate(args.model, args.data, args.split, baselines=[5], segment_events=None,
                       progress=False)
        figures["nll"] = nll.to_dict()
        print(nll.table())
    s = figures["summary"]
    print(f"\nmean KDE overlap {s['mean_overlap']:.3f}, classifier {s['classifier_accuracy']:.3f}, "
          f"notes/s {s['note_density'][0]:.2f} (real {s['note_density'][1]:.2f}), polyphony "
          f"{s['polyphony'][0]:.2f} ({s['polyphony'][1]:.2f}), key stability "
          f"{s['key_stability'][0]:.2f} ({s['key_stability'][1]:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
