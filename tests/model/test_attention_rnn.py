"""Magenta's attention RNN: causal, its ring of remembered outputs gives the logits of a whole pass
(past its window too), counted before it is built, and a drop-in for the LSTM through
checkpoints, export, training with exact resume, every sampler and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from melodia import cli
from melodia.cli.common import MODEL_KINDS
from melodia.encoding import get_encoding
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import generate_ids
from melodia.model.attention_rnn import AttentionRNN, AttentionStepper
from melodia.model.checkpoint import load_checkpoint, save_checkpoint
from melodia.model.config import KINDS, ModelConfig
from melodia.model.export import export_model
from melodia.model.families import estimate_parameters, make_model
from melodia.model.registry import load_stepper
from melodia.model.stepper import int8_available
from melodia.training.config import TrainConfig
from melodia.training.trainer import train
from tests.training.test_train import dataset, killed_and_resumed, tiny  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def small(**kw) -> ModelConfig:
    settings = dict(kind="attention-rnn", embed_dim=24, hidden_size=32, num_layers=2,
                    context=16, dropout=0.0, control_dim=5)
    return ModelConfig(**{**settings, **kw})


def test_attention_is_causal():
    torch.manual_seed(0)
    model = AttentionRNN(small()).eval()
    ids, controls = torch.randint(0, 388, (2, 20)), torch.randn(2, 20, 5)
    before, _ = model(ids, None, controls)
    changed = ids.clone()
    changed[:, 12:] = (changed[:, 12:] + 7) % 388
    after, _ = model(changed, None, controls)
    assert torch.equal(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_the_ring_gives_the_logits_of_a_whole_pass_past_the_window():
    torch.manual_seed(1)
    model = AttentionRNN(small()).eval()
    ids, controls = torch.randint(0, 388, (3, 60)), torch.randn(3, 60, 5)
    whole, _ = model(ids, None, controls)
    stepper = AttentionStepper(model)
    logits, _, state = stepper.prime(ids[:, :10], controls[:, :10])
    assert torch.allclose(logits, whole[:, 9], atol=1e-5)
    for t in range(10, 60):  # 60 events through a window of 16
        logits, _, state = stepper.step(ids[:, t], state, controls[:, t])
        assert torch.allclose(logits, whole[:, t], atol=1e-4)
    assert state.length == 60 and state.outputs.shape == (3, 16, 32)
    picked = stepper.select(state, torch.tensor([2, 2, 0]))
    assert torch.equal(picked.outputs[0], state.outputs[2]) and picked.length == 60
    assert torch.equal(picked.lstm[1][0][1], state.lstm[1][0][2])  # layer 0's c, row 2


def test_int8_steps_the_lstm_close_to_fp32():
    torch.manual_seed(4)
    model = AttentionRNN(small(hidden_size=64)).eval()
    ids, controls = torch.randint(0, 388, (2, 40)), torch.randn(2, 40, 5)
    exact, fast = AttentionStepper(model), AttentionStepper(model, "int8")
    assert fast.precision == ("int8" if int8_available() else "fp32")  # else it falls back
    _, _, a = exact.prime(ids[:, :8], controls[:, :8])
    _, _, b = fast.prime(ids[:, :8], controls[:, :8])
    for t in range(8, 40):
        la, _, a = exact.step(ids[:, t], a, controls[:, t])
        lb, _, b = fast.step(ids[:, t], b, controls[:, t])
        assert (la.softmax(-1) - lb.softmax(-1)).abs().sum(-1).max() < 0.1


def test_the_window_limits_what_attention_reads():
    """A step reads the outputs of its last ``context`` events only: an event further back
    reaches it through the LSTM state alone, so with the state cut (a fresh LSTM pass over the
    window) the read is the same."""
    torch.manual_seed(2)
    model = AttentionRNN(small(context=4, control_dim=0)).eval()
    ids = torch.randint(0, 388, (1, 12))
    out, _ = model.lstm(model.embedding(ids))
    _, state = model(ids)
    assert torch.equal(state.outputs, out[:, -4:]) and state.keys.shape == (1, 4, 32)


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False}, {"embed_dim": 32},
                                {"num_layers": 1}, {"state_dim": 7, "band_dim": 3}])
def test_parameters_are_counted_before_building(kw):
    config = small(**kw)
    assert estimate_parameters(config) == make_model(config).num_parameters()


def test_its_context_must_fit_the_training_crops_and_the_cli_knows_it():
    with pytest.raises(ValueError, match="attention-rnn's context"):
        TrainConfig(data="x", seq_len=64, model=small(context=128))
    with pytest.raises(ValueError, match="context >= 2"):
        small(context=1)
    assert MODEL_KINDS == KINDS


def test_checkpoint_and_export_round_trip(tmp_path: Path):
    torch.manual_seed(3)
    model = make_model(small(control_dim=0))
    path = save_checkpoint(tmp_path / "a.pt", model, get_encoding("piano"), step=4)
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, AttentionRNN) and "attending over 16" in repr(loaded)
    ids = torch.randint(0, 388, (1, 12))
    assert torch.equal(model.eval()(ids)[0], loaded.model(ids)[0])
    out = export_model(path, tmp_path / "export", dtype="float32")
    assert torch.equal(load_checkpoint(out).model(ids)[0], loaded.model(ids)[0])
    assert json.loads((out / "config.json").read_text())["model_config"]["kind"] == "attention-rnn"


def attention_tiny(dataset: Path, out: Path, **kw):  # noqa: F811
    return tiny(dataset, out, model=ModelConfig(kind="attention-rnn", embed_dim=16,
                                                hidden_size=32, num_layers=1, context=32,
                                                dropout=0.1), **kw)


def test_it_trains_resumes_exactly_and_plays_every_sampler(dataset: Path, tmp_path: Path):  # noqa: F811
    full, resumed = killed_and_resumed(lambda out: attention_tiny(dataset, out), tmp_path)
    assert resumed == full[3:] and full[-1] < full[0]
    run = tmp_path / "a"
    for options in ({}, {"key": "D minor", "density": 6.0},
                    {"sampler": SamplerConfig(sampler="embedding")},
                    {"sampler": SamplerConfig(beam_size=2, branch_factor=2)}, {"num": 2}):
        result = generate_ids(run, GenerateConfig(events=80, seed=2, **options), primer=[60, 64])
        again = generate_ids(run, GenerateConfig(events=80, seed=2, **options), primer=[60, 64])
        assert all(len(p) == 80 + result.primer_events for p in result.pieces)
        assert all(np.array_equal(a, b) for a, b in zip(result.pieces, again.pieces))
    assert isinstance(load_stepper(run)[1], AttentionStepper)


def test_the_cli_trains_and_generates_one(dataset: Path, tmp_path: Path, capsys):  # noqa: F811
    assert cli.main(["train", str(dataset), "-o", str(tmp_path / "run"), "--kind",
                     "attention-rnn", "--layers", "1", "--hidden-size", "32", "--embed-dim", "16",
                     "--context", "32", "--steps", "4", "--batch-size", "2", "--seq-len", "32",
                     "--device", "cpu", "--quiet"]) == 0
    assert "1 x 32 LSTM attending over 32 events" in repr(load_checkpoint(tmp_path / "run"))
    out = tmp_path / "a.mid"
    assert cli.main(["generate", "--model", str(tmp_path / "run"), "--seconds", "2", "--seed",
                     "1", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
