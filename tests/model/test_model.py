"""PerformanceRNN: config round trip, the forward/features/logits contract, carried state, controls."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN, next_event_loss


def small(**kw) -> PerformanceRNN:
    torch.manual_seed(0)
    cfg = {"vocab_size": 388, "embed_dim": 16, "hidden_size": 24, "num_layers": 2, "dropout": 0.0}
    return PerformanceRNN(ModelConfig(**{**cfg, **kw})).eval()


def test_config_round_trip_and_defaults():
    c = ModelConfig()
    assert (c.num_layers, c.hidden_size, c.tie_embeddings, c.control_dim) == (3, 512, True, 0)
    c = ModelConfig(vocab_size=100, embed_dim=8, control_dim=20, tie_embeddings=False)
    assert ModelConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("bad", [{"vocab_size": 0}, {"num_layers": 0}, {"dropout": 1.0},
                                 {"control_dim": -1}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"hidden": 3})


def test_forward_shapes_and_state():
    model = small()
    ids = torch.randint(0, 388, (3, 7))
    logits, (h, c) = model(ids)
    assert logits.shape == (3, 7, 388)
    assert h.shape == c.shape == (2, 3, 24)
    feats, _ = model.features(ids)
    assert feats.shape == (3, 7, 16)  # projected to the embedding size (hidden != embed)


def test_tied_logits_are_features_times_embedding():
    model = small()
    ids = torch.randint(0, 388, (2, 5))
    feats, _ = model.features(ids)
    expected = feats @ model.embedding.weight.T + model.bias
    torch.testing.assert_close(model.logits(feats), expected)
    torch.testing.assert_close(model(ids)[0], expected)


def test_no_projection_when_hidden_equals_embed_and_untied_head():
    assert isinstance(small(embed_dim=24).proj, torch.nn.Identity)
    model = small(tie_embeddings=False)
    assert model.head is not None and model(torch.zeros(1, 2, dtype=torch.long))[0].shape == (1, 2, 388)


def test_step_by_step_with_carried_state_equals_whole_sequence():
    model = small()
    ids = torch.randint(0, 388, (2, 9))
    full, _ = model(ids)
    state, steps = None, []
    for t in range(ids.shape[1]):
        logits, state = model(ids[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    zero = model.initial_state(2)
    torch.testing.assert_close(model(ids, zero)[0], full)


def test_controls_absent_means_zeros_and_shapes_are_checked():
    model = small(control_dim=20)
    ids = torch.randint(0, 388, (2, 4))
    torch.testing.assert_close(model(ids)[0], model(ids, None, torch.zeros(2, 4, 20))[0])
    assert not torch.allclose(model(ids)[0], model(ids, None, torch.ones(2, 4, 20))[0])
    with pytest.raises(ValueError, match="shape"):
        model(ids, None, torch.zeros(2, 4, 19))
    with pytest.raises(ValueError, match="control_dim=0"):
        small()(ids, None, torch.zeros(2, 4, 20))


def test_next_event_loss_skips_padding():
    model = small()
    inputs = torch.randint(0, 388, (2, 6))
    targets = torch.randint(0, 388, (2, 6))
    targets[1, 3:] = -100
    loss, count = next_event_loss(model, inputs, targets)
    logits, _ = model(inputs)
    keep = targets != -100
    expected = F.cross_entropy(logits[keep], targets[keep], reduction="sum")
    assert int(count) == 9
    torch.testing.assert_close(loss, expected)
