"""Export a trained band run as the shipped model: fp16 weights, corpus controls, styles and
line-ups, calibrated embedding noise, provenance. The last step of
data/recipes/train_band_default.sh.

    python data/recipes/export_band.py RUN/best.pt DATASET OUT.pt [--data-sha1 FILE]

DATASET is the band dataset of the run (its validation split calibrates the embedding sampler;
the test split is never touched here).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from melodia.corpus.shards import TokenDataset
from melodia.features.band import BandLayout, instrument_profile, record_conditions
from melodia.generation.calibrate import calibrate_embedding_noise
from melodia.model.checkpoint import load_checkpoint, save_checkpoint

LICENCES = {
    "Freedoom music (data/midi/freedoom, Debian package freedoom)": "BSD-3-Clause (Freedoom)",
    "MMA grooves rendered by data/band/make_corpus.py (Debian package mma 21.09)":
        "GPL-2+ (MMA and its groove library; the rendered MIDI is not committed)",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--data-sha1", default=None, help="SHA1SUMS of the corpus files")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    best = load_checkpoint(args.checkpoint)
    data = TokenDataset(args.dataset)
    model = best.model.float()
    info = dict(best.extra["band"])
    if "profile" not in info:  # runs before the profile was saved: measure it here
        info["profile"] = instrument_profile(data.sequences("train"), best.encoding)
    records = data.files("validation")
    seqs = [data.ids(r) for r in records]
    conds = record_conditions(records, seqs, best.encoding, BandLayout.from_info(info))
    noise = calibrate_embedding_noise(model, seqs, best.encoding, conditions=conds,
                                      tempos=[r.get("tempos") for r in records])
    extra = {
        "recipe": "data/recipes/train_band_default.sh", "weights": "float16",
        "control_prior": best.extra.get("control_prior", []), "band": info,
        "embedding_noise": noise, "licences": LICENCES,
        "data": Path(args.data_sha1).read_text() if args.data_sha1 else "",
        "held_out": "splits.csv of data/band/make_corpus.py: per style ~5% validation (model "
                    "selection, sampler calibration) and ~10% test (reported figures only)",
    }
    save_checkpoint(args.out, model.half(), best.encoding, best.step, metrics=best.metrics,
                    train_config=best.train_config, extra=extra, portable=True)
    shipped = load_checkpoint(args.out)
    print(json.dumps({"step": shipped.step, "parameters": shipped.model.num_parameters(),
                      "file_bytes": Path(args.out).stat().st_size, "metrics": shipped.metrics,
                      "embedding_noise": noise}, indent=1))


if __name__ == "__main__":
    main()
