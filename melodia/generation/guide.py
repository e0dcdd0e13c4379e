"""A copy prior for given material: logit bonuses toward what a reference bar strikes at the
same place in the bar, so that generated bars lean on the music around them.

An LSTM does not copy what it heard a bar ago, and real music does: bass and drums repeat most
bars. :class:`BarGuide` adds to the model's logits, at each free step of a row (as a cache
language model mixes a copy distribution into the model's):

- ``+strength`` for the NOTE_ON of each onset the reference bar strikes at this step of the bar
  (and for the PROGRAM that selects its instrument) that the row has not struck yet;
- ``+strength`` for the TIME_SHIFT that reaches the reference's next onset.

The model still chooses: where its own probability for a copied event is low the bonus does not
win, and the temperature spreads it as it spreads the logits. Segments say which reference each
stretch of the stream leans on: an infill's first half on the bar before the span, its second
half on the bar after it; a varied repeat on the bar it repeats.

:class:`HarmonyGuide` is the accompanist's prior: a bonus for the pitch classes the given music
sounds in the current beat (or the triad they imply), for the pitched parts; a bass has its own,
stronger one for the pitch classes that sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import NOTE_ON, TIME_SHIFT
from melodia.midi.instruments import DRUMS, FAMILIES

DEFAULT_STRENGTH = 10.0  # logits; chosen on the validation files (eval_infill.py: 3, 6, 10)


@dataclass(frozen=True)
class Segment:
    """Steps ``[start, end)`` of the stream lean on ``onsets``: ``{step in the bar: {(instrument,
    pitch), ...}}`` of a reference bar ``length`` steps long, whose step 0 falls on ``origin``."""

    start: int
    end: int
    origin: int
    length: int
    onsets: dict[int, frozenset[tuple[int, int]]]


def bar_onsets(q: np.ndarray, start: int, end: int) -> dict[int, frozenset[tuple[int, int]]]:
    """The onsets of quantized notes ``q`` (``QNOTE_DTYPE``) in steps ``[start, end)``, by step
    from ``start``."""
    inside = q[(q["start"] >= start) & (q["start"] < end)]
    out: dict[int, set[tuple[int, int]]] = {}
    for s, i, p in zip((inside["start"] - start).tolist(), inside["instrument"].tolist(),
                       inside["pitch"].tolist()):
        out.setdefault(int(s), set()).add((int(i), int(p)))
    return {k: frozenset(v) for k, v in out.items()}


class BarGuide:
    """Logit bonuses toward the onsets of reference bars (see the module's text)."""

    def __init__(self, encoding: PerformanceEncoding, segments: list[Segment], batch: int,
                 strength: float = DEFAULT_STRENGTH) -> None:
        vocab = encoding.vocab
        self.segments, self.batch, self.strength = segments, batch, float(strength)
        self.size = vocab.size
        self.on0 = vocab.offset("NOTE_ON") - vocab.range("NOTE_ON").min
        self.prog0 = (vocab.offset("PROGRAM") if "PROGRAM" in [r.type for r in vocab.ranges]
                      else None)  # a one-instrument encoding: every onset is its own
        self.shift0 = vocab.offset("TIME_SHIFT") - vocab.range("TIME_SHIFT").min
        self.max_shift = vocab.range("TIME_SHIFT").max
        self.struck: list[set[tuple[int, int]]] = [set() for _ in range(batch)]

    def _segment(self, now: int) -> Segment | None:
        for segment in self.segments:
            if segment.start <= now < segment.end:
                return segment
        return None

    def bias(self, now: np.ndarray, instrument: np.ndarray) -> torch.Tensor:
        """``float32[B, V]``: each row's bonuses at its time ``now`` and instrument."""
        out = np.zeros((self.batch, self.size), dtype=np.float32)
        for b in range(self.batch):
            segment = self._segment(int(now[b]))
            if segment is None:
                continue
            at = (int(now[b]) - segment.origin) % segment.length
            due = segment.onsets.get(at, frozenset()) - self.struck[b]
            for i, p in due:
                if i == int(instrument[b]) or self.prog0 is None:
                    out[b, self.on0 + p] += self.strength
                else:
                    out[b, self.prog0 + i] = self.strength
            wait = self._next_onset(segment, at)
            if wait is not None and wait <= self.max_shift:
                out[b, self.shift0 + wait] += self.strength
        return torch.from_numpy(out)

    @staticmethod
    def _next_onset(segment: Segment, at: int) -> int | None:
        later = [s for s in segment.onsets if s > at]
        if later:
            return min(later) - at
        return segment.length - at + min(segment.onsets) if segment.onsets else None

    def update(self, ids: np.ndarray, kinds: np.ndarray, values: np.ndarray,
               instrument: np.ndarray) -> None:
        """Rows remember what they struck at this step (``instrument``: before ``ids``)."""
        for b, event in enumerate(ids.tolist()):
            if kinds[event] == TIME_SHIFT:
                self.struck[b].clear()
            elif kinds[event] == NOTE_ON:
                self.struck[b].add((int(instrument[b]), int(values[event])))


class HarmonyGuide:
    """A harmony prior for accompanying known music: ``+strength`` for every NOTE_ON of a
    pitched part whose pitch class sounds in the given music within the current beat or
    belongs to the triad those pitch classes imply (what a player reading the chart knows: the
    file's future is there to read). ``beat_classes``: ``bool[beats, 12]``; ``beat_of``: the
    beat of every step. A bass (GM programs 32..39) leans on ``bass_weights`` instead where
    given (``float[beats, 12]``, logits: its own, stronger pull toward the pitch classes that
    sound). Drums get nothing; where the given music is silent, nothing."""

    def __init__(self, encoding: PerformanceEncoding, beat_classes: np.ndarray,
                 beat_of: np.ndarray, strength: float,
                 bass_weights: np.ndarray | None = None) -> None:
        vocab = encoding.vocab
        note = vocab.range("NOTE_ON")
        self.size, self.strength = vocab.size, float(strength)
        self.first = vocab.offset("NOTE_ON")
        self.classes = np.arange(note.min, note.max + 1) % 12
        self.table = beat_classes[:, self.classes].astype(np.float32) * self.strength
        self.bass_table = (self.table if bass_weights is None else
                           bass_weights[:, self.classes].astype(np.float32))
        self.beat_of = beat_of

    def bias(self, now: np.ndarray, instrument: np.ndarray) -> torch.Tensor:
        """``float32[B, V]``: the bonuses at each row's step ``now`` for its instrument."""
        out = np.zeros((len(now), self.size), dtype=np.float32)
        beats = self.beat_of[np.minimum(now, len(self.beat_of) - 1)]
        bass = is_bass(instrument)
        notes = slice(self.first, self.first + len(self.classes))
        chords = (instrument < DRUMS) & ~bass
        out[chords, notes] = self.table[beats[chords]]
        out[bass, notes] = self.bass_table[beats[bass]]
        return torch.from_numpy(out)

    def update(self, ids, kinds, values, instrument) -> None:
        """Nothing to remember (the interface of :class:`BarGuide`)."""


class Guides:
    """Several guides as one (their bonuses added, each told every event): accompany's harmony
    prior with the groove's bar plan. Make one with :func:`combined`."""

    def __init__(self, *guides) -> None:
        self.guides = list(guides)

    def bias(self, now: np.ndarray, instrument: np.ndarray) -> torch.Tensor:
        out = self.guides[0].bias(now, instrument)
        for guide in self.guides[1:]:
            out = out + guide.bias(now, instrument)
        return out

    def update(self, ids, kinds, values, instrument) -> None:
        for guide in self.guides:
            guide.update(ids, kinds, values, instrument)


def combined(*guides):
    """One guide for ``guides`` (None where every one is None)."""
    kept = [g for g in guides if g is not None]
    return None if not kept else kept[0] if len(kept) == 1 else Guides(*kept)


def is_bass(instrument: np.ndarray) -> np.ndarray:
    """``bool[B]``: which instruments are basses (the GM bass family, programs 32..39)."""
    instrument = np.asarray(instrument)
    return (instrument < DRUMS) & (instrument // 8 == FAMILIES.index("bass"))


__all__ = ["BarGuide", "DEFAULT_STRENGTH", "Guides", "HarmonyGuide", "Segment", "bar_onsets",
           "combined", "is_bass"]
