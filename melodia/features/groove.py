"""What comes back: a learned plan of which earlier bar each bar of a part repeats or varies.

Real band parts return: a groove repeats bar after bar, a riff every two or four bars
(Museformer: most related bars lie 1, 2, 4 or 8 bars back). For every part of a file
(:func:`bar_relations`), each bar after the first is related to the bar ``k`` back (``k`` in
:data:`LAGS`) whose set of (16th position, pitch) is most like its own, when that Jaccard
similarity is at least :data:`RELATED`; otherwise it is *free* (``k = 0``). A
:class:`GrooveTable` counts those relations per style and part group (drums, bass, guitar...)
as a Markov chain over ``k`` (the relation of bar ``n`` given that of bar ``n - 1``), with the
mean similarity of each ``k``; :meth:`GrooveTable.draw` draws a plan for a new part from it.

Bars are 4/4 at the file's tempo map, counted from the file's start, as
:func:`melodia.evaluate.structure.bar_return` counts them.

>>> import numpy as np
>>> from melodia.midi import make_notes
>>> riff = np.tile([36, 38, 36, 38], 8)                   # one bar, eight times, at 120 qpm
>>> notes = make_notes(np.arange(32) * 0.5, np.arange(32) * 0.5 + 0.1, riff, [90] * 32)
>>> [k for k, s in bar_relations(notes, None)]
[0, 1, 1, 1, 1, 1, 1, 1]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodia.midi import Score
from melodia.midi.bars import quarters_at

LAGS = (1, 2, 4, 8)  # bars back a bar may return to
STATES = (0,) + LAGS  # 0: a free bar
RELATED = 0.5  # Jaccard from which a bar counts as a (varied) return of an earlier one
PER_QUARTER, BEATS_PER_BAR = 4, 4  # 16th notes, 4/4
POOLED = "*"  # the table of every style together: for a style the table does not know
TABLE_PATH = Path(__file__).resolve().parent.parent / "weights" / "band_groove.json"


def bar_sets(notes: np.ndarray, tempos: np.ndarray | None) -> list[frozenset[tuple[int, int]]]:
    """Each bar's set of (16th position in the bar, pitch), from bar 0 to the last bar with a
    note (empty bars included)."""
    if not len(notes):
        return []
    score = Score() if tempos is None else Score(tempos=tempos)
    pos = np.rint(quarters_at(notes["start_s"], score) * PER_QUARTER).astype(np.int64)
    bar, slot = np.divmod(pos, PER_QUARTER * BEATS_PER_BAR)
    out: list[set[tuple[int, int]]] = [set() for _ in range(int(bar.max()) + 1)]
    for b, s, p in zip(bar.tolist(), slot.tolist(), notes["pitch"].tolist()):
        out[b].add((s, int(p)))
    return [frozenset(s) for s in out]


def jaccard(a: frozenset, b: frozenset) -> float:
    """``|a & b| / |a | b|`` (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def relations(bars: list[frozenset[tuple[int, int]]]) -> list[tuple[int, float]]:
    """``(k, similarity)`` of every bar: the lag in :data:`LAGS` of the most similar earlier
    bar (the nearest on ties), or ``(0, best similarity)`` when it is under :data:`RELATED`,
    the bar is empty or it is the first."""
    out = []
    for n, bar in enumerate(bars):
        scored = [(jaccard(bar, bars[n - k]), -k) for k in LAGS if k <= n and bar]
        best, lag = max(scored, default=(0.0, 0))
        out.append((-lag if best >= RELATED else 0, best))
    return out


def bar_relations(notes: np.ndarray, tempos: np.ndarray | None) -> list[tuple[int, float]]:
    """:func:`relations` of a part's bars (:func:`bar_sets`)."""
    return relations(bar_sets(notes, tempos))


@dataclass
class GrooveTable:
    """Counts of bar relations by ``style -> group -> ...``: ``transitions[s][g]`` is a
    ``[5, 5]`` list of counts (row: the relation of the bar before, column: this bar's, in
    :data:`STATES` order) and ``similarity[s][g]`` the summed similarity per state (its mean:
    ``similarity / counts``); ``strength[g]``: the copy prior's logit bonus for the group;
    ``presence[s][g]``: bars the group's parts play in and bars counted (from a part's first
    note on)."""

    transitions: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    similarity: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    strength: dict[str, float] = field(default_factory=dict)
    presence: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # [played, bars]

    def add(self, style: str, group: str, rels: list[tuple[int, float]]) -> None:
        """Count one part's relations under ``style`` and under :data:`POOLED`."""
        for key in dict.fromkeys((style, POOLED)):
            counts = self.transitions.setdefault(key, {}).setdefault(
                group, [[0.0] * len(STATES) for _ in STATES])
            sims = self.similarity.setdefault(key, {}).setdefault(group, [0.0] * len(STATES))
            for (before, _), (k, s) in zip(rels, rels[1:]):
                counts[STATES.index(before)][STATES.index(k)] += 1
                sims[STATES.index(k)] += s

    def add_presence(self, style: str, group: str, bars: list[frozenset]) -> None:
        """Count in how many of a part's bars (from its first note on) it plays."""
        played = [bool(b) for b in bars]
        if True in played:
            played = played[played.index(True):]
            for key in dict.fromkeys((style, POOLED)):
                row = self.presence.setdefault(key, {}).setdefault(group, [0.0, 0.0])
                row[0] += sum(played)
                row[1] += len(played)

    def presence_share(self, style: str | None, group: str) -> float:
        """Share of bars ``style``'s ``group`` parts play in (0 where none was counted)."""
        for key in (style, POOLED):
            row = self.presence.get(key or POOLED, {}).get(group)
            if row and row[1]:
                return row[0] / row[1]
        return 0.0

    def chain(self, style: str | None, group: str) -> np.ndarray | None:
        """``[5, 5]`` transition probabilities for ``style`` and ``group`` (the pooled styles'
        where the style lacks the group; None where no style has it)."""
        for key in (style, POOLED):
            counts = self.transitions.get(key or POOLED, {}).get(group)
            if counts is not None and np.sum(counts) > 0:
                c = np.asarray(counts, float) + 0.5  # add-half: no transition impossible
                return c / c.sum(axis=1, keepdims=True)
        return None

    def return_share(self, style: str | None, group: str) -> float:
        """Share of bars that return (``k > 0``) in the training parts of ``style``/``group``."""
        for key in (style, POOLED):
            counts = self.transitions.get(key or POOLED, {}).get(group)
            if counts is not None and np.sum(counts) > 0:
                column = np.asarray(counts, float).sum(axis=0)
                return float(column[1:].sum() / column.sum())
        return 0.0

    def mean_similarity(self, style: str | None, group: str, k: int) -> float:
        """Mean similarity of the ``k``-back relations of ``style``/``group`` in training."""
        for key in (style, POOLED):
            counts = self.transitions.get(key or POOLED, {}).get(group)
            if counts is not None and np.sum(counts) > 0:
                n = np.asarray(counts, float).sum(axis=0)[STATES.index(k)]
                return float(self.similarity[key or POOLED][group][STATES.index(k)] / n) if n \
                    else RELATED
        return RELATED

    def draw(self, style: str | None, group: str, bars: int, rng: np.random.Generator,
             repeat: float | None = None) -> list[int]:
        """A plan of ``bars`` relations for a new part: ``k`` per bar (0: free), from the
        chain, never further back than the part's first bar. ``repeat`` (0..1) sets the share
        of bars that return instead of the corpus's (0: every bar free)."""
        chain = self.chain(style, group)
        plan = [0]
        for n in range(1, bars):
            if chain is None or repeat == 0:
                plan.append(0)
                continue
            p = chain[STATES.index(plan[-1])].copy()
            p[[i for i, k in enumerate(STATES) if k > n]] = 0.0
            if repeat is not None:
                back = p[1:].sum()
                p[1:] = p[1:] / back * repeat if back else 0.0
                p[0] = 1.0 - p[1:].sum()
            plan.append(int(rng.choice(STATES, p=p / p.sum())))
        return plan

    def to_dict(self) -> dict[str, Any]:
        return {"lags": list(LAGS), "related": RELATED, "transitions": self.transitions,
                "similarity": self.similarity, "strength": self.strength,
                "presence": self.presence}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GrooveTable":
        if tuple(data.get("lags", ())) != LAGS:
            raise ValueError(f"a groove table of lags {data.get('lags')}, not {list(LAGS)}")
        return cls(data["transitions"], data["similarity"], dict(data.get("strength", {})),
                   data.get("presence", {}))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path = TABLE_PATH) -> "GrooveTable":
        return cls.from_dict(json.loads(Path(path).read_text()))


__all__ = ["GrooveTable", "LAGS", "POOLED", "RELATED", "STATES", "TABLE_PATH", "bar_relations",
           "bar_sets", "jaccard", "relations"]
