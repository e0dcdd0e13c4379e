"""A band that grooves: parts that come back bar after bar, drums on the grid.

An LSTM forgets what it played a bar ago; a band repeats it. For band generation
(:func:`groove_for`):

- every part of every row draws a **plan** from the style's learned bar relations
  (:class:`~melodia.features.groove.GrooveTable`, ``melodia/weights/band_groove.json``): for
  each 4/4 bar at the tempo, the bar ``k`` back it returns to (1, 2, 4 or 8), or none;
- :class:`GrooveGuide` leans each planned bar on the part's own notes ``k`` bars back, through
  the copy prior of :mod:`melodia.generation.guide` (``+strength`` for the NOTE_ON of each onset
  the source bar struck at this step and for the PROGRAM that selects its part; ``+strength``
  for the TIME_SHIFT that reaches the next planned onset). The strength of each part group was
  chosen on the validation files so that returning bars are about as similar to their source
  as the corpus's are (``data/recipes/fit_groove.py``);
- new drum hits fall only on the 16ths and eighth-note triplets of the tempo
  (:func:`~melodia.generation.given.on_grid`, as accompany and the live band lock to a beat).

``GenerateConfig.repeat`` (``--repeat``) sets the share of bars that return (0: as free as the
model alone; None: as the style's corpus does); ``drum_grid`` (``--free-drums`` turns it off).
"""

from __future__ import annotations

import dataclasses

import math
from functools import lru_cache

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import NOTE_ON, TIME_SHIFT
from melodia.features.groove import LAGS, TABLE_PATH, GrooveTable
from melodia.generation.config import GenerateConfig
from melodia.generation.given import GIVEN_DTYPE, Forcer, on_grid
from melodia.midi.instruments import DRUMS, group_of

DEFAULT_STRENGTH = 6.0  # logits, for a group the table has no calibrated strength for
PRESENCE = 8.0  # logits toward a part the style plays in most bars, silent for half a bar
PRESENT_SHARE = 0.85  # "most bars": the share of bars the style's parts of a group play in
MAX_PLANNED_BARS = 512  # bars planned when the length is a number of events
Plan = dict[int, list[int]]  # instrument -> bars back each bar returns to (0: free)


class BarLines:
    """Where each bar starts, in steps (floats: bar lines fall between steps), bar 0 first; past
    the last line given, bars as long as ``tail`` (default: the last bar given). A song's own
    bars (:func:`melodia.midi.bars.bar_starts`), or :meth:`even` ones."""

    def __init__(self, starts, tail: float | None = None) -> None:
        self.starts = np.asarray(starts, dtype=np.float64)
        if tail is None:
            tail = self.starts[-1] - self.starts[-2] if len(self.starts) > 1 else 0.0
        if not len(self.starts) or tail <= 0 or np.any(np.diff(self.starts) <= 0):
            raise ValueError("bar lines must rise, and the last bar must have a length")
        self.tail = float(tail)
        lengths = np.diff(self.starts, append=self.starts[-1] + self.tail)
        self._early = self.starts - lengths / 32  # half a 16th before each line

    @classmethod
    def even(cls, origin: float, length: float) -> "BarLines":
        return cls([origin], length)

    def start(self, bar: int) -> float:
        last = len(self.starts) - 1
        if bar < 0:  # before the first line: bars as long as the first
            return float(self.starts[0] + bar * self.length(0))
        if bar <= last:
            return float(self.starts[bar])
        return float(self.starts[-1] + (bar - last) * self.tail)

    def length(self, bar: int) -> float:
        bar = max(bar, 0)
        return self.start(bar + 1) - self.start(bar)

    def bar_of(self, step: float) -> int:
        """The bar a step counts in: a hit up to half a 16th before a bar line is that bar's
        downbeat, as the evaluation's 16th grid hears it."""
        if step >= self._early[-1]:
            return len(self.starts) - 1 + math.floor((step - self.starts[-1]) / self.tail + 1 / 32)
        return int(np.searchsorted(self._early, step, side="right")) - 1

    def moved(self, step: int, source: int, bar: int) -> int:
        """``step`` of bar ``source`` at the same place in bar ``bar`` (by its share of the bar:
        the same beat when the tempo changed between them)."""
        share = (step - self.start(source)) / self.length(source)
        return int(round(self.start(bar) + share * self.length(bar)))


@lru_cache(maxsize=1)
def groove_table() -> GrooveTable:
    """The shipped table of bar relations (learned from the band corpus's training files)."""
    return GrooveTable.load(TABLE_PATH)


