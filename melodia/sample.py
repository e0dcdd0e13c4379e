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
import torch.nn.functional as F

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import (
    NOTE_OFF,
    NOTE_ON,
    PROGRAM,
    TIME_SHIFT,
    TYPE_CODES,
    VELOCITY,
    lookup_tables,
)

SAMPLERS = ("probability", "embedding")
_NEVER = np.iinfo(np.int64).max // 4  # "no limit" in time steps
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
    # calibrated per-type scales where it has them (melodia.calibrate), else DEFAULT_NOISE
    noise: float | None = None
    # embedding sampler: a scale per event type ("NOTE_ON": 2.0, ...), overriding `noise` for
    # those types; each type's tokens are scored from their own perturbed point. Calibrated
    # scales ship in a checkpoint (melodia.calibrate) and are used unless `noise` is given.
    noise_by_type: dict[str, float] | None = None
    # embedding sampler: a score offset per event type (calibrated with the scales, so each type
    # is chosen about as often as the model predicts it)
    offset_by_type: dict[str, float] | None = None
    noise_kind: str = "gaussian"  # "gaussian" or "vmf" (von Mises-Fisher)
    metric: str = "logit"  # embedding sampler: "logit" (scale 0 = greedy) or "cosine"
    beam_size: int = 1  # > 1: Magenta-style beam search over sampled branches
    branch_factor: int = 2  # beam search: branches sampled from each beam entry
    steps_per_iteration: int = 1  # beam search: events sampled per branch before pruning

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        if self.noise_kind not in NOISES:
            raise ValueError(f"noise_kind must be one of {NOISES}, not {self.noise_kind!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {self.metric!r}")
        if not (self.temperature >= 0 and (self.noise is None or self.noise >= 0)):  # and nan
            raise ValueError("temperature and noise must be >= 0")
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
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError("need top_k >= 0 and 0 < top_p <= 1")
        if self.beam_size < 1 or self.branch_factor < 1 or self.steps_per_iteration < 1:
            raise ValueError("beam_size, branch_factor and steps_per_iteration must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplerConfig":
        return cls(**data)


@dataclass
class GrammarConfig:
    """Rules that keep a generated stream playable. ``None`` switches a rule off."""

    max_polyphony: int | None = 16  # notes sounding at once (re-striking a sounding pitch is fine)
    max_note_s: float | None = 5.0  # force the note-off after this long (Magenta: 5 s)
    max_wait_s: float | None = 3.0  # longest time between note-ons: no runaway time-shift output
    max_events_per_step: int | None = 64  # events at one instant (NOTE_OFFs not counted)
    velocity_before_note_on: bool = True  # a VELOCITY event is followed by a NOTE_ON, as encoded
    pitch_range: tuple[int, int] | None = (21, 108)  # NOTE_ONs allowed: the 88 keys of a piano

    def __post_init__(self) -> None:
        for name in ("max_polyphony", "max_events_per_step"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")
        for name in ("max_note_s", "max_wait_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        if self.pitch_range is not None:
            low, high = (int(p) for p in self.pitch_range)
            if not 0 <= low <= high <= 127:
                raise ValueError(f"pitch_range must be (low, high) within 0..127, not "
                                 f"{self.pitch_range}")
            self.pitch_range = (low, high)
        if (self.max_events_per_step is not None and self.max_polyphony is not None
                and self.max_events_per_step < self.max_polyphony):
            raise ValueError("max_events_per_step must be >= max_polyphony (forced note-offs of "
                             "all sounding instruments must fit in one instant)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# -------------------------------------------------------------------------- embedding sampler


def vmf_kappa(scale: float, dim: int) -> float:
    """Concentration whose vMF draws have mean cosine ~ ``1 / sqrt(1 + scale^2)`` in ``dim`` dims.

    From the large-dimension approximation ``A(kappa) ~ kappa / (nu + sqrt(nu^2 + kappa^2))``,
    ``nu = (dim - 1) / 2``, the mean cosine of a vMF draw to its mean direction.
    """
    return (dim - 1) * math.sqrt(1 + scale * scale) / (scale * scale)


def sample_vmf(mu: torch.Tensor, kappa: float, generator: torch.Generator) -> torch.Tensor:
    """Unit vectors ``[B, E]`` from von Mises-Fisher(``mu``, ``kappa``), by Wood's (1994) method.

    The cosine ``w`` to ``mu`` is drawn by rejection with a Beta((E-1)/2, (E-1)/2) proposal, taken
    as ``(1 + t) / 2`` for ``t`` a coordinate of a uniform point on the sphere (so only ``randn``
    and ``rand`` are needed, both seeded by ``generator``); the rest is a uniform direction
    orthogonal to ``mu``.
    """
    n, p = mu.shape
    m = p - 1
    b = m / (2 * kappa + math.sqrt(4 * kappa * kappa + m * m))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * math.log(1 - x0 * x0)
    w = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    while len(todo):
        g = torch.randn(len(todo), p, generator=generator, dtype=torch.float64)
        z = (1 + g[:, 0] / g.norm(dim=1)) / 2
        wt = (1 - (1 + b) * z) / (1 - (1 - b) * z)
        u = torch.rand(len(todo), generator=generator, dtype=torch.float64)
        ok = kappa * wt + m * torch.log1p(-x0 * wt) - c >= torch.log(u)
        w[todo[ok]] = wt[ok]
        todo = todo[~ok]
    mu64 = mu.double()
    v = torch.randn(n, p, generator=generator, dtype=torch.float64)
    v = v - (v * mu64).sum(1, keepdim=True) * mu64
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    w = w.unsqueeze(1)
    return (w * mu64 + torch.sqrt((1 - w * w).clamp_min(0)) * v).to(mu.dtype)


def perturb_direction(u: torch.Tensor, scale: float, generator: torch.Generator,
                      kind: str = "gaussian") -> torch.Tensor:
    """Unit directions ``[B, E]`` moved at random by noise of ``scale`` (0: unchanged)."""
    if scale == 0:
        return u
    if kind == "vmf":
        return sample_vmf(u, vmf_kappa(scale, u.shape[-1]), generator)
    noise = torch.randn(u.shape, generator=generator, dtype=u.dtype)
    moved = u + noise * (scale / math.sqrt(u.shape[-1]))
    return moved / moved.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _nearest_scores(features: torch.Tensor, u: torch.Tensor, norm: torch.Tensor,
                    moved: torch.Tensor, scale: float, weight: torch.Tensor,
                    bias: torch.Tensor | None, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return moved @ (weight / weight.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
    # the output layer itself, so that scale 0 reproduces the logits bit for bit
    return F.linear(features if scale == 0 else moved * norm, weight, bias)


def sample_embedding(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     generator: torch.Generator, *, scale: float | np.ndarray = 0.5,
                     kind: str = "gaussian", metric: str = "logit",
                     mask: torch.Tensor | None = None,
                     offset: np.ndarray | None = None) -> torch.Tensor:
    """Ids ``[B]``: the tokens nearest to the perturbed predicted embeddings ``features [B, E]``.

    ``weight [V, E]`` and ``bias [V]`` are the output layer (``logits = features @ weight.T +
    bias``); see the module docstring for the exact definition. ``scale`` may also be one scale
    per token (``[V]``, e.g. per event type): tokens sharing a scale are scored from one
    perturbed point, each group from its own independent draw. ``offset [V]`` is added to the
    scores before the nearest token is taken (per-type offsets from calibration).
    """
    norm = features.norm(dim=-1, keepdim=True)
    u = features / norm.clamp_min(1e-12)
    if np.ndim(scale) == 0:
        moved = perturb_direction(u, float(scale), generator, kind)
        scores = _nearest_scores(features, u, norm, moved, float(scale), weight, bias, metric)
    else:
        scale = np.asarray(scale, dtype=np.float64)
        scores = features.new_empty(features.shape[0], weight.shape[0])
        for value in np.unique(scale):
            rows = torch.from_numpy(np.flatnonzero(scale == value))
            moved = perturb_direction(u, float(value), generator, kind)
            scores[:, rows] = _nearest_scores(features, u, norm, moved, float(value),
                                              weight[rows], None if bias is None else bias[rows],
                                              metric)
    if offset is not None:
        scores = scores + torch.from_numpy(np.asarray(offset, dtype=np.float32))
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return scores.argmax(-1)


# ------------------------------------------------------------------------------------ grammar


class Grammar:
    """What each of ``batch`` generated streams has played so far, and which events may follow.

    :meth:`mask` gives ``[B, V]`` bool (True = allowed); :meth:`update` advances by one event per
    row. The rules, each switchable through :class:`GrammarConfig`:

    - a NOTE_OFF only for a pitch that is sounding (on the current PROGRAM, band encoding);
    - a NOTE_ON of a new pitch only while fewer than ``max_polyphony`` notes sound;
    - a note that has sounded ``max_note_s`` must end now: only its NOTE_OFF (band: or the PROGRAM
      selecting its instrument) is allowed, and no TIME_SHIFT may carry a note past that length;
    - no TIME_SHIFT taking the wait since the last NOTE_ON past ``max_wait_s``;
    - after ``max_events_per_step`` events at one instant (NOTE_OFFs not counted: they are
      bounded by the note-ons) only TIME_SHIFTs;
    - after a VELOCITY only a NOTE_ON, and a VELOCITY only when a NOTE_ON may follow it;
    - NOTE_ONs only within ``pitch_range`` (default the piano's 21..108; drums too lie inside).

    Should the rules leave a row nothing (only a contrived config can), ``TIME_SHIFT 1`` is allowed.
    """

    def __init__(self, encoding: PerformanceEncoding, config: GrammarConfig | None = None,
                 batch: int = 1) -> None:
        self.config = config or GrammarConfig()
        vocab, sps = encoding.vocab, encoding.config.steps_per_second
        self.kinds, self.values = lookup_tables(vocab)
        self.vocab_size, self.batch = vocab.size, batch
        note = vocab.range("NOTE_ON")
        self.min_pitch, self.n_pitches = note.min, note.size
        self.on0, self.off0 = vocab.offset("NOTE_ON"), vocab.offset("NOTE_OFF")
        first_velocity = vocab.offset("VELOCITY")
        self.vel = slice(first_velocity, first_velocity + vocab.range("VELOCITY").size)
        shifts = vocab.range("TIME_SHIFT")
        self.shift = slice(vocab.offset("TIME_SHIFT"), vocab.offset("TIME_SHIFT") + shifts.size)
        self.shift_steps = np.arange(shifts.min, shifts.max + 1)
        types = [r.type for r in vocab.ranges]
        self.prog0 = vocab.offset("PROGRAM") if "PROGRAM" in types else None
        n_instruments = vocab.range("PROGRAM").size if self.prog0 is not None else 1
        c = self.config
        self.sps = sps
        self.out_of_range = np.zeros(self.n_pitches, dtype=bool)
        if c.pitch_range is not None:
            pitches = np.arange(self.min_pitch, self.min_pitch + self.n_pitches)
            self.out_of_range = (pitches < c.pitch_range[0]) | (pitches > c.pitch_range[1])
        self.max_note_steps = None if c.max_note_s is None else max(1, round(c.max_note_s * sps))
        self.max_wait_steps = None if c.max_wait_s is None else max(1, round(c.max_wait_s * sps))
        self.on = slice(self.on0, self.on0 + self.n_pitches)
        self.off = slice(self.off0, self.off0 + self.n_pitches)
        self.sounding = np.zeros((batch, n_instruments, self.n_pitches), dtype=bool)
        self.count = np.zeros(batch, dtype=np.int64)  # notes sounding
        self._rows = np.arange(batch)
        self.onset = np.zeros((batch, n_instruments, self.n_pitches), dtype=np.int64)
        self.now = np.zeros(batch, dtype=np.int64)  # time steps since the stream began
        self.wait = np.zeros(batch, dtype=np.int64)  # steps since the last NOTE_ON
        self.at_step = np.zeros(batch, dtype=np.int64)  # events but NOTE_OFFs since a TIME_SHIFT
        self.instrument = np.zeros(batch, dtype=np.int64)
        self.last_kind = np.full(batch, -1, dtype=np.int64)

    _STATE = ("sounding", "onset", "count", "now", "wait", "at_step", "instrument", "last_kind")

    def select(self, rows: np.ndarray) -> None:
        """Keep (and repeat) rows, e.g. after a beam-search pruning step."""
        for name in self._STATE:
            setattr(self, name, getattr(self, name)[rows])
        self.batch = len(rows)
        self._rows = np.arange(self.batch)

    def feed(self, ids) -> None:
        """Advance every row through the same events (a primer)."""
        for event in np.asarray(ids, dtype=np.int64).tolist():
            self.update(np.full(self.batch, event))

    def update(self, ids: np.ndarray) -> None:
        """Advance row ``b`` by the event ``ids[b]``."""
        kind, value = self.kinds[ids], self.values[ids]
        shift = kind == TIME_SHIFT
        moved = np.where(shift, value, 0)
        self.now += moved
        self.wait += moved
        self.at_step = np.where(shift, 0, self.at_step + (kind != NOTE_OFF))
        for wanted in (NOTE_ON, NOTE_OFF):
            rows = np.flatnonzero(kind == wanted)
            if len(rows):
                index = (rows, self.instrument[rows], value[rows] - self.min_pitch)
                was = self.sounding[index]
                if wanted == NOTE_ON:
                    self.count[rows] += ~was
                    self.sounding[index] = True
                    self.onset[index] = self.now[rows]
                    self.wait[rows] = 0
                else:
                    self.count[rows] -= was
                    self.sounding[index] = False
        if self.prog0 is not None:
            self.instrument = np.where(kind == PROGRAM, value, self.instrument)
        self.last_kind = kind

    def note_state(self) -> np.ndarray:
        """``float32[B, NOTE_STATE_DIM]``: what :func:`melodia.controls.note_state` gives for the
        stream so far (instruments of a band share the pitch state: a pitch sounds if any
        instrument holds it, aged from its latest onset)."""
        from melodia.controls import NOTE_AGE_TAU_S, NOTE_STATE_PITCHES

        sounding = self.sounding.any(axis=1)
        onset = np.where(self.sounding, self.onset, -_NEVER).max(axis=1)
        out = np.zeros((self.batch, 2 * NOTE_STATE_PITCHES), dtype=np.float32)
        lo = self.min_pitch
        hi = min(self.min_pitch + self.n_pitches, NOTE_STATE_PITCHES)
        age_s = (self.now[:, None] - onset) / self.sps
        recency = np.where(sounding, np.exp(-np.where(sounding, age_s, 0.0) / NOTE_AGE_TAU_S), 0)
        out[:, lo:hi] = sounding[:, : hi - lo]
        out[:, NOTE_STATE_PITCHES + lo : NOTE_STATE_PITCHES + hi] = recency[:, : hi - lo]
        return out

    def mask(self) -> np.ndarray:
        """``[B, V]`` bool: the events each row may emit next."""
        c = self.config
        allowed = np.ones((self.batch, self.vocab_size), dtype=bool)
        on, off, vel = self.on, self.off, self.vel
        current = self.sounding[self._rows, self.instrument]
        allowed[:, off] = current
        if self.out_of_range.any():
            allowed[:, on] &= ~self.out_of_range
        if c.max_polyphony is not None:
            full = self.count >= c.max_polyphony
            if full.any():
                allowed[full, on] = current[full]
        limit, overdue = None, ()
        if self.max_note_steps is not None and self.count.any():
            first_onset = np.where(self.sounding, self.onset, _NEVER).min(axis=(1, 2))
            limit = np.where(self.count > 0, self.max_note_steps - (self.now - first_onset), _NEVER)
            overdue = np.flatnonzero(limit <= 0)
        if self.max_wait_steps is not None:
            waits = self.max_wait_steps - self.wait
            limit = waits if limit is None else np.minimum(limit, waits)
        if limit is not None:
            allowed[:, self.shift] = self.shift_steps <= limit[:, None]
        if c.max_events_per_step is not None:
            busy = self.at_step >= c.max_events_per_step
            if busy.any():
                allowed[busy, : self.shift.start] = False
                allowed[busy, self.shift.stop :] = False
        if c.velocity_before_note_on:
            no_room = ~allowed[:, on].any(axis=1)
            if c.max_events_per_step is not None:
                no_room |= self.at_step + 2 > c.max_events_per_step
            allowed[no_room, vel] = False
            after = np.flatnonzero(self.last_kind == VELOCITY)
            if len(after):
                kept = allowed[after, on]
                allowed[after] = False
                allowed[after, on] = kept
        for b in overdue:  # force the note-off of notes that have sounded max_note_s
            late = self.sounding[b] & (self.now[b] - self.onset[b] >= self.max_note_steps)
            allowed[b] = False
            allowed[b, off] = here = late[self.instrument[b]]
            if self.prog0 is not None and not here.any():
                allowed[b, self.prog0 + np.flatnonzero(late.any(axis=1))] = True
        empty = ~allowed.any(axis=1)
        if empty.any():
            allowed[empty, self.shift.start] = True
        return allowed


# ------------------------------------------------------------------------------ the loop


class Stepper(Protocol):
    """One event at a time through a model, carrying its recurrent state (see melodia.infer)."""

    output_weight: torch.Tensor  # [V, E]: logits = features @ output_weight.T + output_bias
    output_bias: torch.Tensor | None

    def step(self, ids: torch.Tensor, state: Any, controls: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, Any]: ...

    def select(self, state: Any, rows: torch.Tensor) -> Any: ...


class StepInputs:
    """The per-step float inputs of a model with a note state: constant controls (``[B, C]``,
    ``[1, C]`` for every row, or None for zeros) followed by :meth:`Grammar.note_state`."""

    def __init__(self, controls: torch.Tensor | None, control_dim: int) -> None:
        self.controls = (torch.zeros(1, control_dim) if controls is None
                         else controls.reshape(-1, controls.shape[-1]).float())
        if self.controls.shape[1] != control_dim:
            raise ValueError(f"controls need {control_dim} values, got {self.controls.shape[1]}")

    def __call__(self, grammar: Grammar) -> torch.Tensor:
        state = torch.from_numpy(grammar.note_state())
        controls = self.controls
        if len(controls) != len(state):  # one row for all, or a beam's copies of one context
            controls = controls[:1].expand(len(state), -1)
        return torch.cat([controls, state], dim=1)


def _inputs(controls, grammar: Grammar) -> torch.Tensor | None:
    return controls(grammar) if callable(controls) else controls


def effective_noise(sampler: SamplerConfig) -> float:
    return DEFAULT_NOISE if sampler.noise is None else float(sampler.noise)


def type_values(by_type: dict[str, float], kinds: np.ndarray, default: float) -> np.ndarray:
    """One value per token: ``by_type`` of its event type (names as TYPE_CODES), else default."""
    out = np.full(len(kinds), float(default))
    for name, value in by_type.items():
        out[kinds == TYPE_CODES[name]] = float(value)
    return out


def token_scales(sampler: SamplerConfig, kinds: np.ndarray) -> np.ndarray:
    """Embedding noise scale of every token: ``noise_by_type`` for its event type, else ``noise``."""
    return type_values(sampler.noise_by_type or {}, kinds, effective_noise(sampler))


def choose(logits: torch.Tensor, features: torch.Tensor, mask: np.ndarray, stepper: Stepper,
           sampler: SamplerConfig, generator: torch.Generator,
           kinds: np.ndarray | None = None) -> torch.Tensor:
    """The next id of each row under ``sampler``, among the events ``mask`` allows (``kinds``:
    the event type of every id, for per-type embedding noise)."""
    allowed = torch.from_numpy(mask)
    if sampler.sampler == "embedding":
        scale, offset = effective_noise(sampler), None
        if sampler.noise_by_type and kinds is not None:
            scale = token_scales(sampler, kinds)
        if sampler.offset_by_type and kinds is not None:
            offset = type_values(sampler.offset_by_type, kinds, 0.0)
        return sample_embedding(features, stepper.output_weight, stepper.output_bias, generator,
                                scale=scale, kind=sampler.noise_kind,
                                metric=sampler.metric, mask=allowed, offset=offset)
    return sample_probability(logits, generator, temperature=sampler.temperature,
                              top_k=sampler.top_k, top_p=sampler.top_p, mask=allowed)


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
        ids = choose(logits, features, grammar.mask(), stepper, sampler, generator, grammar.kinds)
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
            ids = choose(logits, features, mask, stepper, sampler, generator, grammar.kinds)
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
