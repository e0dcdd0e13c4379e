"""The attention family: causal, cached, counted before it is built, and a drop-in for the LSTM
through checkpoints, export, training with exact resume, every sampler, and a live stream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from melodia import cli
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import generate_ids
from melodia.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.families import build_model, estimate_parameters, make_model, make_stepper
from melodia.model.registry import load_stepper
from melodia.model.transformer import MusicTransformer, TransformerStepper
from melodia.training.trainer import train
from tests.training.test_train import dataset, killed_and_resumed, tiny  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def small(**kw) -> ModelConfig:
    settings = dict(kind="transformer", embed_dim=24, hidden_size=32, num_layers=2, num_heads=4,
                    context=64, dropout=0.0, control_dim=5)
    return ModelConfig(**{**settings, **kw})


def test_attention_is_causal():
    torch.manual_seed(0)
    model = MusicTransformer(small()).eval()
    ids = torch.randint(0, 388, (2, 20))
    controls = torch.randn(2, 20, 5)
    before, _ = model(ids, None, controls)
    changed = ids.clone()
    changed[:, 12:] = (changed[:, 12:] + 7) % 388
    after, _ = model(changed, None, controls)
    assert torch.equal(before[:, :12], after[:, :12])  # the past cannot see the future
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_the_cache_gives_the_logits_of_a_whole_pass():
    torch.manual_seed(1)
    model = MusicTransformer(small()).eval()
    ids, controls = torch.randint(0, 388, (3, 30)), torch.randn(3, 30, 5)
    whole, _ = model(ids, None, controls)
    stepper = TransformerStepper(model)
    logits, features, state = stepper.prime(ids[:, :10], controls[:, :10])
    assert torch.allclose(logits, whole[:, 9], atol=1e-5)
    for t in range(10, 30):
        logits, features, state = stepper.step(ids[:, t], state, controls[:, t])
        assert torch.allclose(logits, whole[:, t], atol=1e-4)
    assert state.length == 30 and state.keys[0].shape == (3, 4, 64, 8)  # a ring of context slots
    rows = torch.tensor([2, 2, 0])
    picked = stepper.select(state, rows)  # beam search copies rows
    assert torch.equal(picked.keys[1][0], state.keys[1][2]) and picked.length == 30


def test_the_window_keeps_the_last_context_events():
    """Past the window, a step sees exactly the last ``context`` events: with one layer (whose
    keys depend on their own event only) that is a fresh pass over those events, wherever they
    lie, since rotary attention depends only on distances."""
    torch.manual_seed(2)
    model = MusicTransformer(small(context=16, control_dim=0, num_layers=1)).eval()
    stepper = TransformerStepper(model)
    ids = torch.randint(0, 388, (1, 80))
    _, _, state = stepper.prime(ids[:, :40])  # a primer longer than the window: its last 16
    assert state.keys[0].shape[2] == 16 and state.length == 16
    for t in range(40, 80):
        logits, _, state = stepper.step(ids[:, t], state)
        fresh, _ = model(ids[:, t - 15:t + 1])
        assert torch.allclose(logits, fresh[:, -1], atol=1e-4)
    assert state.keys[0].shape[2] == 16 and state.length == 56


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False}, {"embed_dim": 32},
                                {"num_layers": 3, "ff_mult": 2, "control_dim": 0,
                                 "state_dim": 7, "band_dim": 3}])
def test_parameters_are_counted_before_building(kw):
    config = small(**kw)
    assert estimate_parameters(config) == make_model(config).num_parameters()


def test_bad_shapes_and_crafted_sizes_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        small(hidden_size=30)
    with pytest.raises(ValueError, match="kind"):
        ModelConfig(kind="gru")
    huge = small(hidden_size=16384, num_layers=64, num_heads=4)  # each in range
    called = []
    with pytest.raises(ValueError, match="parameters"):
        build_model(huge, lambda: called.append(1), max_parameters=2_000_000_000)
    assert not called  # refused before any weight was read
    with pytest.raises(ValueError, match="fp32"):
        make_stepper(make_model(small()), "int8")


def test_checkpoint_and_export_round_trip(tmp_path: Path):
    from melodia.encoding import get_encoding
    from melodia.model.export import export_model

    torch.manual_seed(3)
    model = make_model(small(control_dim=0))
    path = save_checkpoint(tmp_path / "t.pt", model, get_encoding("piano"), step=4)
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, MusicTransformer) and loaded.model_config.kind == "transformer"
    ids = torch.randint(0, 388, (1, 12))
    assert torch.equal(model.eval()(ids)[0], loaded.model(ids)[0])
    out = export_model(path, tmp_path / "export", dtype="float32")
    exported = load_checkpoint(out)
    assert torch.equal(exported.model(ids)[0], loaded.model(ids)[0])
    assert "transformer" in (out / "README.md").read_text()
    assert json.loads((out / "config.json").read_text())["model_config"]["kind"] == "transformer"
    # a crafted export: weights of the wrong shape for its transformer config
    config = json.loads((out / "config.json").read_text())
    config["model_config"]["ff_mult"] = 2
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="its model_config implies"):
        load_checkpoint(out)


def transformer_tiny(dataset: Path, out: Path, **kw):  # noqa: F811
    return tiny(dataset, out, model=ModelConfig(kind="transformer", embed_dim=16, hidden_size=32,
                                                num_layers=2, num_heads=4, context=32,
                                                dropout=0.1), **kw)


@pytest.fixture(scope="module")
def run(dataset: Path, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("transformer") / "run"
    train(transformer_tiny(dataset, out, steps=30, eval_every=30), progress=False)
    return out


def test_a_transformer_trains_and_resumes_exactly(dataset: Path, tmp_path: Path):  # noqa: F811
    full, resumed = killed_and_resumed(lambda out: transformer_tiny(dataset, out), tmp_path)
    assert resumed == full[3:] and full[-1] < full[0]
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                  b.model.state_dict().values()))


@pytest.mark.parametrize("options", [
    {}, {"key": "D minor", "density": 6.0},
    {"sampler": SamplerConfig(sampler="embedding")},
    {"sampler": SamplerConfig(temperature=0.9, top_p=0.9, beam_size=2, branch_factor=2)},
    {"num": 3},
])
def test_every_sampler_and_control_works_with_a_transformer(run: Path, options):
    result = generate_ids(run, GenerateConfig(events=120, seed=2, **options), primer=[60, 64, 67])
    assert len(result.pieces) == options.get("num", 1)
    assert all(len(p) == 120 + result.primer_events for p in result.pieces)
    again = generate_ids(run, GenerateConfig(events=120, seed=2, **options), primer=[60, 64, 67])
    assert all(np.array_equal(a, b) for a, b in zip(result.pieces, again.pieces))
    checkpoint, stepper = load_stepper(run)
    assert isinstance(stepper, TransformerStepper) and checkpoint.model_config.kind == "transformer"


def test_the_cli_trains_and_generates_a_transformer(dataset: Path, tmp_path: Path, capsys):  # noqa: F811
    assert cli.main(["train", str(dataset), "-o", str(tmp_path / "run"), "--kind", "transformer",
                     "--layers", "1", "--hidden-size", "32", "--embed-dim", "16", "--heads", "2",
                     "--context", "32", "--steps", "4", "--batch-size", "2", "--seq-len", "32",
                     "--device", "cpu", "--quiet"]) == 0
    assert "1 x 32 transformer (2 heads, context 32)" in repr(load_checkpoint(tmp_path / "run"))
    out = tmp_path / "t.mid"
    assert cli.main(["generate", "--model", str(tmp_path / "run"), "--seconds", "2", "--seed",
                     "1", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    assert cli.main(["generate", "--model", str(tmp_path / "run"), "--seconds", "1",
                     "--precision", "int8", "-o", str(tmp_path / "x.mid")]) == 2
    assert "int8 is for LSTM models" in capsys.readouterr().err


def test_the_embedding_sampler_calibrates_on_a_transformer(run: Path):
    from melodia.corpus.shards import TokenDataset
    from melodia.generation.calibrate import calibrate_embedding_noise

    checkpoint = load_checkpoint(run)
    sequences = TokenDataset(checkpoint.train_config["data"]).sequences("train")
    calibrated = calibrate_embedding_noise(checkpoint.model, sequences, checkpoint.encoding,
                                           max_events=400, segment=128)
    assert {"NOTE_ON", "TIME_SHIFT"} <= set(calibrated["scale"])
    assert all(s > 0 for s in calibrated["scale"].values())


def test_a_transformer_never_looks_further_back_than_it_trained(dataset: Path, tmp_path: Path):  # noqa: F811
    from melodia.evaluate.nll import scoring_segment

    with pytest.raises(ValueError, match="must not exceed seq_len"):
        transformer_tiny(dataset, tmp_path / "x", seq_len=16)  # context 32 > 16
    config = small(context=48)
    assert scoring_segment(config, 2048) == 48 and scoring_segment(config, 20) == 20
    assert scoring_segment(config, None) == 48
    assert scoring_segment(ModelConfig(), 2048) == 2048  # an LSTM's state has no window