def draw_plans(table: GrooveTable, style: str | None, instruments: list[int], bars: int,
               rows: int, seed: int, repeat: float | None) -> list[Plan]:
    """One plan per row: for every instrument, the relation of each of ``bars`` bars (each
    drawn by its own seed: the first bars of a plan do not depend on how many are drawn)."""
    return [{i: table.draw(style, group_of(i), bars, np.random.default_rng((seed, 33, row, i)),
                           repeat) for i in instruments} for row in range(rows)]


class GrooveGuide:
    """Logit bonuses toward what each part played ``k`` bars back, where its plan says so.

    ``plans``: one per row; ``lines``: where the bars start (:class:`BarLines`); ``now``: each
    row's step at the start; ``strengths``: the bonus per instrument.
    """

    def __init__(self, encoding: PerformanceEncoding, plans: list[Plan], lines: BarLines,
                 now: np.ndarray, strengths: dict[int, float],
                 present: dict[int, float] | None = None) -> None:
        vocab = encoding.vocab
        self.plans, self.lines = plans, lines
        self.strengths, self.size = strengths, vocab.size
        self.on0 = vocab.offset("NOTE_ON") - vocab.range("NOTE_ON").min
        self.prog0 = vocab.offset("PROGRAM")
        self.shift0 = vocab.offset("TIME_SHIFT") - vocab.range("TIME_SHIFT").min
        self.max_shift = vocab.range("TIME_SHIFT").max
        self.ons = slice(vocab.offset("NOTE_ON"),
                         vocab.offset("NOTE_ON") + vocab.range("NOTE_ON").size)
        self.offs = slice(vocab.offset("NOTE_OFF"),
                          vocab.offset("NOTE_OFF") + vocab.range("NOTE_OFF").size)
        self.now = np.array(now, dtype=np.int64)
        batch = len(plans)
        self.present = present or {}
        self.last: list[dict[int, int]] = [{} for _ in range(batch)]  # instrument -> last onset
        self.played: list[list[tuple[int, int, int]]] = [[] for _ in range(batch)]
        self.struck: list[set[tuple[int, int]]] = [set() for _ in range(batch)]
        self.targets: list[tuple[int, tuple[dict[int, set[tuple[int, int]]], set[int]]]] = [
            (-1, ({}, set())) for _ in range(batch)]

    def bar_of(self, step: int) -> int:
        """The bar a step counts in (:meth:`BarLines.bar_of`)."""
        return self.lines.bar_of(step)

    def _targets(self, b: int, bar: int) -> tuple[dict[int, set[tuple[int, int]]], set[int]]:
        """Row ``b``'s planned onsets in ``bar`` (``{step: {(instrument, pitch)}}``) and the
        instruments whose plan returns there to a bar they played in."""
        if self.targets[b][0] == bar:
            return self.targets[b][1]
        oldest = bar - max(LAGS)  # nothing further back is ever leaned on: forget it
        self.played[b] = [n for n in self.played[b] if self.bar_of(n[0]) >= oldest]
        out: dict[int, set[tuple[int, int]]] = {}
        planned = set()
        for instrument, plan in self.plans[b].items():
            k = plan[bar] if 0 <= bar < len(plan) else 0
            if not k:
                continue
            for step, i, pitch in self.played[b]:
                if i == instrument and self.bar_of(step) == bar - k:
                    out.setdefault(self.lines.moved(step, bar - k, bar), set()).add((i, pitch))
                    planned.add(instrument)  # a silent source bar leaves the part free
        self.targets[b] = (bar, (out, planned))
        return out, planned

    def bias(self, now: np.ndarray, instrument: np.ndarray) -> torch.Tensor:
        """``float32[B, V]``: each row's bonuses at its step ``now`` and instrument."""
        out = np.zeros((len(self.plans), self.size), dtype=np.float32)
        for b in range(len(self.plans)):
            at, current = int(now[b]), int(instrument[b])
            targets, planned = self._targets(b, self.bar_of(at))
            due = targets.get(at, set()) - self.struck[b]
            if current in planned:  # a returning part plays what it played, little else
                out[b, self.ons] -= self.strengths.get(current, DEFAULT_STRENGTH)
            for i, pitch in due:
                strength = self.strengths.get(i, DEFAULT_STRENGTH)
                if i == current:
                    out[b, self.on0 + pitch] += 2 * strength  # over the part's other pitches
                    if not any(j == current for j, _ in self.struck[b]):
                        out[b, self.offs] = strength  # a monophonic part ends its note first
                else:
                    out[b, self.prog0 + i] = max(out[b, self.prog0 + i], strength)
            self._keep_playing(out[b], b, at, current)
            later = [s for s in targets if s > at]
            if not due and later:  # strike, then wait for the next planned onset, not past it
                self._wait(out[b], min(later) - at, max(
                    self.strengths.get(i, DEFAULT_STRENGTH) for i, _ in targets[min(later)]))
        return torch.from_numpy(out)

    def _keep_playing(self, row: np.ndarray, b: int, at: int, current: int) -> None:
        """``+bonus`` toward a part the style plays in most bars (``present``) that has been
        silent for half a bar: its PROGRAM, or all its NOTE_ONs once it is selected."""
        half = self.lines.length(self.bar_of(at)) / 2
        for i, bonus in self.present.items():
            if at - self.last[b].get(i, -10**9) > half:
                if i == current:
                    row[self.ons] += bonus
                else:
                    row[self.prog0 + i] = max(row[self.prog0 + i], bonus)

    def _wait(self, row: np.ndarray, wait: int, strength: float) -> None:
        """``+strength`` for the TIME_SHIFT of ``wait`` steps, ``-strength`` for longer ones."""
        if wait <= self.max_shift:
            row[self.shift0 + wait] += strength
        row[self.shift0 + wait + 1:self.shift0 + self.max_shift + 1] -= strength

    def update(self, ids: np.ndarray, kinds: np.ndarray, values: np.ndarray,
               instrument: np.ndarray) -> None:
        """Rows remember what each part struck and when (``instrument``: before ``ids``)."""
        for b, event in enumerate(ids.tolist()):
            if kinds[event] == TIME_SHIFT:
                self.now[b] += int(values[event])
                self.struck[b].clear()
            elif kinds[event] == NOTE_ON:
                note = (int(instrument[b]), int(values[event]))
                self.struck[b].add(note)
                self.played[b].append((int(self.now[b]), *note))
                self.last[b][note[0]] = int(self.now[b])


