"""Choosing the next event of each row: the samplers over a model's outputs.

Every sampler is a pure function of the model's outputs and an explicit ``torch.Generator``, so
the same seed gives the same music. Two families:

- **probability** (:func:`sample_probability`): temperature, top-k, top-p (nucleus); greedy at
  temperature 0.
- **embedding** (:func:`sample_embedding`): the model's last hidden layer predicts a point ``f`` in
  the output-embedding space (the logits are ``f @ W.T + b``, ``W`` the tied token embeddings).
  Its direction ``u = f / |f|`` is perturbed on the unit sphere, ``f' = |f| u'``, and the token
  *nearest* to ``f'`` is emitted. Two noises of scale ``s`` (see :func:`perturb_direction`):

  * ``gaussian``: ``u' = normalize(u + s * e / sqrt(E))``, ``e ~ N(0, I_E)``: the noise vector has
    expected length ``s`` against the unit direction, so ``cos(u, u') ~ 1 / sqrt(1 + s^2)``;
  * ``vmf``: ``u' ~ vMF(u, kappa)`` with ``kappa = (E - 1) sqrt(1 + s^2) / s^2``, chosen so the
    mean cosine to ``u`` is about the same ``1 / sqrt(1 + s^2)`` (sampled exactly, Wood 1994).

  Nearness is measured two ways: ``metric="logit"`` (default) scores a token by the model's own
  output layer at the perturbed point, ``f' . W_v + b_v`` = ``|f| |W_v| cos(u', W_v) + b_v``, so
  scale 0 *is* greedy decoding; ``metric="cosine"`` uses ``cos(u', W_v)`` alone (scale 0 is then
  the cosine-nearest token, which is greedy only when all embeddings share one norm and there is
  no bias; on the shipped piano model the two agree on 58% of held-out steps). Larger scales move
  to tokens whose embeddings lie near the prediction (neighbouring pitches, similar shifts) rather
  than to tokens the softmax happens to weight. On the shipped model, scales of 1 or less loop
  like greedy decoding; 2-3 give the corpus's note density and lengths (default 2.5).

Both choose among the events a grammar mask allows (:mod:`melodia.generation.grammar`), so
generated streams are always well formed; :mod:`melodia.generation.decoding` runs the loop.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from melodia.encoding.events import TYPE_CODES

if TYPE_CHECKING:
    from melodia.generation.config import SamplerConfig

DEFAULT_NOISE = 2.5  # embedding sampler scale when neither the user nor the model gives one


class Output(Protocol):
    """A model's output layer, which the embedding sampler scores tokens with (a stepper)."""

    output_weight: torch.Tensor  # [V, E]: logits = features @ output_weight.T + output_bias
    output_bias: torch.Tensor | None


# ------------------------------------------------------------------------ probability sampler


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[..., V]`` scaled by ``1 / temperature`` with disallowed events at ``-inf``.

    ``mask`` (bool, True = allowed) is applied first, so top-k and top-p choose among allowed
    events only. Top-p keeps the smallest set of likeliest events whose probability is >= p.
    """
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf)
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop_sorted = (torch.cumsum(probs, dim=-1) - probs) >= top_p  # the first always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def sample_probability(logits: torch.Tensor, generator: torch.Generator, *,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """One event id per row of ``logits [B, V]``, drawn with ``generator``; ids ``[B]``.

    Draws from ``softmax(filter_logits(...))`` by inverting its cumulative distribution with one
    uniform number per row (cheaper per event than ``torch.multinomial``); with top-k/top-p the
    likeliest events are sorted first and only the kept prefix's mass is sampled.
    """
    x = logits.float()
    if mask is not None:
        x = x.masked_fill(~mask, -math.inf)
    if temperature == 0:
        return x.argmax(-1)
    if temperature != 1.0:
        x = x / temperature
    order = None
    if 0 < top_k < x.shape[-1]:
        x, order = torch.topk(x, top_k, dim=-1)
    elif top_p < 1.0:
        x, order = torch.sort(x, dim=-1, descending=True)
    probs = torch.softmax(x, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    if top_p < 1.0:  # the smallest prefix whose mass reaches top_p (at least one event)
        kept = ((cdf - probs) < top_p).sum(-1, keepdim=True)
        total = cdf.gather(-1, kept - 1)
    else:
        total = cdf[..., -1:]
    # u < total strictly (float rounding aside), so the first cdf > u is an event of positive
    # probability inside the kept prefix
    u = torch.rand(total.shape, generator=generator) * (total * (1 - 1e-6))
    pos = torch.searchsorted(cdf, u, right=True).clamp_max(cdf.shape[-1] - 1)
    ids = pos if order is None else order.gather(-1, pos)
    return ids.squeeze(-1)


# ------------------------------------------------------------------------- embedding sampler


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
                     offset: np.ndarray | None = None,
                     bonus: torch.Tensor | None = None) -> torch.Tensor:
    """Ids ``[B]``: the tokens nearest to the perturbed predicted embeddings ``features [B, E]``.

    ``weight [V, E]`` and ``bias [V]`` are the output layer (``logits = features @ weight.T +
    bias``); see the module docstring for the exact definition. ``scale`` may also be one scale
    per token (``[V]``, e.g. per event type): tokens sharing a scale are scored from one
    perturbed point, each group from its own independent draw. ``offset [V]`` is added to the
    scores before the nearest token is taken (per-type offsets from calibration); ``bonus
    [B, V]`` too (a guide's or the memory's, per row).
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
    if bonus is not None:
        scores = scores + bonus.to(scores.dtype)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return scores.argmax(-1)


