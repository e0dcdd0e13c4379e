"""Choosing events: samplers over logits, grammar masks, beam search and the incremental loop.

Every sampler is a pure function of the model's outputs and an explicit ``torch.Generator``, so
the same seed gives the same music. Two families:

- **probability** (:func:`sample_probability`): temperature, top-k, top-p (nucleus); greedy at
  temperature 0.
- **embedding** (:func:`sample_embedding`): the model's last hidden layer predicts a point ``f`` in
  the output-embedding space (the logits are ``f @ W.T + b``, ``W`` the tied token embeddings).
  Its direction ``u = f / |f|`` is perturbed on the unit sphere, ``f' = |f| u'``, and the token
  *nearest* to ``f'`` is emitted. Two noises of scale ``s`` (see :func:`perturb_direction`):

  * ``gaussian``: ``u' = normalize(u + s * e / sqrt(E))``, ``e ~ N(0, I_E)``: the noise vector has
    expected length ``s`` against the unit direction, so ``cos(u, u') ~ 1 / sqrt(1 + s^2)``;
  * ``vmf``: ``u' ~ vMF(u, kappa)`` with ``kappa = (E - 1) sqrt(1 + s^2) / s^2``, chosen so the
    mean cosine to ``u`` is about the same ``1 / sqrt(1 + s^2)`` (sampled exactly, Wood 1994).

  Nearness is measured two ways: ``metric="logit"`` (default) scores a token by the model's own
  output layer at the perturbed point, ``f' . W_v + b_v`` = ``|f| |W_v| cos(u', W_v) + b_v``, so
  scale 0 *is* greedy decoding; ``metric="cosine"`` uses ``cos(u', W_v)`` alone (scale 0 is then
  the cosine-nearest token, which is greedy only when all embeddings share one norm and there is
  no bias; on the shipped piano model the two agree on 58% of held-out steps). Larger scales move
  to tokens whose embeddings lie near the prediction (neighbouring pitches, similar shifts) rather
  than to tokens the softmax happens to weight. On the shipped model, scales of 1 or less loop
  like greedy decoding; 2-3 give the corpus's note density and lengths (default 2.5).

Both respect :class:`Grammar`'s masks, so generated streams are always well formed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Protocol

import numpy as np
import torch

from melodia.encoding.events import TYPE_CODES
from melodia.features.band import meter_features
from melodia.generation.embedding import sample_embedding, type_values
from melodia.generation.grammar import Grammar
from melodia.util.knobs import check, check_optional

SAMPLERS = ("probability", "embedding")
NOISES = ("gaussian", "vmf")
METRICS = ("logit", "cosine")
DEFAULT_NOISE = 2.5  # embedding sampler scale when neither the user nor the model gives one


@dataclass
class SamplerConfig:
    """How each event is picked from the model's output."""

    sampler: str = "probability"  # "probability" or "embedding"
    temperature: float = 1.0  # probability sampler; 0 = greedy
    top_k: int = 0  # keep the k likeliest events; 0 = all
    top_p: float = 1.0  # keep the smallest set holding this probability mass; 1 = all
    # embedding sampler: noise scale s; 0 = greedy (~1 loops like greedy); None = the model's
    # calibrated per-type scales where it has them (melodia.generation.calibrate), else DEFAULT_NOISE
    noise: float | None = None
    # embedding sampler: a scale per event type ("NOTE_ON": 2.0, ...), overriding `noise` for
    # those types; each type's tokens are scored from their own perturbed point. Calibrated
    # scales ship in a checkpoint (melodia.generation.calibrate) and are used unless `noise` is given.
    noise_by_type: dict[str, float] | None = None
    # embedding sampler: a score offset per event type (calibrated with the scales, so each type
    # is chosen about as often as the model predicts it)
    offset_by_type: dict[str, float] | None = None
    noise_kind: str = "gaussian"  # "gaussian" or "vmf" (von Mises-Fisher)
    metric: str = "logit"  # embedding sampler: "logit" (scale 0 = greedy) or "cosine"
    beam_size: int = 1  # > 1: Magenta-style beam search over sampled branches
    branch_factor: int = 2  # beam search: branches sampled from each beam entry
    steps_per_iteration: int = 1  # beam search: events sampled per branch before pruning
    # band: per instrument (GM program, 128 = drums), the temperature of its events (probability
    # sampler) or a factor on its noise scales (embedding sampler); others use the above
    temperature_by_instrument: dict[int, float] | None = None
    noise_factor_by_instrument: dict[int, float] | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        if self.noise_kind not in NOISES:
            raise ValueError(f"noise_kind must be one of {NOISES}, not {self.noise_kind!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {self.metric!r}")
        self.temperature = check("temperature", self.temperature)
        self.noise = check_optional("noise", self.noise)
        if self.noise_by_type is not None:
            bad = {k: v for k, v in self.noise_by_type.items()
                   if k not in TYPE_CODES or not (0 <= float(v) < math.inf)}
            if bad:
                raise ValueError(f"noise_by_type needs event types {sorted(TYPE_CODES)} with "
                                 f"scales >= 0, got {bad}")
        if self.offset_by_type is not None:
            bad = {k: v for k, v in self.offset_by_type.items()
                   if k not in TYPE_CODES or not math.isfinite(float(v))}
            if bad:
                raise ValueError(f"offset_by_type needs event types {sorted(TYPE_CODES)} with "
                                 f"finite offsets, got {bad}")
        for name in ("temperature_by_instrument", "noise_factor_by_instrument"):
            table = getattr(self, name)
            if table is not None:
                table = {int(k): float(v) for k, v in table.items()}
                if any(not 0 <= k <= 128 or not 0 < v < math.inf for k, v in table.items()):
                    raise ValueError(f"{name} needs instruments 0..128 with values > 0")
                setattr(self, name, table)
        self.top_k, self.top_p = check("top_k", self.top_k), check("top_p", self.top_p)
        self.beam_size = check("beam", self.beam_size, "beam_size")
        self.branch_factor = check("branch_factor", self.branch_factor)
        self.steps_per_iteration = check("steps_per_iteration", self.steps_per_iteration)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplerConfig":
        return cls(**data)


