"""Given material: notes that must sound, forced into a generated stream in time order while the
model plays only the other parts. Accompaniment, infill and song form all decode this way.

How a stream is decoded around given notes (:func:`iter_given`):

- the given notes become note events on the band encoding's 10 ms grid (:func:`given_events`:
  by step, note-offs before note-ons, by instrument and pitch, as the encoding lays them out);
- when a row's time reaches a given event, the :class:`Forcer` emits it, with the PROGRAM that
  selects its instrument and the VELOCITY it is struck at where the stream's state differs;
  all given events of an instant come before the model's own, so the model hears them first;
- between given instants the model samples freely among its own parts, but no TIME_SHIFT may
  jump past the next given event, so every given note lands on its own step;
- the grammar knows the given instruments (:meth:`Grammar.give`): their notes feed the note
  state the model reads, and the model may not select those instruments nor end their notes;
- with a ``grid`` (:func:`grid_steps`: the given music's 16th notes and eighth-note triplets,
  within 20 ms), new drum hits fall only on it: a band locks to the beat it hears.

The model sees the given part exactly as it saw the other parts of a band in training: as
events in its input stream and as sounding pitches in its note state.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import VELOCITY
from melodia.features.band import beat_map, beats_at
from melodia.generation.config import SamplerConfig
from melodia.generation.decoding import Start, Step, Stepper, leaned
from melodia.generation.grammar import Grammar
from melodia.generation.pick import choose

GIVEN_DTYPE = np.dtype([("step", "i8"), ("on", "?"), ("instrument", "i8"), ("pitch", "i8"),
                        ("vbin", "i8")])
FREE = -1  # a row the model plays (no given event due)
GRID_TOLERANCE_S = 0.02  # a drum hit this close to a grid position is on it
DRUMS = 128  # the band encoding's drum kit


def given_events(q: np.ndarray) -> np.ndarray:
    """``GIVEN_DTYPE`` note events of quantized notes (``QNOTE_DTYPE``: start and end steps,
    pitch, velocity bin, instrument), in the band encoding's order within a step."""
    n = len(q)
    out = np.empty(2 * n, dtype=GIVEN_DTYPE)
    out["step"] = np.concatenate([q["end"], q["start"]])
    out["on"] = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
    out["instrument"] = np.concatenate([q["instrument"], q["instrument"]])
    out["pitch"] = np.concatenate([q["pitch"], q["pitch"]])
    out["vbin"] = np.concatenate([q["vbin"], q["vbin"]])
    order = np.lexsort((out["pitch"], out["instrument"], out["on"], out["step"]))
    return out[order]


def grid_steps(tempos, until: int, sps: int, tolerance_s: float = GRID_TOLERANCE_S
               ) -> np.ndarray:
    """``bool[until + 1]``: the steps within ``tolerance_s`` of a 16th note or an eighth-note
    triplet of the tempo map ``tempos`` (``[[time_s, qpm], ...]``, the grid starting at 0 s)."""
    return on_grid(np.arange(until + 1), tempos, sps, tolerance_s)


def on_grid(steps: np.ndarray, tempos, sps: int, tolerance_s: float = GRID_TOLERANCE_S
            ) -> np.ndarray:
    """``bool[len(steps)]``: which ``steps`` are on :func:`grid_steps`' grid (any step: a
    stream without end asks for its own)."""
    seconds = np.asarray(steps) / sps
    beats = beats_at(seconds, tempos)
    starts, qpm, _ = beat_map(tempos)
    tolerance_beats = tolerance_s * qpm[np.maximum(np.searchsorted(starts, seconds, "right") - 1,
                                                   0)] / 60.0
    near = np.zeros(len(seconds), dtype=bool)
    for per_beat in (4, 3):
        off = np.abs(beats * per_beat - np.rint(beats * per_beat)) / per_beat
        near |= off <= tolerance_beats + 1e-9
    return near


