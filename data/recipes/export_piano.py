"""Export a trained piano run as the shipped model: fp16 weights, corpus controls, calibrated
embedding noise, provenance. Step 4 of data/recipes/train_piano_default.sh.

    python data/recipes/export_piano.py RUN/best.pt DATASET OUT.pt --data-sha1 FILE --sources FILE
        [--prior-data DATASET ...] [--memory GATE.json] [--recipe SCRIPT] [--held-out TEXT]
        [--licence "CORPUS=LICENCE" ...]

DATASET is the MAESTRO dataset of the run (its train split gives the corpus controls, its
validation split calibrates the embedding sampler; the test split is never touched here).
``--prior-data`` adds more datasets' train splits to the corpus controls; ``--memory`` stores a
short-term-model gate (data/recipes/fit_memory.py) in the checkpoint, so the model carries the
gate fitted for it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from melodia.corpus.shards import TokenDataset
from melodia.features.controls import control_prior
from melodia.generation.calibrate import calibrate_embedding_noise
from melodia.model.checkpoint import load_checkpoint, save_checkpoint

LICENCES = {
    "MAESTRO v2 (8 performances, via MidiTok 3.1.0 sdist)": "CC BY-NC-SA 4.0",
    "Bach chorales (data/midi/chorales, music21 corpus)": "BSD-3-Clause (music21); public-domain scores",
    "music21 corpus: airdsAirs (first 300 tunes), mozart, haydn, schumann_robert, schumann_clara, "
    "chopin, joplin, schubert, corelli, handel, cpebach, beach, weber, monteverdi":
        "music21 corpus (BSD-3-Clause software; some encodings non-commercial only: see "
        "music21/corpus/license.txt)",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--data-sha1", default=None, help="sha1sum listing of the MAESTRO files")
    p.add_argument("--sources", default=None, help="text describing the other corpora")
    p.add_argument("--prior-data", nargs="*", default=[],
                   help="more datasets whose train splits join the corpus controls")
    p.add_argument("--memory", type=Path, default=None,
                   help="the short-term model's gate fitted for this model (JSON)")
    p.add_argument("--recipe", default="data/recipes/train_piano_default.sh")
    p.add_argument("--held-out", default="maestro_8 (validation: model selection, sampler "
                   "calibration), maestro_5 (test: reported figures only)")
    p.add_argument("--licence", action="append", default=[], metavar="CORPUS=LICENCE",
                   help="a further corpus behind the weights and its licence")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    best = load_checkpoint(args.checkpoint)
    data = TokenDataset(args.dataset)
    model = best.model.float()
    sequences = list(data.sequences("train"))
    for more in args.prior_data:
        sequences += list(TokenDataset(more).sequences("train"))
    prior = control_prior(sequences, best.encoding, seed=0).round(5).tolist()
    noise = calibrate_embedding_noise(model, data.sequences("validation"), best.encoding)
    extra = {
        "recipe": args.recipe, "weights": "float16",
        "control_prior": prior, "embedding_noise": noise,
        "licences": {**LICENCES, **dict(x.split("=", 1) for x in args.licence)},
        "data": Path(args.data_sha1).read_text() if args.data_sha1 else "",
        "sources": Path(args.sources).read_text() if args.sources else "",
        "held_out": args.held_out,
    }
    if args.memory:
        extra["memory"] = json.loads(args.memory.read_text())
    save_checkpoint(args.out, model.half(), best.encoding, best.step, metrics=best.metrics,
                    train_config=best.train_config, extra=extra, portable=True)
    shipped = load_checkpoint(args.out)
    print(json.dumps({"step": shipped.step, "parameters": shipped.model.num_parameters(),
                      "file_bytes": Path(args.out).stat().st_size, "metrics": shipped.metrics,
                      "embedding_noise": noise}, indent=1))


if __name__ == "__main__":
    main()
