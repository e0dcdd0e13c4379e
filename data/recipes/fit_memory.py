"""Fit the short-term model's gate (melodia.model.memory) for a model, and report what it adds.

    python data/recipes/fit_memory.py [--model piano] [--corpus ../shared/corpus/piano/hannds]
        [--train-files 40] [--out melodia/weights/piano_memory.json]

The corpus's files, sorted by name, are split: every 10th (from the 5th) is a validation file,
the rest are training files; the gate is fitted on (the first ``--train-files`` of) the training
files and the table printed is the validation files' NLL per event type, the model alone and
with the short-term model. The files the hannds package keeps in its own ``test/`` folder are
not in the corpus at all (they stay out for evaluation), nor is any file of the model's own
held-out split used here. Writes the gate as JSON (weights, bias, run cap, the files it was fitted
on and the validation figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Training and validation files: every 10th from the 5th validates."""
    valid = [f for i, f in enumerate(files) if i % 10 == 4]
    return [f for f in files if f not in valid], valid


def main() -> int:
    from melodia.encoding.events import NOTE_OFF, NOTE_ON, TIME_SHIFT, VELOCITY
    from melodia.errors import MelodiaError
    from melodia.evaluate.memory import fit_gate, format_table, nll_table, score_file
    from melodia.model.memory import Gate, Views
    from melodia.model.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="piano")
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/piano/hannds")
    p.add_argument("--train-files", type=int, default=40)
    p.add_argument("--valid-files", type=int, default=11)
    p.add_argument("--out", type=Path, default=None, help="write the fitted gate here (JSON)")
    p.add_argument("--lean", type=float, default=4.5,
                   help="sampling: logits added to the gate at --memory 1 (chosen on the "
                   "validation files by tests/benchmarks/eval_memory.py: the spread of motif "
                   "recurrence; the NLL fit does not see it)")
    p.add_argument("--run-cap", type=int, default=16,
                   help="sampling: events copied in a row before the memory fades (as --lean)")
    args = p.parse_args()
    checkpoint = load_model(args.model)
    encoding, views = checkpoint.encoding, Views.of(checkpoint.encoding)
    train, valid = split(sorted(args.corpus.glob("*.mid")))
    train, valid = train[: args.train_files], valid[: args.valid_files]

    def scored(files: list[Path]) -> list:
        out = []
        for path in files:
            try:
                ids = encoding.encode(str(path))
            except MelodiaError as err:
                print(f"skipped {path.name}: {err}", file=sys.stderr)
                continue
            out.append(score_file(checkpoint, ids, views))
            print(f"  {path.name}: {len(ids)} events", file=sys.stderr, flush=True)
        return out

    t0 = time.perf_counter()
    fitted_on = scored(train)
    gate = dataclasses.replace(fit_gate(fitted_on, run_cap=args.run_cap), lean=args.lean)
    held = scored(valid)
    names = {NOTE_ON: "NOTE_ON", NOTE_OFF: "NOTE_OFF", TIME_SHIFT: "TIME_SHIFT",
             VELOCITY: "VELOCITY"}
    print(f"gate fitted on {len(fitted_on)} files: weights "
          f"{[round(w, 3) for w in gate.weights]}, bias {gate.bias:.3f} "
          f"({time.perf_counter() - t0:.0f} s)")
    for label, g in (("fitted gate", gate), ("default gate", Gate())):
        print(f"\nvalidation ({len(held)} files), {label}, NLL nats/event:")
        print(format_table(nll_table(held, g, names)))
    train_table = nll_table(fitted_on, gate, names)
    print(f"\ntraining files, fitted gate:\n{format_table(train_table)}")
    if args.out:
        info = {**gate.to_dict(), "model": args.model, "corpus": str(args.corpus.name),
                "fitted_on": [f.name for f in train], "validation": [f.name for f in valid],
                "validation_nll": nll_table(held, gate, names)}
        args.out.write_text(json.dumps(info, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
