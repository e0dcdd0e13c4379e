"""Calibrate the embedding sampler: one noise scale per event type, matched to the model.

The embedding sampler (:func:`melodia.generation.pick.sample_embedding`) perturbs the predicted output
embedding and emits the nearest token. One scale for every event is a poor fit: a scale that
makes pitches varied makes velocities erratic and time shifts collapse to the shortest one. Here
each event type gets its own scale, chosen so the sampler is as adventurous as the model itself
is uncertain, within that type:

for the real next events of type ``k`` (teacher forcing on real music), the model's softmax over
type ``k``'s tokens has an expected log-probability ``E_p[log p]`` (minus its entropy); the
sampler at scale ``s`` picks tokens whose mean ``log p`` falls as ``s`` grows. The calibrated
scale is the ``s`` on a grid where the two meet, so on average the sampler's picks are as likely
under the model as samples from the model would be. Then, since each type's tokens are scored from
their own perturbed point, a score offset per type is fitted (a few fixed-point steps) so the
sampler picks each type as often as the model's softmax gives it on the same real contexts. The
result, ``{"scale": {type: s}, "offset": {type: b}}``, is stored in the checkpoint
(``extra["embedding_noise"]``) and used whenever ``--noise`` is not given.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

from melodia.encoding.events import TYPE_CODES, lookup_tables
from melodia.evaluate import segments
from melodia.features.controls import model_inputs
from melodia.generation.pick import perturb_direction, sample_embedding, type_values

log = logging.getLogger(__name__)

SCALE_GRID = tuple(np.round(np.geomspace(0.1, 12.0, 40), 4))
TYPES = ("NOTE_ON", "NOTE_OFF", "TIME_SHIFT", "VELOCITY", "PROGRAM", "TEMPO")


def _teacher_forced(model, sequences: Sequence[np.ndarray], encoding, segment: int,
                    max_events: int, conditions: Sequence[np.ndarray | None] | None = None,
                    tempos: Sequence | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted output embeddings ``[N, E]`` and the real next ids ``[N]`` (the same segments
    ``melodia evaluate`` scores)."""

    feats, targets, inputs = [], [], {}
    model.eval()
    with torch.no_grad():
        for f, start, end in segments(sequences, segment, max_events):
            seq = np.asarray(sequences[f], dtype=np.int64)
            if f not in inputs:  # the note state of a segment depends on what came before it
                band = conditions[f] if conditions is not None else None
                inputs[f] = model_inputs(seq, encoding, model.config, band=band,
                                         tempos=tempos[f] if tempos is not None else None)
            ids = torch.from_numpy(seq[start:end])[None]
            cond = (torch.from_numpy(inputs[f][start : end - 1])[None]
                    if inputs[f].shape[1] else None)
            features, _ = model.features(ids[:, :-1], None, cond)
            feats.append(features[0].float())
            targets.append(ids[0, 1:])
    return torch.cat(feats), torch.cat(targets)


def _mean_logp(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               logp: torch.Tensor, scale: float, generator: torch.Generator) -> float:
    norm = features.norm(dim=-1, keepdim=True)
    u = features / norm.clamp_min(1e-12)
    moved = perturb_direction(u, scale, generator)
    scores = moved * norm @ weight.T + (0 if bias is None else bias)
    return float(logp.gather(1, scores.argmax(-1, keepdim=True)).mean())


def calibrate_embedding_noise(model, sequences: Sequence[np.ndarray], encoding, *,
                              max_events: int = 20_000, segment: int = 512, seed: int = 0,
                              grid: Sequence[float] = SCALE_GRID,
                              offset_rounds: int = 12,
                              conditions: Sequence[np.ndarray | None] | None = None,
                              tempos: Sequence | None = None) -> dict[str, dict[str, float]]:
    """Per event type, the noise scale whose picks match the model's expected log-probability.

    Parameters
    ----------
    model : a model of either family (tied output embeddings): LSTM or transformer.
    sequences : event ids of real music (training or validation data, never the test files).
    encoding : their encoding.
    max_events : teacher-forced steps to measure on.

    Returns
    -------
    ``{"scale": {"NOTE_ON": s, ...}, "offset": {"NOTE_ON": b, ...}}`` for every type that occurs
    in ``sequences``.
    """
    features, targets = _teacher_forced(model, sequences, encoding, segment, max_events,
                                        conditions, tempos)
    weight = model.embedding.weight.detach().float() if model.head is None else \
        model.head.weight.detach().float()
    bias = model.bias.detach().float() if model.head is None else model.head.bias.detach().float()
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name in TYPES:
        if name not in [r.type for r in encoding.vocab.ranges]:
            continue
        lo = encoding.vocab.offset(name)
        hi = lo + encoding.vocab.range(name).size
        rows = (targets >= lo) & (targets < hi)
        if int(rows.sum()) < 20:
            continue
        f = features[rows]
        w, b = weight[lo:hi], bias[lo:hi]
        logp = torch.log_softmax(f @ w.T + b, dim=-1)
        target = float((logp.exp() * logp).sum(-1).mean())
        achieved = [_mean_logp(f, w, b, logp, s, generator) for s in grid]
        best = int(np.argmin([abs(a - target) for a in achieved]))
        out[name] = float(grid[best])
        log.info("%s: model E[log p] %.3f, sampler %.3f at scale %.3g", name, target,
                 achieved[best], grid[best])
    offsets = _type_offsets(features, targets, weight, bias, encoding, out, generator,
                            offset_rounds)
    return {"scale": out, "offset": offsets}


def _type_offsets(features: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor, encoding, scales: dict[str, float],
                  generator: torch.Generator, rounds: int) -> dict[str, float]:
    """Per-type score offsets that make the sampler's type frequencies the model's."""

    kinds, _ = lookup_tables(encoding.vocab)
    names = [n for n in scales]
    codes = np.array([TYPE_CODES[n] for n in names])
    token_scale = type_values(scales, kinds, 0.0)
    probs = torch.softmax(features @ weight.T + bias, dim=-1).numpy()
    want = np.array([probs[:, kinds == c].sum(axis=1).mean() for c in codes])
    offsets = np.zeros(len(names))
    for _ in range(rounds):
        ids = sample_embedding(features, weight, bias, generator, scale=token_scale,
                               offset=type_values(dict(zip(names, offsets)), kinds, 0.0)).numpy()
        got = np.array([(kinds[ids] == c).mean() for c in codes])
        offsets += np.log(np.maximum(want, 1e-4) / np.maximum(got, 1e-4))
    log.info("type shares: model %s, sampler %s", np.round(want, 3), np.round(got, 3))
    return {n: round(float(o), 4) for n, o in zip(names, offsets)}


__all__ = ["SCALE_GRID", "calibrate_embedding_noise"]
