"""What a new piece starts from and is conditioned on, for :func:`melodia.generation.generator.generate_ids`.

- the **primer**: the last seconds of a MIDI file, or a chord of pitches (:func:`primer_events`);
- **controls** (models trained with them): a density and a key as a pitch-class histogram
  (:func:`key_histogram`), unset ones drawn from the training corpus's own (:func:`control_vector`);
- the **band plan** (band models): style, line-up and tempo, asked for or drawn from the training
  files (:func:`band_plan`);
- **sampling knobs**: randomness and per-instrument temperatures onto the sampler
  (:func:`randomized_sampler`), the model's calibrated embedding noise (:func:`resolve_sampler`).
"""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import event_times
from melodia.encoding.quantize import velocity_to_bin
from melodia.errors import GenerateError
from melodia.features.controls import DENSITY_SLICE, HISTOGRAM_SLICE, constant_controls
from melodia.features.keys import key_histogram
from melodia.generation.sample import SamplerConfig
from melodia.midi import Score, load_score
from melodia.midi.instruments import N_INSTRUMENTS, LineupError, instrument_values
from melodia.model.checkpoint import Checkpoint
from melodia.model.registry import load_model

if TYPE_CHECKING:
    from melodia.generation.config import GenerateConfig

PRIMER_VELOCITY = 80  # MIDI velocity of a primer chord given as pitches


# ------------------------------------------------------------------------------- controls


def control_vector(checkpoint: Checkpoint, config: GenerateConfig,
                   seed: int | tuple[int, ...] = 0) -> np.ndarray | None:
    """The constant controls to condition on, or None when none are asked for or possible.

    A control the config leaves unset is taken from one of the checkpoint's ``control_prior``
    rows (controls measured on its training corpus: a density and the pitch classes of a 20 s
    stretch), chosen by ``seed``, when ``config.corpus_controls`` is on and the checkpoint has
    them; so a piece asked for nothing plays at the corpus's density, in a key.
    """
    hist = config.pitch_histogram
    if hist is None and config.key is not None:
        hist = key_histogram(config.key)
    wanted = config.density is not None or hist is not None
    if not checkpoint.model.config.control_dim:
        if wanted:
            raise GenerateError("this model was trained without controls: density and key need "
                                "a model trained with them (`melodia train`, controls on)")
        return None

    out = constant_controls(config.density, hist)
    prior = np.asarray(checkpoint.extra.get("control_prior") or [], dtype=np.float32)
    if config.corpus_controls and prior.ndim == 2 and prior.shape[1] == len(out) and len(prior):
        drawn = prior[np.random.default_rng(seed).integers(len(prior))]
        if config.density is None:
            out[DENSITY_SLICE] = drawn[DENSITY_SLICE]
        if hist is None:
            out[HISTOGRAM_SLICE] = drawn[HISTOGRAM_SLICE]
    elif not wanted:
        return None
    return out


def control_rows(checkpoint: Checkpoint, config: GenerateConfig, seed: int,
                 batch: int) -> np.ndarray | None:
    """``float32[batch, C]`` controls, one draw per piece (row ``b`` uses seed ``(seed, b)``)."""
    rows = [control_vector(checkpoint, config, (seed, b) if b else seed) for b in range(batch)]
    return None if rows[0] is None else np.stack(rows)


# ------------------------------------------------------------------------------ band plan


def band_styles(model: str | Path | Checkpoint = "band") -> list[str]:
    """The styles a band model was trained on (``--style``), from its checkpoint."""
    checkpoint = load_model(model)
    return list((checkpoint.extra.get("band") or {}).get("styles") or [])


# ------------------------------------------------------------------------- sampling knobs


def randomized_sampler(sampler: SamplerConfig, randomness, lineup: Sequence[int] | None
                       ) -> SamplerConfig:
    """``randomness`` (0..1, or per instrument) onto the sampler: probability sampler,
    temperature ``0.6 + 0.8 r``; embedding sampler, noise scales times ``2 r``."""
    if randomness is None:
        return sampler
    if isinstance(randomness, (int, float)):
        table = {i: float(randomness) for i in range(N_INSTRUMENTS)}
    else:
        try:
            table = instrument_values(randomness, lineup or [])
        except LineupError as err:
            raise GenerateError(str(err)) from None
    if any(not 0 <= r <= 1 for r in table.values()):
        raise GenerateError("randomness must be in 0..1")
    if sampler.sampler == "embedding":
        return dataclasses.replace(sampler, noise_factor_by_instrument={
            i: max(2 * r, 1e-3) for i, r in table.items()})
    if isinstance(randomness, (int, float)):
        return dataclasses.replace(sampler, temperature=0.6 + 0.8 * float(randomness))
    return dataclasses.replace(sampler, temperature_by_instrument={
        **(sampler.temperature_by_instrument or {}),
        **{i: 0.6 + 0.8 * r for i, r in table.items()}})