class Forcer:
    """Which given event each row must emit next, and how far it may wait before it.

    ``events`` (``GIVEN_DTYPE``, sorted) are the same for every row; each row keeps its own
    place in them, and the velocity bin in force in its stream (``velocity``: after the
    context; :data:`FREE`: none yet).
    An event whose step a row has passed (a context that ran over it) is emitted at once.
    ``grid`` (:func:`grid_steps`): the steps where new drum hits may fall (None: any), or a
    function of the rows' steps saying whether each is on it (:func:`on_grid`).
    """

    def __init__(self, encoding: PerformanceEncoding, events: np.ndarray, batch: int = 1,
                 velocity: int = FREE, grid: np.ndarray | None = None) -> None:
        vocab = encoding.vocab
        self.events, self.batch, self.grid = events, batch, grid
        self.on = slice(vocab.offset("NOTE_ON"), vocab.offset("NOTE_ON") + vocab.range("NOTE_ON").size)
        self.vel = slice(vocab.offset("VELOCITY"),
                         vocab.offset("VELOCITY") + vocab.range("VELOCITY").size)
        self.next = np.zeros(batch, dtype=np.int64)
        self.velocity = np.full(batch, velocity, dtype=np.int64)
        self.prog0 = vocab.offset("PROGRAM")
        self.on0 = vocab.offset("NOTE_ON") - vocab.range("NOTE_ON").min
        self.off0 = vocab.offset("NOTE_OFF") - vocab.range("NOTE_OFF").min
        self.shift0 = vocab.offset("TIME_SHIFT")
        self.shift_steps = np.arange(vocab.range("TIME_SHIFT").min,
                                     vocab.range("TIME_SHIFT").max + 1)
        self._note = np.zeros(batch, dtype=bool)  # the forced id is the due event's note

    @property
    def done(self) -> np.ndarray:
        """``bool[B]``: rows that have emitted every given event."""
        return self.next >= len(self.events)

    def due_step(self) -> np.ndarray:
        """``int64[B]``: the step of each row's next given event (a far step when none)."""
        padded = np.append(self.events["step"], np.iinfo(np.int64).max // 4)
        return padded[np.minimum(self.next, len(self.events))]

    def forced(self, grammar: Grammar) -> np.ndarray:
        """``int64[B]``: the id each row must emit now, or :data:`FREE`."""
        out = np.full(self.batch, FREE, dtype=np.int64)
        self._note[:] = False
        due = np.flatnonzero(~self.done & (self.due_step() <= grammar.now))
        for b in due.tolist():
            event = self.events[self.next[b]]
            instrument, pitch = int(event["instrument"]), int(event["pitch"])
            if grammar.instrument[b] != instrument or not grammar.programmed[b]:
                out[b] = self.prog0 + instrument
            elif event["on"] and self.velocity[b] != event["vbin"]:
                out[b] = self.vel.start + int(event["vbin"]) - 1
            else:
                out[b] = (self.on0 if event["on"] else self.off0) + pitch
                self._note[b] = True
        return out

    def restrict(self, mask: np.ndarray, grammar: Grammar) -> np.ndarray:
        """``mask`` with no TIME_SHIFT past each row's next given event, and no drum hit off
        the grid."""
        room = self.due_step() - grammar.now
        shifts = slice(self.shift0, self.shift0 + len(self.shift_steps))
        mask = mask.copy()
        mask[:, shifts] &= self.shift_steps[None] <= room[:, None]
        if self.grid is not None:
            grid = (self.grid(grammar.now) if callable(self.grid) else
                    self.grid[np.minimum(grammar.now, len(self.grid) - 1)])
            off = (grammar.instrument == DRUMS) & ~grid
            mask[off, self.on] = False
            mask[off, self.vel] = False
        empty = ~mask.any(axis=1)
        mask[empty, self.shift0] = True  # nothing left: wait the shortest step
        return mask

    def update(self, ids: np.ndarray, kinds: np.ndarray, values: np.ndarray) -> None:
        """Rows move on past the given event they emitted; every row's velocity follows."""
        self.next += self._note
        is_velocity = kinds[ids] == VELOCITY
        self.velocity = np.where(is_velocity, values[ids], self.velocity)


def iter_given(stepper: Stepper, start: Start, sampler: SamplerConfig,
               generator: torch.Generator, forcer: Forcer, guide=None,
               recall=None) -> Iterator[Step]:
    """Yield each step of ``start``'s rows without end: the given events where they are due,
    the model's own choices (never past the next given event) everywhere else, leaning on
    ``guide``'s reference bars (a :class:`~melodia.generation.guide.BarGuide`) where one is given
    and on the piece's own past through ``recall`` (a
    :class:`~melodia.generation.recall.Recall`, which hears the given events too)."""
    grammar, mask, logits, features, state, inputs = start
    while True:
        forced = forcer.forced(grammar)
        free = forced == FREE
        if free.any():
            logits, bonus = leaned(logits, grammar, grammar.instrument, guide, recall)
            ids = choose(logits, features, forcer.restrict(mask, grammar), stepper, sampler,
                         generator, grammar.kinds, grammar.instrument, bonus).numpy()
            ids = np.where(free, ids, forced)
        else:
            ids = forced
        if guide is not None:
            guide.update(ids, grammar.kinds, grammar.values, grammar.instrument)
        if recall is not None:
            recall.update(ids)
        forcer.update(ids, grammar.kinds, grammar.values)
        mask = grammar.advance(ids)
        yield Step(ids)
        logits, features, state = stepper.step(torch.from_numpy(ids), state,
                                               inputs and inputs(grammar))


__all__ = ["FREE", "Forcer", "GIVEN_DTYPE", "GRID_TOLERANCE_S", "given_events", "grid_steps",
           "iter_given", "on_grid"]
