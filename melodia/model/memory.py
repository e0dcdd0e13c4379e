"""The piece's own past as a second predictor: a short-term model mixed into the model's.

Music psychology's model of melodic expectation (IDyOM) predicts with a long-term model of the
corpus *and* a short-term model built from the piece heard so far; cache language models do the
same for text. A trained network predicts from the corpus; what it lacks is the pull of what
this piece already did. :class:`ShortTermModel` is that pull, for one piece, built as it goes:

- **views** that survive transposition, rubato and dynamics: a note is kept as its interval from
  the last note struck (a motif played a fourth higher matches), a time shift and a velocity in
  coarse classes *as context* (a phrase played a little slower or softer still matches) but
  exactly as what is predicted;
- **contexts** of :data:`ORDERS` lengths (1 to 32 events: a grace note to two bars of a melody),
  each a hashed tuple, with the counts of what followed it: updating and predicting cost the
  same at event 10,000 as at event 10 (no rescan of the past);
- a **prediction** that blends the orders that matched, longest first, each passing on an
  escape share (PPM's method C) — the part no context explains stays with the long-term model;
- a **gate** (:class:`Gate`) that weighs the two by the evidence of the moment: how long the
  match is, how often that context went on that way, how sure each model is, and how many
  events in a row the short-term model has been right about. Its weights are fitted on training
  files (:func:`melodia.evaluate.memory.fit_gate`); while sampling, a run of copied events past
  ``run_cap`` fades the gate, so a piece that returns to its themes does not lock into a loop.

Mixing is linear in probabilities, ``p = (1 - g) p_model + g q_memory``, as cache models do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from melodia.encoding.events import NOTE_OFF, NOTE_ON, TIME_SHIFT, VELOCITY, lookup_tables

ORDERS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # context lengths, in events
SPAN = 36  # intervals kept relative (3 octaves); a wider leap is kept as its absolute pitch
N_FEATURES = 6  # the gate's inputs (see ShortTermModel.features)


@dataclass(frozen=True)
class Gate:
    """``g = memory x sigmoid(w . features + b)``; ``memory`` scales it (0: the model alone).
    While sampling, ``lean x memory`` is added to the logit: a sampled piece hears its own past
    more than the gate that predicts real playing best (fitted at ``lean`` 0) would have it,
    and a copied run longer than ``run_cap`` events fades it (the guard against a loop). The
    defaults are a cautious start; fitted and tuned values live in a model's metadata."""

    weights: tuple[float, ...] = (1.5, 2.0, 1.0, 0.0, -0.2, 0.5)
    bias: float = -4.0
    memory: float = 1.0
    run_cap: int = 96  # sampling: events copied in a row before the gate fades
    lean: float = 0.0  # sampling: logits added at memory 1

    def __post_init__(self) -> None:
        if len(self.weights) != N_FEATURES:
            raise ValueError(f"a gate has {N_FEATURES} weights, got {len(self.weights)}")
        if not 0.0 <= self.memory <= 1.0:
            raise ValueError(f"memory must be in 0..1, got {self.memory}")
        if not all(math.isfinite(v) for v in (*self.weights, self.bias, self.lean)):
            raise ValueError("a gate's weights must be finite")
        if not 1 <= self.run_cap <= 100_000:
            raise ValueError(f"a gate's run_cap must be 1..100000, got {self.run_cap}")

    def shares(self, features: np.ndarray, sampling: bool = False) -> np.ndarray:
        """The short-term model's share for each row of ``features`` (``[N, 6]``; 0 where
        nothing matched)."""
        lean = self.lean * self.memory if sampling else 0.0
        z = np.clip(features @ np.asarray(self.weights) + self.bias + lean, -30.0, 30.0)
        return np.where(features[:, 1] > 0, self.memory / (1.0 + np.exp(-z)), 0.0)

    def weight(self, features: np.ndarray, run: int = 0, sampling: bool = False) -> float:
        """The short-term model's share for one event's ``features``; while ``sampling``,
        leaning and faded by a copied ``run`` past ``run_cap``."""
        if self.memory == 0.0:
            return 0.0
        g = float(self.shares(features[None], sampling)[0])
        if sampling and run > self.run_cap:
            g *= math.exp(-(run - self.run_cap) / self.run_cap)
        return g

    def to_dict(self) -> dict:
        return {"weights": list(self.weights), "bias": self.bias, "run_cap": self.run_cap,
                "lean": self.lean}

    @classmethod
    def from_dict(cls, info: dict | None, memory: float = 1.0) -> "Gate":
        if not info:
            return cls(memory=memory)
        return cls(tuple(float(w) for w in info["weights"]), float(info["bias"]), memory,
                   int(info.get("run_cap", cls.run_cap)), float(info.get("lean", cls.lean)))


