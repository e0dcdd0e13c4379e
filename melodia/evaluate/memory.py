"""How much the piece's own past adds: the model's NLL with and without the short-term model
(:mod:`melodia.model.memory`), per event type, and the gate fitted on training files.

Each file is scored whole: the model runs over it in segments that carry its state (so every
event is predicted from everything before it, as the short-term model predicts), giving per
event the log-probability of what came and the model's entropy; the short-term model, built as
the file goes, gives its probability of what came and the gate's features. The mixture's NLL is
then a cheap function of the gate, which :func:`fit_gate` fits by gradient descent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from melodia.evaluate.scores import Totals, event_types
from melodia.model.memory import N_FEATURES, Gate, ShortTermModel, Views, gate_for

SEGMENT = 1024  # events per model call while scoring a file (the state carries over)


@dataclass
class Scored:
    """Per event of a file but its first: the model's log-probability of the event and its
    entropy (nats), the short-term model's probability of it (0 where it predicted nothing
    or something else) and the gate's features (all 0 where nothing matched)."""

    kinds: np.ndarray
    model_logp: np.ndarray
    entropy: np.ndarray
    memory_p: np.ndarray
    features: np.ndarray


def model_scores(checkpoint, ids: np.ndarray, tempos=None,
                 band: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Log-probability of each event after the first, and the model's entropy there (``band``:
    a band model's conditions of the file)."""
    import torch

    from melodia.features.controls import model_inputs

    model = checkpoint.model
    config = model.config
    controls = model_inputs(ids, checkpoint.encoding, config, band=band, tempos=tempos) \
        if config.input_dim > 0 else None
    logp, entropy, state = [], [], None
    model.eval()
    with torch.no_grad():
        for start in range(0, len(ids) - 1, SEGMENT):
            end = min(start + SEGMENT, len(ids) - 1)
            x = torch.from_numpy(np.asarray(ids[start:end], np.int64))[None]
            c = None if controls is None else torch.from_numpy(
                np.asarray(controls[start:end], np.float32))[None]
            logits, state = model(x, state, c)
            lp = torch.log_softmax(logits[0].double(), -1)
            target = torch.from_numpy(np.asarray(ids[start + 1:end + 1], np.int64))
            logp.append(lp.gather(1, target[:, None])[:, 0].numpy())
            entropy.append(-(lp.exp() * lp).sum(-1).numpy())
    return np.concatenate(logp), np.concatenate(entropy)


def memory_scores(views: Views, ids: np.ndarray, relative: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The short-term model's probability of each event after the first, and its features."""
    stm = ShortTermModel(views, relative=relative)
    stm.observe(int(ids[0]))
    p = np.zeros(len(ids) - 1)
    features = np.zeros((len(ids) - 1, N_FEATURES))
    for i, event in enumerate(ids[1:]):
        probs, f = stm.predict()
        p[i] = probs.get(int(event), 0.0)
        features[i] = f
        stm.observe(int(event))
    return p, features


def score_file(checkpoint, ids: np.ndarray, views: Views, tempos=None,
               band: np.ndarray | None = None) -> Scored:
    logp, entropy = model_scores(checkpoint, ids, tempos, band)
    memory_p, features = memory_scores(views, ids)
    features[:, 5] = np.where(features[:, 1] > 0, entropy / 4.0, 0.0)
    return Scored(views.kinds[ids[1:]], logp, entropy, memory_p, features)


def mixed_nll(scored: Scored, gate: Gate) -> np.ndarray:
    """NLL (nats) of each event under ``(1 - g) p_model + g q_memory``."""
    g = gate.shares(scored.features)
    return -np.log((1.0 - g) * np.exp(scored.model_logp) + g * scored.memory_p)


def memory_results(checkpoint, sequences: Sequence[np.ndarray], tempos=None,
                   conditions=None, max_events: int | None = None,
                   progress: bool = False) -> list:
    """Two rows for :func:`melodia.evaluate.nll.evaluate`'s report: ``whole files``, the model
    on each file from its start (its state carried: every event predicted from all before it,
    as the short-term model predicts), and ``+memory``, the same mixed with the short-term
    model by the checkpoint's gate (:func:`~melodia.model.memory.gate_for`). No accuracy: the
    mixture's most likely event is not computed."""
    from tqdm.auto import tqdm

    types, type_of = event_types(checkpoint.encoding)
    views, gate = Views.of(checkpoint.encoding), gate_for(checkpoint)
    alone, mixed = Totals(types), Totals(types)
    left = math.inf if max_events is None else max_events
    for f in tqdm(range(len(sequences)), desc="with the memory", unit="file",
                  disable=not progress, leave=False):
        ids = np.asarray(sequences[f], np.int64)[: int(min(left, 2**62)) + 1]
        if len(ids) < 2 or left <= 0:
            continue
        left -= len(ids) - 1
        scored = score_file(checkpoint, ids, views, None if tempos is None else tempos[f],
                            None if conditions is None else conditions[f])
        kind, unknown = type_of[ids[1:]], np.full(len(ids) - 1, np.nan)
        alone.add(kind, -scored.model_logp, unknown)
        mixed.add(kind, mixed_nll(scored, gate), unknown)
    return [alone.result("whole files"), mixed.result("+memory")]


def fit_gate(scored: Sequence[Scored], steps: int = 400, run_cap: int = Gate.run_cap) -> Gate:
    """The gate that minimises the mixture's NLL over ``scored`` (training files)."""
    import torch

    features = torch.from_numpy(np.concatenate([s.features for s in scored]))
    matched = features[:, 1] > 0
    features = features[matched]
    p_model = torch.from_numpy(np.exp(np.concatenate([s.model_logp for s in scored])))[matched]
    q = torch.from_numpy(np.concatenate([s.memory_p for s in scored]))[matched]
    start = Gate()
    w = torch.tensor(start.weights, dtype=torch.float64, requires_grad=True)
    b = torch.tensor([start.bias], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        g = torch.sigmoid(features @ w + b)
        loss = -torch.log((1 - g) * p_model + g * q + 1e-300).mean()
        loss.backward()
        opt.step()
    return Gate(tuple(float(v) for v in w.detach()), float(b.detach()[0]), 1.0, run_cap)


def nll_table(scored: Sequence[Scored], gate: Gate, names: dict[int, str]) -> dict:
    """Mean NLL per event, overall and per event type, without and with the short-term model."""
    kinds = np.concatenate([s.kinds for s in scored])
    alone = -np.concatenate([s.model_logp for s in scored])
    mixed = np.concatenate([mixed_nll(s, gate) for s in scored])
    table = {"all": (float(alone.mean()), float(mixed.mean()), len(kinds))}
    for code, name in names.items():
        at = kinds == code
        if at.any():
            table[name] = (float(alone[at].mean()), float(mixed[at].mean()), int(at.sum()))
    return table


def format_table(table: dict) -> str:
    lines = [f"{'events':10s} {'count':>8s} {'model':>8s} {'+memory':>8s} {'change':>8s}"]
    for name, (alone, mixed, count) in table.items():
        change = (mixed - alone) / alone if alone > 0 else math.nan
        lines.append(f"{name:10s} {count:8d} {alone:8.3f} {mixed:8.3f} {100 * change:7.1f}%")
    return "\n".join(lines)


__all__ = ["Scored", "fit_gate", "format_table", "memory_scores",
           "mixed_nll", "model_scores", "nll_table", "score_file"]