def instrument_temperatures(sampler: SamplerConfig, spec, lineup) -> SamplerConfig:
    """Temperatures per instrument (``"drums=0.8,guitar=1.1"``) onto the sampler."""
    if lineup is None:
        raise GenerateError("a temperature per instrument needs a band model")
    try:
        table = instrument_values(spec, lineup)
    except LineupError as err:
        raise GenerateError(str(err)) from None
    if any(not t > 0 for t in table.values()):
        raise GenerateError("per-instrument temperatures must be > 0")
    return dataclasses.replace(sampler, temperature_by_instrument={
        **(sampler.temperature_by_instrument or {}), **table})


def resolve_sampler(checkpoint: Checkpoint, sampler: SamplerConfig) -> SamplerConfig:
    """The embedding sampler with no noise given takes the model's calibrated per-type scales."""
    calibrated = checkpoint.extra.get("embedding_noise")
    if (sampler.sampler == "embedding" and sampler.noise is None and not sampler.noise_by_type
            and sampler.metric == "logit" and isinstance(calibrated, dict)
            and isinstance(calibrated.get("scale"), dict)):
        return dataclasses.replace(sampler, noise_by_type=dict(calibrated["scale"]),
                                   offset_by_type=dict(calibrated.get("offset") or {}))
    return sampler


def tuned_sampler(checkpoint: Checkpoint, config: GenerateConfig,
                  lineup: Sequence[int] | None) -> SamplerConfig:
    """``config.sampler`` with every knob applied: the model's calibrated embedding noise, the
    randomness, the per-instrument temperatures."""
    sampler = randomized_sampler(resolve_sampler(checkpoint, config.sampler), config.randomness,
                                 lineup)
    if config.instrument_temperature is not None:
        sampler = instrument_temperatures(sampler, config.instrument_temperature, lineup)
    return sampler


# -------------------------------------------------------------------------------- primers


def primer_events(primer, encoding: PerformanceEncoding, seconds: float = 5.0) -> np.ndarray:
    """Event ids to start from: the last ``seconds`` of a MIDI file / Score / PrettyMIDI, or a
    chord of MIDI pitches (struck at velocity 80 and left sounding), or ``None``: one shortest
    ``TIME_SHIFT``.
    """
    vocab = encoding.vocab
    if primer is None:
        return np.array([vocab.offset("TIME_SHIFT")], dtype=np.int64)
    if isinstance(primer, (list, tuple, np.ndarray)) and not isinstance(primer, bytes):
        if not all(isinstance(p, numbers.Integral) and not isinstance(p, bool)
                   for p in primer):
            raise GenerateError(f"primer pitches must be whole MIDI note numbers, got "
                                f"{list(primer)[:8]}")
        pitches = [int(p) for p in primer]
        note = vocab.range("NOTE_ON")
        bad = [p for p in pitches if not note.min <= p <= note.max]
        if bad or not pitches:
            raise GenerateError(f"primer pitches must be {note.min}..{note.max}, got {pitches}")

        vbin = int(velocity_to_bin(PRIMER_VELOCITY, encoding.config.velocity_bins))
        ids = [vocab.encode_event("VELOCITY", vbin)]
        ids += [vocab.encode_event("NOTE_ON", p) for p in sorted(set(pitches))]
        return np.array(ids, dtype=np.int64)
    score = load_score(primer)
    return _tail(encoding.encode(score), encoding, seconds)


def _tail(ids: np.ndarray, encoding: PerformanceEncoding, seconds: float) -> np.ndarray:
    """The events of the last ``seconds`` (like a training crop: it may hold note-offs of earlier
    notes), without leading shifts, preceded by the VELOCITY in force where it starts."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return primer_events(None, encoding)

    vocab = encoding.vocab
    times, _ = event_times(ids, encoding)
    start = int(np.searchsorted(times, times[-1] - seconds * encoding.config.steps_per_second))
    shift0, n_shifts = vocab.offset("TIME_SHIFT"), vocab.range("TIME_SHIFT").size
    while start < len(ids) - 1 and shift0 <= ids[start] < shift0 + n_shifts:
        start += 1
    vel0, n_vel = vocab.offset("VELOCITY"), vocab.range("VELOCITY").size
    earlier = np.flatnonzero((ids[:start] >= vel0) & (ids[:start] < vel0 + n_vel))
    head = ids[earlier[-1:]] if len(earlier) and not vel0 <= ids[start] < vel0 + n_vel else []
    return np.concatenate([head, ids[start:]]).astype(np.int64)


def read_primer(primer):
    """A primer file (path, bytes, file object, PrettyMIDI...) read once as a Score; pitches
    and None as they are."""
    if primer is None or isinstance(primer, (list, tuple, np.ndarray, Score)):
        return primer
    return load_score(primer)


def primer_tempo(primer) -> float | None:
    """A MIDI primer's first tempo, kept in the output (a list of pitches has none)."""
    if not isinstance(primer, Score) or not len(primer.tempos):
        return None
    return float(primer.tempos["qpm"][0])



__all__ = ["PRIMER_VELOCITY", "band_styles", "control_rows", "control_vector",
           "primer_events", "randomized_sampler", "resolve_sampler", "tuned_sampler"]
