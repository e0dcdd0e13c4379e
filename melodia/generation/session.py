"""One generation, set up once: :func:`open_session` resolves and loads the model, draws the band
plan, tunes the sampler, reads the primer and primes the model, so that
:func:`~melodia.generation.generator.generate_ids` and
:func:`~melodia.generation.generator.iter_events` start the same way.

What a new piece starts from and is conditioned on:

- the **primer**: the last seconds of a MIDI file, or a chord of pitches (:func:`primer_events`);
- **controls** (models trained with them): a density and a key as a pitch-class histogram,
  unset ones drawn from the training corpus's own (:func:`control_vector`);
- the **band plan** (band models): style, line-up, tempo and per-instrument knobs, asked for or
  drawn from the training files (:func:`melodia.features.plan.plan_band`);
- **sampling knobs**: randomness and per-instrument temperatures onto the sampler, the model's
  calibrated embedding noise (:func:`tuned_sampler`).
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import NOTE_ON, event_times, tail
from melodia.encoding.quantize import velocity_to_bin
from melodia.errors import GenerateError
from melodia.features.band import beats_at, meter_features
from melodia.features.controls import (DENSITY_SLICE, HISTOGRAM_SLICE, constant_controls,
                                       model_inputs)
from melodia.features.keys import key_histogram
from melodia.features.lookback import LookbackTracker, event_onsets, features_of
from melodia.features.plan import plan_band
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.decoding import Start, Stepper
from melodia.generation.grammar import Grammar, GrammarConfig
from melodia.midi import Score, load_score
from melodia.midi.instruments import N_INSTRUMENTS
from melodia.model.checkpoint import Checkpoint
from melodia.model.registry import load_model, load_stepper

PRIMER_VELOCITY = 80  # MIDI velocity of a primer chord given as pitches


@dataclass
class Session:
    """One generation, set up: the model resolved and loaded, the band plan drawn, the sampler
    with its knobs, the primer as events, and the model primed with them (``start``)."""

    checkpoint: Checkpoint
    stepper: Stepper  # the model family's: FastStepper (LSTM) or TransformerStepper
    seed: int
    plan: dict[str, Any] | None  # band models: style, line-up, tempo, conditions
    sampler: SamplerConfig
    context: np.ndarray  # the events every piece starts from (band: the tempo event first)
    qpm: float | None  # the tempo written into the files (band: the plan's; else asked, primer's)
    start: Start  # where the loop begins: `batch` rows primed with the context (one loop: it
    # advances the grammar, and a transformer's cache, in place)

    @property
    def encoding(self) -> PerformanceEncoding:
        return self.checkpoint.encoding


@dataclass(frozen=True)
class Frame:
    """What a generation plays beside, for given material (:mod:`melodia.generation.given`):
    the events its stream starts from (instead of a primer's), the tempo map ``[[time_s, qpm],
    ...]`` its meter follows (None: the plan's constant tempo), and the instruments of the given
    parts (in the band conditions' line-up; the grammar keeps the model off them)."""

    context: np.ndarray
    tempos: np.ndarray | None = None
    given: tuple[int, ...] = ()


def open_session(model: str | Path | Checkpoint, config: GenerateConfig, primer=None,
                 batch: int = 1, frame: Frame | None = None) -> Session:
    """Resolve and load ``model`` (once), draw the band plan, tune the sampler, read the primer
    (or take ``frame``'s context) and prime ``batch`` rows of the model with it."""
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    primer = read_primer(primer)
    checkpoint, stepper = load_stepper(model, config.precision)
    model_config, encoding = checkpoint.model.config, checkpoint.encoding
    given = frame.given if frame else ()
    plan = plan_band(checkpoint.extra.get("band"), model_config.band_dim, encoding,
                     style=config.style, lineup=config.lineup, tempo=config.tempo,
                     rules=config.instrument_rules, randomness=config.randomness,
                     temperatures=config.instrument_temperature, seed=seed, given=given)
    sampler = tuned_sampler(checkpoint, config, plan)
    controls = constant_inputs(checkpoint, config, plan, seed, batch)
    meter_qpm = plan["qpm"] if plan else 120.0
    tempos = frame.tempos if frame and frame.tempos is not None else [[0.0, meter_qpm]]
    inputs = None if controls is None and not model_config.step_dim else StepInputs(
        None if controls is None else torch.from_numpy(controls), model_config.fixed_dim,
        model_config.state_dim, model_config.instrument_dim, model_config.meter_dim, meter_qpm,
        None if frame is None else frame.tempos, model_config.lookback_dim)
    grammar_config = band_grammar(config.grammar, plan)
    qpm = plan["qpm"] if plan else config.tempo or primer_tempo(primer)
    context = (frame.context if frame else
               primer_events(primer, encoding, config.primer_seconds, plan and plan["qpm"]))

    ids = torch.from_numpy(context).long()[None].expand(batch, -1)  # prime: the context
    sequence = None if controls is None else torch.from_numpy(controls)[:, None].expand(
        -1, ids.shape[1], -1)
    if model_config.step_dim:  # note state, instrument and meter change every step
        if sequence is None:
            sequence = torch.zeros(batch, ids.shape[1], model_config.fixed_dim)
        steps = model_inputs(context, encoding, model_config, tempos=tempos)
        state = torch.from_numpy(steps[:, model_config.fixed_dim:])[None].expand(batch, -1, -1)
        sequence = torch.cat([sequence, state], dim=2)
    grammar = Grammar(encoding, grammar_config, batch)
    grammar.give(given)
    mask = grammar.feed(context)
    if inputs is not None:
        inputs.prime(context, encoding, batch)
    logits, features, state = stepper.prime(ids, sequence)
    start = Start(grammar, mask, logits, features, state, inputs)
    return Session(checkpoint, stepper, seed, plan, sampler, context, qpm, start)


def constant_inputs(checkpoint: Checkpoint, config: GenerateConfig, plan: dict[str, Any] | None,
                    seed: int, batch: int) -> np.ndarray | None:
    """``float32[batch, fixed_dim]``: each piece's controls, then the band conditions (zeros
    where a part is absent); None for a model that takes neither."""
    controls = control_rows(checkpoint, config, seed, batch)
    model_config = checkpoint.model.config
    if not model_config.band_dim:
        return controls
    band = plan["conditions"] if plan else np.zeros(model_config.band_dim, np.float32)
    piano = (controls if controls is not None
             else np.zeros((batch, model_config.control_dim), np.float32))
    return np.concatenate([piano, np.repeat(band[None], batch, axis=0)], axis=1)


def band_grammar(grammar_config: GrammarConfig, plan: dict[str, Any] | None) -> GrammarConfig:
    """Band: a fixed tempo, only the line-up plays, each instrument in its corpus range."""
    if plan is None:
        return grammar_config
    profile = plan.get("profile") or {}
    return dataclasses.replace(
        grammar_config, tempo_changes=False,
        instruments=tuple(plan["instruments"]) if plan["instruments"] else None,
        instrument_ranges=grammar_config.instrument_ranges or {
            int(k): tuple(v) for k, v in (profile.get("ranges") or {}).items()} or None,
        monophonic=grammar_config.monophonic or tuple(profile.get("monophonic") or ()) or None)


class StepInputs:
    """The per-step float inputs of a model: constant ones (controls and band conditions:
    ``[B, C]``, ``[1, C]`` for every row, or None for zeros), then :meth:`Grammar.note_state`
    (``state_dim`` > 0), :meth:`Grammar.instrument_onehot` (``instrument_dim`` > 0) and the meter
    at the grammar's time for a constant tempo of ``meter_qpm``, or along the tempo map
    ``tempos`` (``meter_dim`` > 0; see :func:`melodia.features.band.meter_features`)."""

    def __init__(self, controls: torch.Tensor | None, control_dim: int, state_dim: int = 1,
                 instrument_dim: int = 0, meter_dim: int = 0, meter_qpm: float = 120.0,
                 tempos=None, lookback_dim: int = 0) -> None:
        self.controls = (torch.zeros(1, control_dim) if controls is None
                         else controls.reshape(-1, controls.shape[-1]).float())
        if self.controls.shape[1] != control_dim:
            raise ValueError(f"controls need {control_dim} values, got {self.controls.shape[1]}")
        self.state, self.instrument = state_dim > 0, instrument_dim > 0
        self.meter, self.qpm = meter_dim > 0, float(meter_qpm)
        self.tempos = None if tempos is None else np.asarray(tempos, dtype=np.float64)
        self.lookback = LookbackTracker(0) if lookback_dim else None  # rows: at prime()

    def prime(self, context: np.ndarray, encoding, batch: int) -> None:
        """The context's onsets, for every one of ``batch`` rows (the bar lookback's past)."""
        if self.lookback is None:
            return
        at, instruments, pitches = event_onsets(context, encoding)
        steps = event_times(np.asarray(context), encoding)[0][at]
        beats = self._beats(steps / encoding.config.steps_per_second)
        kinds = features_of(instruments, pitches)
        self.lookback = LookbackTracker(batch, list(zip(beats.tolist(), kinds.tolist())))

    def _beats(self, seconds: np.ndarray) -> np.ndarray:
        return (np.asarray(seconds) * self.qpm / 60.0 if self.tempos is None
                else beats_at(seconds, self.tempos))

    def select(self, rows: torch.Tensor) -> "StepInputs":
        """The same inputs for ``rows`` of the batch (a beam search's copies of each context)."""
        out = copy.copy(self)
        if len(self.controls) > 1:
            out.controls = self.controls[rows]
        if self.lookback is not None:
            out.lookback = self.lookback.selected(np.asarray(rows))
        return out

    def __call__(self, grammar: Grammar) -> torch.Tensor:
        parts = []
        if self.state:
            parts.append(torch.from_numpy(grammar.note_state()))
        if self.instrument:
            parts.append(torch.from_numpy(grammar.instrument_onehot()))
        if self.meter or self.lookback is not None:
            beats = self._beats(grammar.now / grammar.sps)
        if self.meter:
            parts.append(torch.from_numpy(meter_features(beats)))
        if self.lookback is not None:
            for row in np.flatnonzero(grammar.last_kind == NOTE_ON):
                self.lookback.add(int(row), float(beats[row]), int(grammar.instrument[row]),
                                  int(grammar.last_value[row]))
            parts.append(torch.from_numpy(self.lookback.features(beats)))
        controls = self.controls
        if len(controls) != grammar.batch:  # one row for all
            controls = controls[:1].expand(grammar.batch, -1)
        return torch.cat([controls, *parts], dim=1)


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


def band_styles(model: str | Path | Checkpoint = "band") -> list[str]:
    """The styles a band model was trained on (``--style``), from its checkpoint."""
    checkpoint = load_model(model)
    return list((checkpoint.extra.get("band") or {}).get("styles") or [])


# ------------------------------------------------------------------------- sampling knobs


def tuned_sampler(checkpoint: Checkpoint, config: GenerateConfig,
                  plan: dict[str, Any] | None = None) -> SamplerConfig:
    """``config.sampler`` with every knob applied: the model's calibrated embedding noise
    (unless a noise is given), the randomness (0..1: probability sampler, temperature
    ``0.6 + 0.8 r``; embedding sampler, noise scales times ``2 r``) and the per-instrument
    temperatures, both per instrument as the band ``plan`` resolved them over its line-up."""
    sampler = resolve_sampler(checkpoint, config.sampler)
    if config.randomness is not None:
        sampler = randomized_sampler(sampler, config.randomness, plan and plan["randomness"])
    temperatures = plan and plan["temperatures"]
    if temperatures is not None:
        if any(not t > 0 for t in temperatures.values()):
            raise GenerateError("per-instrument temperatures must be > 0")
        sampler = dataclasses.replace(sampler, temperature_by_instrument={
            **(sampler.temperature_by_instrument or {}), **temperatures})
    return sampler


def resolve_sampler(checkpoint: Checkpoint, sampler: SamplerConfig) -> SamplerConfig:
    """The embedding sampler with no noise given takes the model's calibrated per-type scales."""
    calibrated = checkpoint.extra.get("embedding_noise")
    if (sampler.sampler == "embedding" and sampler.noise is None and not sampler.noise_by_type
            and sampler.metric == "logit" and isinstance(calibrated, dict)
            and isinstance(calibrated.get("scale"), dict)):
        return dataclasses.replace(sampler, noise_by_type=dict(calibrated["scale"]),
                                   offset_by_type=dict(calibrated.get("offset") or {}))
    return sampler


def randomized_sampler(sampler: SamplerConfig, randomness: float | str | dict,
                       table: dict[int, float] | None = None) -> SamplerConfig:
    """``randomness`` (0..1, or ``table``: per instrument) onto the sampler."""
    if isinstance(randomness, (int, float)):
        table = {i: float(randomness) for i in range(N_INSTRUMENTS)}
    elif table is None:
        raise GenerateError("a randomness per instrument needs a band model")
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


# -------------------------------------------------------------------------------- primers


def primer_events(primer, encoding: PerformanceEncoding, seconds: float = 5.0,
                  qpm: float | None = None) -> np.ndarray:
    """Event ids to start from: the last ``seconds`` of a MIDI file / Score / PrettyMIDI, or a
    chord of MIDI pitches (struck at velocity 80 and left sounding), or ``None``: one shortest
    ``TIME_SHIFT``; a band encoding's TEMPO event of ``qpm`` first, when one is given."""
    vocab = encoding.vocab
    head = [] if qpm is None else tempo_ids(encoding, qpm).tolist()
    if primer is None:
        ids = [vocab.offset("TIME_SHIFT")]
    elif not isinstance(primer, (list, tuple, np.ndarray)):
        ids = tail(encoding.encode(load_score(primer)), encoding, seconds)
    else:
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
    return np.concatenate([head, ids]).astype(np.int64)


def tempo_ids(encoding: PerformanceEncoding, qpm: float) -> np.ndarray:
    """A band stream's first event: the TEMPO of ``qpm``."""
    return np.array([encoding.vocab.offset("TEMPO") + int(encoding.qpm_to_bin(np.array(qpm)))],
                    dtype=np.int64)


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


__all__ = ["Frame", "PRIMER_VELOCITY", "Session", "StepInputs", "band_grammar", "band_styles",
           "constant_inputs", "control_rows", "control_vector", "open_session", "primer_events",
           "randomized_sampler", "resolve_sampler", "tempo_ids", "tuned_sampler"]
