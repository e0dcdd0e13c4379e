"""The generation loop: one model step per event, for a batch of pieces or a beam search.

:func:`iter_steps` runs the loop without end: each step the samplers of
:mod:`melodia.generation.pick` choose one event per row among those the grammar allows, the
grammar advances and hands the next mask, and the model steps on the new events alone (its state,
or its key-value cache, carries the past). With ``beam_size > 1`` the rows are Magenta's beam
search: every context becomes ``beam_size x branch_factor`` rows, scored by their
log-likelihood, and every ``steps_per_iteration`` steps the likeliest ``beam_size`` of each
context go on, ``branch_factor`` times each. :func:`sample_rows` and :func:`best_beams` decide
when to stop and gather the ids; under :func:`watched` they report their progress (and a
watcher that raises stops them: a cancel button, a time limit).
"""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, NamedTuple, Protocol

import numpy as np
import torch

from melodia.generation.config import SamplerConfig
from melodia.generation.grammar import Grammar
from melodia.generation.pick import Output, choose


class Stepper(Output, Protocol):
    """One event at a time through a model, carrying its recurrent state (see melodia.model.stepper)."""

    def step(self, ids: torch.Tensor, state: Any, controls: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, Any]: ...

    def select(self, state: Any, rows: torch.Tensor) -> Any: ...


class Inputs(Protocol):
    """A model's float inputs at each step, made from the grammar's state (see
    :class:`melodia.generation.session.StepInputs`)."""

    def __call__(self, grammar: Grammar) -> torch.Tensor: ...

    def select(self, rows: torch.Tensor) -> "Inputs": ...


class Start(NamedTuple):
    """Where the loop begins: the grammar fed the context and the mask it allows next, the
    model's outputs and state after the context, and its step inputs (None: it takes none)."""

    grammar: Grammar
    mask: np.ndarray
    logits: torch.Tensor
    features: torch.Tensor
    state: Any
    inputs: Inputs | None


class Step(NamedTuple):
    """One step of the loop: the event chosen for every row; in a beam search also the row
    (of the step before) each row continues, where rows were kept or copied, and each row's
    log-likelihood so far."""

    ids: np.ndarray
    kept: np.ndarray | None = None
    scores: torch.Tensor | None = None


def iter_steps(stepper: Stepper, start: Start, sampler: SamplerConfig,
               generator: torch.Generator, guide=None, recall=None) -> Iterator[Step]:
    """Yield each step of ``start``'s rows (``beam_size > 1``: of their beams), without end;
    sampled rows lean on ``guide``'s bonuses where one is given (a
    :class:`~melodia.generation.guide.BarGuide`) and on their own past through ``recall`` (a
    :class:`~melodia.generation.recall.Recall`)."""
    grammar, mask, logits, features, state, inputs = start
    beam, kept, scores = sampler.beam_size > 1, None, None
    if beam and (guide is not None or recall is not None):
        raise ValueError("a guide or the memory leans sampled rows; beam search takes neither")
    instrument = grammar.instrument
    if beam:  # every context becomes `width` rows, all alike until the first events
        pieces, width = grammar.batch, sampler.beam_size * sampler.branch_factor
        offsets = torch.arange(pieces)[:, None] * width
        kept = np.repeat(np.arange(pieces), width)
        rows = torch.from_numpy(kept)
        logits, features, state = logits[rows], features[rows], stepper.select(state, rows)
        inputs = None if inputs is None else inputs.select(rows)
        mask, instrument = mask[kept], instrument[kept]
        scores = torch.zeros(len(kept), dtype=torch.float64)
    for n in itertools.count(1):
        logits, bonus = leaned(logits, grammar, instrument, guide, recall)
        ids = choose(logits, features, mask, stepper, sampler, generator, grammar.kinds,
                     instrument, bonus)
        if beam:
            masked = logits.float().masked_fill(~torch.from_numpy(mask), -math.inf)
            scores = scores + torch.log_softmax(masked, -1).gather(1, ids[:, None])[:, 0].double()
        chosen = ids.numpy()
        if guide is not None:
            guide.update(chosen, grammar.kinds, grammar.values, instrument)
        if recall is not None:
            recall.update(chosen)
        mask = grammar.advance(chosen, kept)
        yield Step(chosen, kept, scores)  # before the model's step: a live player waits less
        logits, features, state = stepper.step(ids, state, inputs and inputs(grammar))
        kept, instrument = None, grammar.instrument
        if beam and n % sampler.steps_per_iteration == 0:  # prune: the likeliest of each context
            order = torch.argsort(scores.view(pieces, width), dim=1, descending=True, stable=True)
            rows = (order[:, : sampler.beam_size] + offsets).repeat_interleave(
                sampler.branch_factor, dim=1).flatten()
            kept = rows.numpy()
            logits, features, state = logits[rows], features[rows], stepper.select(state, rows)
            scores, mask, instrument = scores[rows], mask[kept], instrument[kept]