@dataclass
class Views:
    """Per encoding, the tables that turn ids into symbols and back (see the module's text).
    Symbols below ``V`` are ids as they are; ``V + j`` for a note-on at interval ``j - SPAN``
    from the last note struck, ``V + W + j`` for a note-off (``W = 2 SPAN + 1``)."""

    kinds: np.ndarray
    values: np.ndarray
    vocab_size: int
    on0: int  # id of the lowest NOTE_ON, and its pitch
    on_min: int
    off0: int
    n_pitch: int
    context: np.ndarray = field(init=False)  # symbol -> context symbol

    def __post_init__(self) -> None:
        V, W = self.vocab_size, 2 * SPAN + 1
        self.context = np.arange(V + 2 * W)
        shift, velocity = self.kinds == TIME_SHIFT, self.kinds == VELOCITY
        # time shifts in half-octave classes, velocities in eight classes: the context only
        classes = np.where(shift, np.round(2 * np.log2(np.maximum(self.values, 1))), 0)
        base = V + 2 * W
        self.context[:V][shift] = base + classes[shift]
        self.context[:V][velocity] = base + 40 + self.values[velocity] * 8 // (
            int(self.values[velocity].max()) + 1)

    @classmethod
    def of(cls, encoding) -> "Views":
        vocab = encoding.vocab
        kinds, values = lookup_tables(vocab)
        on, off = vocab.range("NOTE_ON"), vocab.offset("NOTE_OFF")
        return cls(kinds, values, encoding.vocab_size, vocab.offset("NOTE_ON"), on.min, off,
                   on.size)

    def symbol(self, event: int, ref: int | None) -> int:
        """What is predicted for ``event`` after the last note struck at pitch ``ref``."""
        kind = self.kinds[event]
        if ref is None or kind not in (NOTE_ON, NOTE_OFF):
            return event
        step = int(self.values[event]) - ref
        if abs(step) > SPAN:
            return event
        return self.vocab_size + (kind == NOTE_OFF) * (2 * SPAN + 1) + step + SPAN

    def event(self, symbol: int, ref: int | None) -> int:
        """The id a ``symbol`` stands for after ``ref`` (-1: off the keyboard)."""
        if symbol < self.vocab_size:
            return symbol
        j = symbol - self.vocab_size
        off, j = divmod(j, 2 * SPAN + 1)
        pitch = (ref or 0) + j - SPAN - self.on_min
        if ref is None or not 0 <= pitch < self.n_pitch:
            return -1
        return (self.off0 if off else self.on0) + pitch