# ------------------------------------------------------------------------ probability sampler


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[..., V]`` scaled by ``1 / temperature`` with disallowed events at ``-inf``.

    ``mask`` (bool, True = allowed) is applied first, so top-k and top-p choose among allowed
    events only. Top-p keeps the smallest set of likeliest events whose probability is >= p.
    """
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf)
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop_sorted = (torch.cumsum(probs, dim=-1) - probs) >= top_p  # the first always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def sample_probability(logits: torch.Tensor, generator: torch.Generator, *,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """One event id per row of ``logits [B, V]``, drawn with ``generator``; ids ``[B]``.

    Draws from ``softmax(filter_logits(...))`` by inverting its cumulative distribution with one
    uniform number per row (cheaper per event than ``torch.multinomial``); with top-k/top-p the
    likeliest events are sorted first and only the kept prefix's mass is sampled.
    """
    x = logits.float()
    if mask is not None:
        x = x.masked_fill(~mask, -math.inf)
    if temperature == 0:
        return x.argmax(-1)
    if temperature != 1.0:
        x = x / temperature
    order = None
    if 0 < top_k < x.shape[-1]:
        x, order = torch.topk(x, top_k, dim=-1)
    elif top_p < 1.0:
        x, order = torch.sort(x, dim=-1, descending=True)
    probs = torch.softmax(x, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    if top_p < 1.0:  # the smallest prefix whose mass reaches top_p (at least one event)
        kept = ((cdf - probs) < top_p).sum(-1, keepdim=True)
        total = cdf.gather(-1, kept - 1)
    else:
        total = cdf[..., -1:]
    # u < total strictly (float rounding aside), so the first cdf > u is an event of positive
    # probability inside the kept prefix
    u = torch.rand(total.shape, generator=generator) * (total * (1 - 1e-6))
    pos = torch.searchsorted(cdf, u, right=True).clamp_max(cdf.shape[-1] - 1)
    ids = pos if order is None else order.gather(-1, pos)
    return ids.squeeze(-1)


# ------------------------------------------------------------------------------ the loop


class Stepper(Protocol):
    """One event at a time through a model, carrying its recurrent state (see melodia.model.stepper)."""

    output_weight: torch.Tensor  # [V, E]: logits = features @ output_weight.T + output_bias
    output_bias: torch.Tensor | None

    def step(self, ids: torch.Tensor, state: Any, controls: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, Any]: ...

    def select(self, state: Any, rows: torch.Tensor) -> Any: ...


class StepInputs:
    """The per-step float inputs of a model with step inputs: constant ones (controls and band
    conditions: ``[B, C]``, ``[1, C]`` for every row, or None for zeros), then
    :meth:`Grammar.note_state` (``state_dim`` > 0), :meth:`Grammar.instrument_onehot`
    (``instrument_dim`` > 0) and the meter at the grammar's time for a constant tempo of
    ``meter_qpm`` (``meter_dim`` > 0; see :func:`melodia.features.band.meter_features`)."""

    def __init__(self, controls: torch.Tensor | None, control_dim: int, state_dim: int = 1,
                 instrument_dim: int = 0, meter_dim: int = 0, meter_qpm: float = 120.0) -> None:
        self.controls = (torch.zeros(1, control_dim) if controls is None
                         else controls.reshape(-1, controls.shape[-1]).float())
        if self.controls.shape[1] != control_dim:
            raise ValueError(f"controls need {control_dim} values, got {self.controls.shape[1]}")
        self.state, self.instrument = state_dim > 0, instrument_dim > 0
        self.meter, self.qpm = meter_dim > 0, float(meter_qpm)
        if self.meter:
            self._meter_features = meter_features

    def __call__(self, grammar: Grammar) -> torch.Tensor:
        parts = []
        if self.state:
            parts.append(torch.from_numpy(grammar.note_state()))
        if self.instrument:
            parts.append(torch.from_numpy(grammar.instrument_onehot()))
        if self.meter:
            beats = grammar.now / grammar.sps * self.qpm / 60.0
            parts.append(torch.from_numpy(self._meter_features(beats)))
        controls = self.controls
        rows = grammar.batch
        if len(controls) != rows:  # one row for all, or a beam's copies of one context
            controls = controls[:1].expand(rows, -1)
        return torch.cat([controls, *parts], dim=1)


def _inputs(controls, grammar: Grammar) -> torch.Tensor | None:
    return controls(grammar) if callable(controls) else controls


def effective_noise(sampler: SamplerConfig) -> float:
    return DEFAULT_NOISE if sampler.noise is None else float(sampler.noise)


def token_scales(sampler: SamplerConfig, kinds: np.ndarray) -> np.ndarray:
    """Embedding noise scale of every token: ``noise_by_type`` for its event type, else ``noise``."""
    return type_values(sampler.noise_by_type or {}, kinds, effective_noise(sampler))


def choose(logits: torch.Tensor, features: torch.Tensor, mask: np.ndarray, stepper: Stepper,
           sampler: SamplerConfig, generator: torch.Generator,
           kinds: np.ndarray | None = None, instrument: np.ndarray | None = None) -> torch.Tensor:
    """The next id of each row under ``sampler``, among the events ``mask`` allows (``kinds``:
    the event type of every id, for per-type embedding noise; ``instrument``: each row's current
    instrument, for per-instrument temperatures and noise)."""
    allowed = torch.from_numpy(mask)
    if sampler.sampler == "embedding":
        scale, offset = effective_noise(sampler), None
        if sampler.noise_by_type and kinds is not None:
            scale = token_scales(sampler, kinds)
        if sampler.offset_by_type and kinds is not None:
            offset = type_values(sampler.offset_by_type, kinds, 0.0)
        factors = _per_row(sampler.noise_factor_by_instrument, instrument, 1.0)
        if factors is None:
            return sample_embedding(features, stepper.output_weight, stepper.output_bias,
                                    generator, scale=scale, kind=sampler.noise_kind,
                                    metric=sampler.metric, mask=allowed, offset=offset)
        out = torch.empty(len(factors), dtype=torch.long)
        for factor in np.unique(factors):  # rows sharing a factor are drawn together
            rows = torch.from_numpy(np.flatnonzero(factors == factor))
            out[rows] = sample_embedding(features[rows], stepper.output_weight,
                                         stepper.output_bias, generator,
                                         scale=np.asarray(scale) * factor,
                                         kind=sampler.noise_kind, metric=sampler.metric,
                                         mask=allowed[rows], offset=offset)
        return out
    temperature = sampler.temperature
    per_row = _per_row(sampler.temperature_by_instrument, instrument, temperature)
    if per_row is not None and temperature > 0:  # scale each row's logits by its temperature
        logits = logits.float() / torch.from_numpy(per_row / temperature).float()[:, None]
    return sample_probability(logits, generator, temperature=temperature,
                              top_k=sampler.top_k, top_p=sampler.top_p, mask=allowed)


def _per_row(table: dict[int, float] | None, instrument: np.ndarray | None,
             default: float) -> np.ndarray | None:
    if not table or instrument is None:
        return None
    return np.array([table.get(int(i), default) for i in instrument], dtype=np.float64)


def iter_steps(stepper: Stepper, grammar: Grammar, sampler: SamplerConfig,
               generator: torch.Generator, logits: torch.Tensor, features: torch.Tensor,
               state: Any, controls: torch.Tensor | StepInputs | None = None
               ) -> Iterator[np.ndarray]:
    """Yield the ids ``[B]`` chosen at each step, without end; the caller stops.

    ``logits``/``features``/``state`` are the model's outputs after the context (primer). Each
    step feeds only the new events: the LSTM state carries the rest. ``controls`` is a constant
    ``[B, C]`` tensor or a :class:`StepInputs` that builds each step's inputs from ``grammar``.
    """
    while True:
        ids = choose(logits, features, grammar.mask(), stepper, sampler, generator, grammar.kinds,
                     grammar.instrument)
        chosen = ids.numpy()
        grammar.update(chosen)
        yield chosen
        logits, features, state = stepper.step(ids, state, _inputs(controls, grammar))


def sample_rows(steps: Iterator[np.ndarray], grammar: Grammar, *, max_events: int,
                until_step: int | None = None) -> list[np.ndarray]:
    """Run ``steps`` until every row holds ``max_events`` ids or has reached time ``until_step``."""
    done = np.zeros(grammar.batch, dtype=bool)
    length = np.zeros(grammar.batch, dtype=np.int64)
    out = []
    for ids in steps:
        out.append(ids)
        length += ~done
        done |= length >= max_events
        if until_step is not None:
            done |= grammar.now >= until_step
        if done.all():
            break
    table = np.stack(out, axis=1) if out else np.empty((grammar.batch, 0), np.int64)
    return [table[b, : length[b]] for b in range(grammar.batch)]


def beam_search(stepper: Stepper, grammar: Grammar, sampler: SamplerConfig,
                generator: torch.Generator, logits: torch.Tensor, features: torch.Tensor,
                state: Any, controls: torch.Tensor | None = None, *, max_events: int,
                until_step: int | None = None) -> np.ndarray:
    """Magenta's beam search over sampled continuations of one context; the best one's ids.

    ``beam_size`` entries are each extended by ``branch_factor`` sampled branches of
    ``steps_per_iteration`` events; the ``beam_size`` branches with the highest log-likelihood
    (the model's masked softmax at temperature 1, summed over the generated events) survive.
    Stops once the best entry has ``max_events`` events or reaches time ``until_step``.
    """
    width = sampler.beam_size * sampler.branch_factor
    rows = torch.zeros(width, dtype=torch.long)
    logits, features, state = logits[rows], features[rows], stepper.select(state, rows)
    if controls is not None and not callable(controls):
        controls = controls[rows]
    grammar.select(rows.numpy())
    scores = torch.zeros(width, dtype=torch.float64)
    seqs = np.empty((width, 0), dtype=np.int64)
    while True:
        for _ in range(sampler.steps_per_iteration):
            mask = grammar.mask()
            ids = choose(logits, features, mask, stepper, sampler, generator, grammar.kinds,
                         grammar.instrument)
            masked = logits.float().masked_fill(~torch.from_numpy(mask), -math.inf)
            logp = torch.log_softmax(masked, -1)
            scores += logp.gather(1, ids[:, None]).squeeze(1).double()
            grammar.update(ids.numpy())
            seqs = np.concatenate([seqs, ids.numpy()[:, None]], axis=1)
            logits, features, state = stepper.step(ids, state, _inputs(controls, grammar))
        best = int(torch.argmax(scores))
        reached = until_step is not None and grammar.now[best] >= until_step
        if seqs.shape[1] >= max_events or reached:
            break
        top = torch.argsort(scores, descending=True, stable=True)[: sampler.beam_size]
        rows = top.repeat_interleave(sampler.branch_factor)
        logits, features, state = logits[rows], features[rows], stepper.select(state, rows)
        scores, seqs = scores[rows], seqs[rows.numpy()]
        grammar.select(rows.numpy())
    return seqs[best, :max_events]
