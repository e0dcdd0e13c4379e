"""What a training run reads: the datasets (mixed by weight), the validation split (or held-out
tails), the crops, and for band data the conditions the model learns (styles, line-ups, tempos)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from melodia.corpus.shards import TokenDataset
from melodia.errors import MelodiaError
from melodia.features.band import instrument_profile, playing, qpm_at, tempos_from_ids
from melodia.features.plan import BandLayout, aliases_for
from melodia.midi.instruments import family_of
from melodia.training.config import TrainConfig, data_entries
from melodia.training.crops import CropDataset, holdout_tail

log = logging.getLogger("melodia.training.trainer")


@dataclasses.dataclass
class BandData:
    """What a band run conditions on: the layout, each sequence's style index, and what
    generation draws from when a user leaves a condition unset (saved in the checkpoint)."""

    layout: Any  # melodia.features.plan.BandLayout
    train_styles: list[int | None]
    valid_styles: list[int | None]
    info: dict[str, Any]
    train_tempos: list[Any]  # exact tempo maps [[time_s, qpm], ...] per file (None: unknown)
    valid_tempos: list[Any]


def _styles_of(records: list[dict[str, Any]], styles: tuple[str, ...]) -> list[int | None]:
    return [styles.index(r["style"]) if r.get("style") in styles else None for r in records]


def _band_data(sets, encoding, train_records, valid_records, train_seqs) -> BandData:
    """Styles from the datasets' labels (``melodia prepare --labels-from-folders``), and per
    style the programs each family plays (likeliest first) and the line-ups and tempos of its
    files, so generation can fill in what a user does not ask for."""
    from collections import Counter


    styles = tuple(sorted({r["style"] for d in sets for r in d.files() if r.get("style")}))
    layout = BandLayout(styles, encoding.config.tempo_bins)
    programs: dict[str, Counter] = {}
    lineups = []
    for record, seq in zip(train_records, train_seqs):
        style = record.get("style") or ""
        instruments = playing(np.asarray(seq), encoding)
        tempos = record.get("tempos")
        qpm = qpm_at(tempos if tempos is not None else tempos_from_ids(seq, encoding), 0.0)
        lineups.append({"style": style, "instruments": instruments,
                        "qpm": round(qpm, 2)})
        counts = programs.setdefault(style, Counter())
        counts.update(instruments)
    by_family = {style: {} for style in programs}
    for style, counts in programs.items():
        for program, _ in counts.most_common():
            by_family[style].setdefault(family_of(program), []).append(int(program))
    info = {"styles": list(styles), "tempo_bins": layout.tempo_bins, "programs": by_family,
            "lineups": lineups, "profile": instrument_profile(train_seqs, encoding),
            "style_aliases": aliases_for(styles)}
    return BandData(layout, _styles_of(train_records, styles), _styles_of(valid_records, styles),
                    info, [r.get("tempos") for r in train_records],
                    [r.get("tempos") for r in valid_records])


def training_data(config: TrainConfig):
    """Encoding, train and validation sequences, the training crops, the first dataset's
    training sequences (the music the corpus controls are measured on), and BandData (band
    encoding with ``config.band``) or None."""

    entries = data_entries(config.data)
    sets = [TokenDataset(path) for path, _ in entries]
    data = sets[0]
    for other, (path, _) in zip(sets[1:], entries[1:]):
        if other.encoding.to_dict() != data.encoding.to_dict():
            raise MelodiaError(f"{path} uses another encoding than {entries[0][0]}")
    train_records, valid_records = data.files("train"), data.files("validation")
    train_seqs = [data.ids(r) for r in train_records]
    valid_seqs = [data.ids(r) for r in valid_records]
    if not valid_seqs:
        log.warning("%s has no validation files: holding out the last %.0f%% of every training "
                    "file instead", entries[0][0], 100 * config.holdout_fraction)
        whole = train_seqs
        train_seqs, valid_seqs = holdout_tail(train_seqs, config.holdout_fraction)
        valid_records = [r for r, s in zip(train_records, whole)  # the files that gave a tail
                         if len(s) - max(2, int(round(len(s) * config.holdout_fraction))) >= 2]
    primary, groups = train_seqs, [0] * len(train_seqs)
    for g, other in enumerate(sets[1:], start=1):
        records = other.files("train")
        train_records = train_records + records
        train_seqs = train_seqs + [other.ids(r) for r in records]
        groups += [g] * len(records)
    weights = [w for _, w in entries] if entries[0][1] is not None else None
    band = None
    if config.band and any(r.type == "PROGRAM" for r in data.encoding.vocab.ranges):
        band = _band_data(sets, data.encoding, train_records, valid_records, train_seqs)
    crops = CropDataset(train_seqs, data.encoding, config.seq_len, seed=config.seed,
                        transpose=config.transpose, stretch=config.stretch,
                        controls=config.controls, control_dropout=config.control_dropout,
                        note_state=config.note_state,
                        groups=groups if weights else None, weights=weights,
                        band_layout=band.layout if band else None,
                        styles=band.train_styles if band else None,
                        meter=bool(band) and config.meter,
                        lookback=bool(band) and config.lookback,
                        tempos=band.train_tempos if band else None)
    return data.encoding, train_seqs, valid_seqs, crops, primary, band


__all__ = ["BandData", "training_data"]
