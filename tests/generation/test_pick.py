"""The samplers of melodia.generation.pick: pure over logits, seeded; and their config."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from melodia.generation.config import SamplerConfig
from melodia.generation.pick import (filter_logits, perturb_direction, sample_embedding,
                                     sample_probability, sample_vmf, vmf_kappa)

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------ probability sampler


def test_filter_logits_temperature_top_k_top_p_and_mask():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    assert torch.allclose(filter_logits(logits, temperature=2.0), logits / 2)
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[True, True, False, False]]
    # top-p keeps the smallest set whose mass reaches p: {0.5} for p=0.5, {0.5, 0.25} for p=0.6
    kept = torch.isfinite(filter_logits(logits, top_p=0.5))
    assert kept.tolist() == [[True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.6)).tolist() == [[True, True, False, False]]
    mask = torch.tensor([[False, True, True, True]])
    assert torch.isfinite(filter_logits(logits, top_k=1, mask=mask)).tolist() == [
        [False, True, False, False]]


def test_probability_sampler_is_seeded_and_greedy_at_zero_temperature():
    logits = torch.randn(8, 50, generator=gen(1))
    a = sample_probability(logits, gen(7), temperature=1.3, top_k=20, top_p=0.9)
    b = sample_probability(logits, gen(7), temperature=1.3, top_k=20, top_p=0.9)
    assert torch.equal(a, b)
    assert torch.equal(sample_probability(logits, gen(0), temperature=0), logits.argmax(-1))
    assert torch.equal(sample_probability(logits, gen(0), top_k=1), logits.argmax(-1))


def test_probability_sampler_never_picks_masked_events():
    logits = torch.zeros(4, 30)
    mask = torch.zeros(4, 30, dtype=torch.bool)
    mask[:, 10:13] = True
    g = gen(3)
    for _ in range(50):
        ids = sample_probability(logits, g, temperature=5.0, mask=mask)
        assert ((ids >= 10) & (ids < 13)).all()


def test_probability_sampler_matches_softmax():
    logits = torch.tensor([[0.0, math.log(3.0)]]).expand(4000, 2)
    ids = sample_probability(logits, gen(0))
    assert abs(ids.float().mean().item() - 0.75) < 0.03


@pytest.mark.parametrize("top_k,top_p,temperature", [(0, 1.0, 1.0), (3, 1.0, 0.7),
                                                      (0, 0.8, 1.0), (4, 0.9, 1.5)])
def test_probability_sampler_draws_from_the_filtered_softmax(top_k, top_p, temperature):
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.7, 0.3, 0.0, -1.0, -2.0]])
    mask = torch.tensor([[True, True, False, True, True, True, True, True]])
    expected = torch.softmax(filter_logits(logits, temperature=temperature, top_k=top_k,
                                           top_p=top_p, mask=mask), -1)[0]
    ids = sample_probability(logits.expand(40000, -1), gen(2), temperature=temperature,
                             top_k=top_k, top_p=top_p, mask=mask.expand(40000, -1))
    freq = torch.bincount(ids, minlength=8).double() / len(ids)
    assert torch.allclose(freq, expected.double(), atol=0.01), (freq, expected)
    assert freq[expected == 0].sum() == 0


# -------------------------------------------------------------------------- embedding sampler


@pytest.fixture
def space():
    g = gen(5)
    weight = torch.randn(40, 16, generator=g) * torch.rand(40, 1, generator=g)
    bias = torch.randn(40, generator=g) * 0.1
    features = torch.randn(64, 16, generator=g) * 3
    return features, weight, bias


@pytest.mark.parametrize("kind", ["gaussian", "vmf"])
def test_embedding_sampler_at_scale_zero_is_greedy(space, kind):
    features, weight, bias = space
    greedy = F.linear(features, weight, bias).argmax(-1)
    ids = sample_embedding(features, weight, bias, gen(0), scale=0.0, kind=kind)
    assert torch.equal(ids, greedy)
    cosine = (F.normalize(features, dim=-1) @ F.normalize(weight, dim=-1).T).argmax(-1)
    assert torch.equal(sample_embedding(features, weight, bias, gen(0), scale=0.0, kind=kind,
                                        metric="cosine"), cosine)


@pytest.mark.parametrize("kind", ["gaussian", "vmf"])
@pytest.mark.parametrize("metric", ["logit", "cosine"])
def test_embedding_sampler_widens_with_scale(space, kind, metric):
    features, weight, bias = space
    one = features[:1].expand(2000, -1)

    def entropy(scale: float) -> float:
        ids = sample_embedding(one, weight, bias, gen(1), scale=scale, kind=kind, metric=metric)
        p = torch.bincount(ids, minlength=40).double() / len(ids)
        return float(-(p[p > 0] * p[p > 0].log()).sum())

    h = [entropy(s) for s in (0.0, 0.3, 1.0, 3.0)]
    assert h[0] == 0.0
    assert h[0] < h[1] < h[2] < h[3], h


def test_embedding_sampler_is_seeded_and_respects_mask(space):
    features, weight, bias = space
    mask = torch.zeros(64, 40, dtype=torch.bool)
    mask[:, ::3] = True
    a = sample_embedding(features, weight, bias, gen(9), scale=2.0, kind="vmf", mask=mask)
    b = sample_embedding(features, weight, bias, gen(9), scale=2.0, kind="vmf", mask=mask)
    assert torch.equal(a, b)
    assert (a % 3 == 0).all()


@pytest.mark.parametrize("scale", [0.2, 1.0, 3.0])
def test_noises_of_one_scale_move_about_as_far(scale):
    dim = 64
    mu = F.normalize(torch.randn(1, dim, generator=gen(2)), dim=-1).expand(3000, -1).contiguous()
    expected = 1 / math.sqrt(1 + scale * scale)
    for kind in ("gaussian", "vmf"):
        moved = perturb_direction(mu, scale, gen(4), kind)
        assert torch.allclose(moved.norm(dim=-1), torch.ones(3000), atol=1e-5)
        cos = (moved * mu).sum(-1).mean().item()
        assert abs(cos - expected) < 0.05, (kind, cos, expected)


def test_vmf_is_concentrated_for_large_kappa():
    mu = F.normalize(torch.randn(100, 32, generator=gen(0)), dim=-1)
    draws = sample_vmf(mu, vmf_kappa(0.01, 32), gen(1))
    assert ((draws * mu).sum(-1) > 0.999).all()


def test_sampler_config_validates():
    with pytest.raises(ValueError):
        SamplerConfig(sampler="nope")
    with pytest.raises(ValueError):
        SamplerConfig(top_p=0)
    assert SamplerConfig.from_dict(SamplerConfig(top_k=5).to_dict()) == SamplerConfig(top_k=5)
