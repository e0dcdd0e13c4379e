"""What a scorer reports: NLL sums per event type (and per instrument group), and the result
row they make (:class:`EvalResult`), shared by the model, the n-gram baselines and the short-term
model's rows."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class EvalResult:
    """Scores of one predictor on one set of events; NLL in nats per event."""

    name: str
    events: int
    nll: float
    accuracy: float
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)
    # band encoding: the same per instrument group (melodia.features.band.EVENT_GROUPS)
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def bits(self) -> float:
        return self.nll / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nll, 700.0))

    def to_dict(self) -> dict[str, Any]:
        accuracy = None if math.isnan(self.accuracy) else self.accuracy  # JSON has no NaN
        return {**asdict(self), "accuracy": accuracy, "bits": self.bits,
                "perplexity": self.perplexity}


class Totals:
    """Running sums (nll, correct, count) per event type, and per group when ``groups`` are
    given (band: per instrument group): one flat vector, easy to all-reduce."""

    def __init__(self, types: Sequence[str], values: np.ndarray | None = None,
                 groups: Sequence[str] = ()) -> None:
        self.types, self.groups = list(types), list(groups)
        size = 3 * (len(self.types) + len(self.groups))
        self.values = np.zeros(size) if values is None else np.asarray(values, float)

    def add(self, type_index: np.ndarray, nll: np.ndarray, correct: np.ndarray,
            group_index: np.ndarray | None = None) -> None:
        self._add(0, len(self.types), type_index, nll, correct)
        if self.groups and group_index is not None:
            self._add(3 * len(self.types), len(self.groups), group_index, nll, correct)

    def _add(self, at: int, k: int, index: np.ndarray, nll: np.ndarray,
             correct: np.ndarray) -> None:
        v = self.values[at : at + 3 * k]
        v[:k] += np.bincount(index, weights=nll, minlength=k)
        v[k : 2 * k] += np.bincount(index, weights=correct, minlength=k)
        v[2 * k :] += np.bincount(index, minlength=k)

    @staticmethod
    def _table(names: list[str], v: np.ndarray) -> dict[str, dict[str, float]]:
        k = len(names)
        nll, count = v[:k], v[2 * k : 3 * k]
        total = max(count.sum(), 1.0)
        return {t: {"events": int(count[i]), "share": float(count[i] / total),
                    "nll": float(nll[i] / count[i]) if count[i] else None}
                for i, t in enumerate(names)}

    def result(self, name: str) -> EvalResult:
        k = len(self.types)
        v = self.values
        nll, correct, count = v[:k], v[k : 2 * k], v[2 * k : 3 * k]
        total = max(count.sum(), 1.0)
        by_group = (self._table(self.groups, v[3 * k :]) if self.groups else {})
        return EvalResult(name=name, events=int(count.sum()), nll=float(nll.sum() / total),
                          accuracy=float(correct.sum() / total),
                          by_type=self._table(self.types, v[: 3 * k]), by_group=by_group)


def event_types(encoding) -> tuple[list[str], np.ndarray]:
    """Event-type names and, per id, the index of its type."""
    ranges = encoding.vocab.ranges
    return [r.type for r in ranges], np.repeat(np.arange(len(ranges)), [r.size for r in ranges])


__all__ = ["EvalResult", "Totals", "event_types"]