class ShortTermModel:
    """One piece's short-term model (see the module's text): :meth:`observe` each event as it
    comes, :meth:`predict` the next. ``relative=False`` keeps notes as their ids (a band's
    drums, or a test)."""

    def __init__(self, views: Views, orders: tuple[int, ...] = ORDERS,
                 relative: bool = True) -> None:
        self.views, self.orders, self.relative = views, tuple(sorted(orders)), relative
        self._tables: list[dict[tuple, list]] = [{} for _ in self.orders]
        self._history: list[int] = []  # context symbols, newest last (only the longest kept)
        self._now: list[tuple | None] = [None] * len(self.orders)  # the contexts at this point
        self.ref: int | None = None  # pitch of the last note struck
        self.run = 0  # events in a row the prediction's likeliest event was what came
        self._guess = -1  # the likeliest event of the last prediction
        self.events = 0


    def observe(self, event: int) -> None:
        """Add ``event`` to the piece: counted after each context that preceded it."""
        symbol = self.views.symbol(event, self.ref if self.relative else None)
        for table, context in zip(self._tables, self._now):
            if context is None:
                break
            entry = table.get(context)
            if entry is None:
                table[context] = [1, {symbol: 1}]
            else:
                entry[0] += 1
                entry[1][symbol] = entry[1].get(symbol, 0) + 1
        self.run = self.run + 1 if event == self._guess else 0
        self._history.append(int(self.views.context[symbol]))
        if len(self._history) > 2 * self.orders[-1]:
            del self._history[: -self.orders[-1]]
        h = self._history  # the contexts the next event follows, made once for both uses
        self._now = [tuple(h[-k:]) if len(h) >= k else None for k in self.orders]
        if self.views.kinds[event] == NOTE_ON:
            self.ref = int(self.views.values[event])
        self.events += 1

    def predict(self) -> tuple[dict[int, float], np.ndarray]:
        """The next event's distribution over ids (those the piece makes likely; they sum to
        1, or the dict is empty when no context matched) and the gate's features:
        ``[longest order matched (log2, / 5), share explained (1 - escape), likeliest share,
        count at the longest order (log, / 4), events in a row predicted (log, / 4), 1]``;
        the last is replaced by the model's entropy in :meth:`mix`."""
        found: dict[int, float] = {}
        rest, longest, count = 1.0, 0, 0
        for k, table, context in reversed(list(zip(self.orders, self._tables, self._now))):
            entry = None if context is None else table.get(context)
            if entry is None:
                continue
            total, counts = entry
            escape = len(counts) / (total + len(counts))
            if not longest:
                longest, count = k, total
            for symbol, c in counts.items():
                found[symbol] = found.get(symbol, 0.0) + rest * (1.0 - escape) * c / total
            rest *= escape
        features = np.zeros(N_FEATURES)
        if not found:
            self._guess = -1
            return {}, features
        ref = self.ref if self.relative else None
        probs: dict[int, float] = {}
        for symbol, p in found.items():
            event = self.views.event(symbol, ref)
            if event >= 0:
                probs[event] = probs.get(event, 0.0) + p
        total = sum(probs.values())
        if total <= 0.0:
            self._guess = -1
            return {}, features
        probs = {e: p / total for e, p in probs.items()}
        self._guess = max(probs, key=probs.__getitem__)
        features[:5] = (math.log2(longest) / 5.0, 1.0 - rest, probs[self._guess],
                        math.log1p(count) / 4.0, math.log1p(self.run) / 4.0)
        return probs, features


def mix(p_model: np.ndarray, probs: dict[int, float], features: np.ndarray, gate: Gate,
        run: int = 0, sampling: bool = False) -> tuple[np.ndarray, float]:
    """``(1 - g) p_model + g q`` over the vocabulary and the gate's share ``g``; ``p_model``
    a probability vector (``features[5]`` is set to its entropy, in nats / 4)."""
    if not probs:
        return p_model, 0.0
    nonzero = p_model[p_model > 0]
    features[5] = float(-(nonzero * np.log(nonzero)).sum()) / 4.0
    g = gate.weight(features, run, sampling)
    if g == 0.0:
        return p_model, 0.0
    out = p_model * (1.0 - g)
    events = np.fromiter(probs.keys(), dtype=np.int64, count=len(probs))
    out[events] += g * np.fromiter(probs.values(), dtype=np.float64, count=len(probs))
    return out, g


SHIPPED_GATES = {"piano": "piano_memory.json"}  # the encoding's name -> a gate fitted for it


@lru_cache(maxsize=None)
def _shipped(name: str) -> dict | None:
    file = SHIPPED_GATES.get(name)
    if file is None:
        return None
    path = resources.files("melodia.weights").joinpath(file)
    return json.loads(path.read_text()) if path.is_file() else None


def gate_for(checkpoint, memory: float = 1.0) -> Gate:
    """The gate of ``checkpoint`` (its metadata's ``memory``, else the shipped one for its
    encoding, else the default), at ``memory``."""
    info = (checkpoint.extra or {}).get("memory") or _shipped(checkpoint.encoding.name)
    return Gate.from_dict(info, memory)


__all__ = ["Gate", "N_FEATURES", "ORDERS", "ShortTermModel", "Views", "gate_for", "mix"]