def type_values(by_type: dict[str, float], kinds: np.ndarray, default: float) -> np.ndarray:
    """One value per token: ``by_type`` of its event type (names as TYPE_CODES), else default."""
    out = np.full(len(kinds), float(default))
    for name, value in by_type.items():
        out[kinds == TYPE_CODES[name]] = float(value)
    return out


# --------------------------------------------------------------------------- one step


def effective_noise(sampler: SamplerConfig) -> float:
    return DEFAULT_NOISE if sampler.noise is None else float(sampler.noise)


def token_scales(sampler: SamplerConfig, kinds: np.ndarray) -> np.ndarray:
    """Embedding noise scale of every token: ``noise_by_type`` for its event type, else ``noise``."""
    return type_values(sampler.noise_by_type or {}, kinds, effective_noise(sampler))


def choose(logits: torch.Tensor, features: torch.Tensor, mask: np.ndarray, stepper: Output,
           sampler: SamplerConfig, generator: torch.Generator,
           kinds: np.ndarray | None = None, instrument: np.ndarray | None = None,
           bonus: torch.Tensor | None = None) -> torch.Tensor:
    """The next id of each row under ``sampler``, among the events ``mask`` allows (``kinds``:
    the event type of every id, for per-type embedding noise; ``instrument``: each row's current
    instrument, for per-instrument temperatures and noise). ``bonus`` (``[B, V]``): what a guide
    or the memory added to ``logits``, added to the embedding sampler's scores too (in logit
    units: exact for its default ``logit`` metric)."""
    allowed = torch.from_numpy(mask)
    if sampler.sampler == "embedding":
        scale, offset = effective_noise(sampler), None
        if sampler.noise_by_type and kinds is not None:
            scale = token_scales(sampler, kinds)
        if sampler.offset_by_type and kinds is not None:
            offset = type_values(sampler.offset_by_type, kinds, 0.0)
        factors = _per_row(sampler.noise_factor_by_instrument, instrument, 1.0)
        if factors is None:
            return sample_embedding(features, stepper.output_weight, stepper.output_bias,
                                    generator, scale=scale, kind=sampler.noise_kind,
                                    metric=sampler.metric, mask=allowed, offset=offset,
                                    bonus=bonus)
        out = torch.empty(len(factors), dtype=torch.long)
        for factor in np.unique(factors):  # rows sharing a factor are drawn together
            rows = torch.from_numpy(np.flatnonzero(factors == factor))
            out[rows] = sample_embedding(features[rows], stepper.output_weight,
                                         stepper.output_bias, generator,
                                         scale=np.asarray(scale) * factor,
                                         kind=sampler.noise_kind, metric=sampler.metric,
                                         mask=allowed[rows], offset=offset,
                                         bonus=None if bonus is None else bonus[rows])
        return out
    temperature = sampler.temperature
    per_row = _per_row(sampler.temperature_by_instrument, instrument, temperature)
    if per_row is not None and temperature > 0:  # scale each row's logits by its temperature
        logits = logits.float() / torch.from_numpy(per_row / temperature).float()[:, None]
    return sample_probability(logits, generator, temperature=temperature,
                              top_k=sampler.top_k, top_p=sampler.top_p, mask=allowed)


def _per_row(table: dict[int, float] | None, instrument: np.ndarray | None,
             default: float) -> np.ndarray | None:
    if not table or instrument is None:
        return None
    return np.array([table.get(int(i), default) for i in instrument], dtype=np.float64)


__all__ = ["DEFAULT_NOISE", "Output", "choose", "effective_noise", "filter_logits", "perturb_direction",
           "sample_embedding", "sample_probability", "sample_vmf", "token_scales", "type_values",
           "vmf_kappa"]