def leaned(logits: torch.Tensor, grammar: Grammar, instrument: np.ndarray, guide=None,
           recall=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``logits`` with ``guide``'s bonuses and ``recall``'s mixture in, and what they added (for
    the embedding sampler, which scores tokens at a perturbed point instead of by the logits;
    None when neither is given)."""
    if guide is None and recall is None:
        return logits, None
    base = logits
    if guide is not None:
        logits = logits + guide.bias(grammar.now, instrument).to(logits.dtype)
    if recall is not None:
        logits = recall.adjust(logits)
    return logits, logits - base


WATCH_EVERY = 50  # steps between progress reports
_WATCH: ContextVar[Callable[[int, float], None] | None] = ContextVar("melodia_watch",
                                                                    default=None)


@contextmanager
def watched(report: Callable[[int, float], None]) -> Iterator[None]:
    """In this block (this thread), every generation loop calls ``report(events, seconds)``
    every :data:`WATCH_EVERY` steps: the events made so far and the stream time reached (of the
    slowest row); an exception ``report`` raises ends the generation."""
    token = _WATCH.set(report)
    try:
        yield
    finally:
        _WATCH.reset(token)


class Stopped(BaseException):
    """Raised by a watcher (see :func:`watched`) to end a generation early: a cancel button, a
    time limit. A BaseException, so no library on the way swallows it."""


_KEEP: ContextVar[list[BaseException] | None] = ContextVar("melodia_keep", default=None)


@contextmanager
def keep_partial() -> Iterator[list[BaseException]]:
    """In this block, a sampled generation that is stopped (:class:`Stopped` from a watcher, or
    Ctrl-C) returns the events it made so far instead of raising; the list yielded then holds
    what stopped it (empty: it ran to the end). Beam searches still raise: their best row is
    only known at the end of an iteration."""
    stops: list[BaseException] = []
    token = _KEEP.set(stops)
    try:
        yield stops
    finally:
        _KEEP.reset(token)


def _report(count: int, grammar: Grammar) -> None:
    report = _WATCH.get()
    if report is not None and count % WATCH_EVERY == 0:
        report(count, float(grammar.now.min()) / grammar.sps)


def sample_rows(steps: Iterator[Step], grammar: Grammar, *, max_events: int,
                until_step: int | None = None) -> list[np.ndarray]:
    """Run ``steps`` until every row holds ``max_events`` ids or has reached time ``until_step``."""
    done = np.zeros(grammar.batch, dtype=bool)
    length = np.zeros(grammar.batch, dtype=np.int64)
    out: list[np.ndarray] = []
    try:
        for step in steps:
            out.append(step.ids)
            length += ~done
            done |= length >= max_events
            if until_step is not None:
                done |= grammar.now >= until_step
            if done.all():
                break
            _report(len(out), grammar)
    except (Stopped, KeyboardInterrupt) as stop:
        stops = _KEEP.get()
        if stops is None:
            raise
        stops.append(stop)  # `length` counts the steps taken whole: those are kept
    table = np.stack(out, axis=1) if out else np.empty((grammar.batch, 0), np.int64)
    return [table[b, : length[b]] for b in range(grammar.batch)]


def best_beams(steps: Iterator[Step], grammar: Grammar, sampler: SamplerConfig, *,
               max_events: int, until_step: int | None = None) -> list[np.ndarray]:
    """Run a beam search's ``steps`` until the likeliest row of each context holds
    ``max_events`` ids or has reached time ``until_step`` (checked every
    ``steps_per_iteration`` steps); the ids of that row, for each context."""
    width = sampler.beam_size * sampler.branch_factor
    history: list[Step] = []
    best: dict[int, np.ndarray] = {}
    for step in steps:
        history.append(step)
        _report(len(history), grammar)
        if len(history) % sampler.steps_per_iteration:
            continue
        pieces = len(step.ids) // width
        for piece in set(range(pieces)) - set(best):
            row = piece * width + int(torch.argmax(step.scores[piece * width:(piece + 1) * width]))
            if len(history) >= max_events or (until_step is not None
                                              and grammar.now[row] >= until_step):
                best[piece] = _trace(history, row)[:max_events]
        if len(best) == pieces:
            return [best[piece] for piece in range(pieces)]
    raise ValueError("the steps ended before every beam did")


def _trace(history: list[Step], row: int) -> np.ndarray:
    """The ids that led to ``row`` of the last step, followed back through the rows kept."""
    ids = []
    for step in reversed(history):
        ids.append(step.ids[row])
        if step.kept is not None:
            row = int(step.kept[row])
    return np.array(ids[::-1], dtype=np.int64)


__all__ = ["Inputs", "Start", "Step", "Stepper", "Stopped", "WATCH_EVERY", "best_beams",
           "iter_steps", "keep_partial", "leaned", "sample_rows", "watched"]
