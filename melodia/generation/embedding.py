"""The embedding-space sampler: perturb the predicted output embedding, emit the nearest token.

The model's last layer predicts a point ``f`` in the output-embedding space (logits are
``f @ W.T + b``, ``W`` the tied token embeddings). Its direction ``u = f / |f|`` is perturbed on
the unit sphere, ``f' = |f| u'``, and the token *nearest* to ``f'`` is emitted; see
:mod:`melodia.generation.sample` for the two noises and the two nearness metrics. A scale (and a score offset)
may be given per event type: tokens of one type are then scored from their own perturbed point;
:mod:`melodia.generation.calibrate` fits both to a model.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from melodia.encoding.events import TYPE_CODES


def vmf_kappa(scale: float, dim: int) -> float:
    """Concentration whose vMF draws have mean cosine ~ ``1 / sqrt(1 + scale^2)`` in ``dim`` dims.

    From the large-dimension approximation ``A(kappa) ~ kappa / (nu + sqrt(nu^2 + kappa^2))``,
    ``nu = (dim - 1) / 2``, the mean cosine of a vMF draw to its mean direction.
    """
    return (dim - 1) * math.sqrt(1 + scale * scale) / (scale * scale)


def sample_vmf(mu: torch.Tensor, kappa: float, generator: torch.Generator) -> torch.Tensor:
    """Unit vectors ``[B, E]`` from von Mises-Fisher(``mu``, ``kappa``), by Wood's (1994) method.

    The cosine ``w`` to ``mu`` is drawn by rejection with a Beta((E-1)/2, (E-1)/2) proposal, taken
    as ``(1 + t) / 2`` for ``t`` a coordinate of a uniform point on the sphere (so only ``randn``
    and ``rand`` are needed, both seeded by ``generator``); the rest is a uniform direction
    orthogonal to ``mu``.
    """
    n, p = mu.shape
    m = p - 1
    b = m / (2 * kappa + math.sqrt(4 * kappa * kappa + m * m))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * math.log(1 - x0 * x0)
    w = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    while len(todo):
        g = torch.randn(len(todo), p, generator=generator, dtype=torch.float64)
        z = (1 + g[:, 0] / g.norm(dim=1)) / 2
        wt = (1 - (1 + b) * z) / (1 - (1 - b) * z)
        u = torch.rand(len(todo), generator=generator, dtype=torch.float64)
        ok = kappa * wt + m * torch.log1p(-x0 * wt) - c >= torch.log(u)
        w[todo[ok]] = wt[ok]
        todo = todo[~ok]
    mu64 = mu.double()
    v = torch.randn(n, p, generator=generator, dtype=torch.float64)
    v = v - (v * mu64).sum(1, keepdim=True) * mu64
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    w = w.unsqueeze(1)
    return (w * mu64 + torch.sqrt((1 - w * w).clamp_min(0)) * v).to(mu.dtype)


def perturb_direction(u: torch.Tensor, scale: float, generator: torch.Generator,
                      kind: str = "gaussian") -> torch.Tensor:
    """Unit directions ``[B, E]`` moved at random by noise of ``scale`` (0: unchanged)."""
    if scale == 0:
        return u
    if kind == "vmf":
        return sample_vmf(u, vmf_kappa(scale, u.shape[-1]), generator)
    noise = torch.randn(u.shape, generator=generator, dtype=u.dtype)
    moved = u + noise * (scale / math.sqrt(u.shape[-1]))
    return moved / moved.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _nearest_scores(features: torch.Tensor, u: torch.Tensor, norm: torch.Tensor,
                    moved: torch.Tensor, scale: float, weight: torch.Tensor,
                    bias: torch.Tensor | None, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return moved @ (weight / weight.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
    # the output layer itself, so that scale 0 reproduces the logits bit for bit
    return F.linear(features if scale == 0 else moved * norm, weight, bias)


def sample_embedding(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     generator: torch.Generator, *, scale: float | np.ndarray = 0.5,
                     kind: str = "gaussian", metric: str = "logit",
                     mask: torch.Tensor | None = None,
                     offset: np.ndarray | None = None) -> torch.Tensor:
    """Ids ``[B]``: the tokens nearest to the perturbed predicted embeddings ``features [B, E]``.

    ``weight [V, E]`` and ``bias [V]`` are the output layer (``logits = features @ weight.T +
    bias``); see the module docstring for the exact definition. ``scale`` may also be one scale
    per token (``[V]``, e.g. per event type): tokens sharing a scale are scored from one
    perturbed point, each group from its own independent draw. ``offset [V]`` is added to the
    scores before the nearest token is taken (per-type offsets from calibration).
    """
    norm = features.norm(dim=-1, keepdim=True)
    u = features / norm.clamp_min(1e-12)
    if np.ndim(scale) == 0:
        moved = perturb_direction(u, float(scale), generator, kind)
        scores = _nearest_scores(features, u, norm, moved, float(scale), weight, bias, metric)
    else:
        scale = np.asarray(scale, dtype=np.float64)
        scores = features.new_empty(features.shape[0], weight.shape[0])
        for value in np.unique(scale):
            rows = torch.from_numpy(np.flatnonzero(scale == value))
            moved = perturb_direction(u, float(value), generator, kind)
            scores[:, rows] = _nearest_scores(features, u, norm, moved, float(value),
                                              weight[rows], None if bias is None else bias[rows],
                                              metric)
    if offset is not None:
        scores = scores + torch.from_numpy(np.asarray(offset, dtype=np.float32))
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return scores.argmax(-1)


def type_values(by_type: dict[str, float], kinds: np.ndarray, default: float) -> np.ndarray:
    """One value per token: ``by_type`` of its event type (names as TYPE_CODES), else default."""
    out = np.full(len(kinds), float(default))
    for name, value in by_type.items():
        out[kinds == TYPE_CODES[name]] = float(value)
    return out


__all__ = ["perturb_direction", "sample_embedding", "sample_vmf", "type_values", "vmf_kappa"]