def groove_for(encoding: PerformanceEncoding, config: GenerateConfig, plan: dict | None,
               now: np.ndarray, until: int | None, seed: int,
               table: GrooveTable | None = None, lines: BarLines | None = None
               ) -> tuple[GrooveGuide | None, Forcer | None]:
    """The guide and drum-grid forcer of a band generation (None, None: not a band, or a beam
    search, or both levers off); bars: ``lines`` (a song's), else 4/4 at the plan's tempo from
    the stream's start."""
    if plan is None or not plan.get("qpm") or config.sampler.beam_size > 1:
        return None, None
    sps = encoding.config.steps_per_second
    qpm, instruments = float(plan["qpm"]), list(plan["instruments"])
    origin = 0  # bars and grid count from the stream's start, as the model's meter input does
    forcer = None
    if config.drum_grid and DRUMS in instruments:
        forcer = Forcer(encoding, np.zeros(0, dtype=GIVEN_DTYPE), len(now),
                        grid=lambda steps: on_grid(steps, [[0.0, qpm]], sps))
    if config.repeat == 0 and not config.keep_playing:
        return None, forcer
    table = table or groove_table()
    lines = lines or BarLines.even(origin, 240.0 / qpm * sps)
    present = {i: PRESENCE for i in instruments
               if table.presence_share(plan.get("style"), group_of(i)) >= PRESENT_SHARE}
    if config.repeat == 0:  # keep_playing alone: no bar planned, the parts called back
        if not present:
            return None, forcer
        plans: list[Plan] = [{} for _ in range(len(now))]
    else:  # each bar's relation drawn by its own seed: how many are drawn changes none
        bars = lines.bar_of(until) + 2 if until else MAX_PLANNED_BARS
        plans = draw_plans(table, plan.get("style"), instruments, bars, len(now), seed,
                           config.repeat)
    strengths = {i: table.strength.get(group_of(i), DEFAULT_STRENGTH) for i in instruments}
    return GrooveGuide(encoding, plans, lines, now, strengths, present), forcer


def stream_guide(encoding: PerformanceEncoding, config: GenerateConfig, plan: dict | None,
                 now: np.ndarray, seed: int) -> GrooveGuide | None:
    """The guide of an endless stream (``stream``, a live band): the parts called back
    (``config.keep_playing``), no bar planned and no grid forced; None where that is nothing."""
    free = dataclasses.replace(config, repeat=0.0, drum_grid=False)
    return groove_for(encoding, free, plan, now.copy(), None, seed)[0]


__all__ = ["BarLines", "DEFAULT_STRENGTH", "GrooveGuide", "Plan", "draw_plans", "groove_for",
           "groove_table", "stream_guide"]
