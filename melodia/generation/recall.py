"""The piece's own past while sampling: each row's short-term model (:mod:`melodia.model.memory`)
mixed into the model's next-event distribution before the sampler chooses.

``memory`` (``GenerateConfig.memory``, ``--memory``) scales the gate: 0 is the model alone, 1
the gate as fitted on training files (the model's own, else the piano's shipped one,
``melodia/weights/piano_memory.json``). Each row's model starts from the row's context (a
primer), sees every event the row plays, and fades while a long run of events has been copied
(``Gate.run_cap``), so a piece returns to its material without locking into a loop. A copy
the model itself finds implausible (below :data:`PLAUSIBLE`, such as a note-off for a key not
held) is not offered (at memory 1 it takes 8% off the notes per second:
tests/benchmarks/eval_memory.py).
"""

from __future__ import annotations

import numpy as np
import torch

from melodia.model.memory import Gate, ShortTermModel, Views, gate_for, mix

PLAUSIBLE = 1e-3  # a copy the model gives less probability than this is not offered


class Recall:
    """Short-term models for a batch of rows: :meth:`adjust` the model's logits before the
    sampler chooses, :meth:`update` with the events chosen."""

    def __init__(self, encoding, gate: Gate, contexts: list[np.ndarray]) -> None:
        views = Views.of(encoding)
        self.gate = gate
        self.models = [ShortTermModel(views) for _ in contexts]
        for model, context in zip(self.models, contexts):
            for event in context:
                model.observe(int(event))

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        """``log((1 - g) p + g q)`` per row (rows where nothing matched keep their logits)."""
        probs = torch.softmax(logits.double(), -1).numpy()
        out = logits.clone()
        for row, model in enumerate(self.models):
            found, features = model.predict()
            found = plausible(found, probs[row])
            mixed, g = mix(probs[row], found, features, self.gate, model.run, sampling=True)
            if g > 0.0:
                with np.errstate(divide="ignore"):
                    out[row] = torch.from_numpy(np.log(mixed)).to(logits.dtype)
        return out

    def update(self, chosen: np.ndarray) -> None:
        for model, event in zip(self.models, chosen):
            model.observe(int(event))


def plausible(found: dict[int, float], p_model: np.ndarray) -> dict[int, float]:
    """``found`` without the events ``p_model`` gives less than :data:`PLAUSIBLE`, renormalised
    (empty if none is left)."""
    kept = {event: p for event, p in found.items() if p_model[event] >= PLAUSIBLE}
    total = sum(kept.values())
    return {event: p / total for event, p in kept.items()} if total > 0.0 else {}


def recall_for(checkpoint, memory: float, contexts: list[np.ndarray]) -> Recall | None:
    """A :class:`Recall` for ``contexts`` (one per row) at ``memory`` (checked by
    ``GenerateConfig``; 0: none)."""
    if not memory:
        return None
    return Recall(checkpoint.encoding, gate_for(checkpoint, memory), contexts)


__all__ = ["Recall", "recall_for"]
