"""Export: safetensors + JSON + model card, loaded with no pickle; shipped models carry no paths."""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import melodia
from melodia import cli
from melodia.encoding import get_encoding
from melodia.features.controls import CONTROL_DIM
from melodia.generation.config import GenerateConfig
from melodia.generation.generator import generate_ids
from melodia.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.export import export_model
from melodia.model.lstm import PerformanceRNN
from melodia.model.registry import shipped_model_path
from melodia.util.portable import strip_paths

ENC = get_encoding("piano")
EXTRA = {"control_prior": [[0.5] * CONTROL_DIM], "embedding_noise": {"scale": {"NOTE_ON": 1.2}},
         "licences": {"tiny corpus": "CC0"}, "data": "abc123  a.mid\n", "held_out": "b.mid",
         "baselines": {"unigram": 5.1, "4-gram": 3.2}, "recipe": "data/recipes/tiny.sh",
         "listing": "/work/main/data/a.mid /tmp/x/b.mid"}


def tiny_run(tmp_path: Path) -> Path:
    """A tiny model trained a few steps, saved with metadata that names build-machine paths."""
    torch.manual_seed(0)
    model = PerformanceRNN(ModelConfig(embed_dim=16, hidden_size=24, num_layers=2,
                                       control_dim=CONTROL_DIM))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        ids = torch.randint(0, ENC.vocab_size, (2, 12))
        logits, _ = model(ids[:, :-1])
        torch.nn.functional.cross_entropy(logits.reshape(-1, ENC.vocab_size),
                                          ids[:, 1:].reshape(-1)).backward()
        opt.step()
        opt.zero_grad()
    return save_checkpoint(tmp_path / "run" / "best.pt", model, ENC, step=3, optimizer=opt,
                           metrics={"nll": 5.5}, extra=EXTRA,
                           train_config={"data": "/work/main/runs/x", "out": "/root/out/run"})


def no_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_export_files_and_round_trip(tmp_path: Path, monkeypatch):
    src = tiny_run(tmp_path)
    out = export_model(tmp_path / "run", tmp_path / "exp", dtype="float32")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json",
                                                     "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == 3 and config["metrics"] == {"nll": 5.5}
    assert config["extra"]["control_prior"] == EXTRA["control_prior"]
    assert config["extra"]["embedding_noise"] == EXTRA["embedding_noise"]
    text = (out / "config.json").read_text() + (out / "README.md").read_text()
    assert "/work/" not in text and "/root/" not in text and "/tmp/" not in text
    card = (out / "README.md").read_text()
    for needle in ("2 x 24 LSTM", "parameters", "abc123", "CC0", "unigram", "tiny.sh"):
        assert needle in card
    from safetensors.torch import load_file
    assert "optimizer" not in str(load_file(out / "model.safetensors").keys())

    original = load_checkpoint(src)
    no_pickle(monkeypatch)
    exported = melodia.load(out)
    assert exported.optimizer_state is None and exported.extra["licences"] == EXTRA["licences"]
    for (k, v), (k2, v2) in zip(original.model.state_dict().items(),
                                exported.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    config = GenerateConfig(events=40, seed=5)
    a, b = generate_ids(original, config).pieces[0], generate_ids(out, config).pieces[0]
    np.testing.assert_array_equal(a, b)


def _nan_prior(out: Path) -> str:
    config = json.loads((out / "config.json").read_text())
    config["extra"]["control_prior"][0][2] = float("nan")
    (out / "config.json").write_text(json.dumps(config))  # NaN, as json.dumps writes it
    return "extra.control_prior[0][2] holds a NaN or infinite value"


def _inf_metric(out: Path) -> str:
    config = json.loads((out / "config.json").read_text())
    config["metrics"] = {"by_type": {"NOTE_ON": {"nll": float("-inf")}}}
    (out / "config.json").write_text(json.dumps(config))
    return "metrics.by_type.NOTE_ON.nll holds a NaN or infinite value"


def _inf_weight(out: Path) -> str:
    from safetensors.torch import load_file, save_file

    weights = load_file(out / "model.safetensors")
    weights["bias"][7] = float("inf")
    save_file(weights, out / "model.safetensors")
    return "its weights hold NaN or infinite values (bias)"


@pytest.mark.parametrize("poison", [_nan_prior, _inf_metric, _inf_weight])
def test_an_export_with_a_non_finite_number_is_refused_in_one_line(poison, tmp_path, monkeypatch,
                                                                   capsys):
    out = export_model(tiny_run(tmp_path), tmp_path / "exp")
    assert melodia.load(out).extra["control_prior"] == EXTRA["control_prior"]  # fine as written
    message = poison(out)
    no_pickle(monkeypatch)
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        load_checkpoint(out)
    assert "\n" not in str(info.value)
    assert cli.main(["generate", "--model", str(out), "--seconds", "1", "-o",
                     str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "melodia generate: error:" in err
    assert not (tmp_path / "x.mid").exists()


def test_fp16_by_default_and_cli(tmp_path: Path, capsys):
    tiny_run(tmp_path)
    assert cli.main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "e16")]) == 0
    from safetensors.torch import load_file
    assert {v.dtype for v in load_file(tmp_path / "e16" / "model.safetensors").values()} == {
        torch.float16}
    assert cli.main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "e32"), "--fp32"]) == 0
    assert {v.dtype for v in load_file(tmp_path / "e32" / "model.safetensors").values()} == {
        torch.float32}
    assert cli.main(["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["piano", "band"])
def test_shipped_model_exports_exactly(name: str, tmp_path: Path, monkeypatch):
    original = melodia.model.registry.load_model(name)
    out = export_model(name, tmp_path / name)  # fp16, like the shipped weights
    raw = torch.load(shipped_model_path(name), weights_only=True)["model"]
    from safetensors.torch import load_file
    for k, v in load_file(out / "model.safetensors").items():
        assert v.dtype == torch.float16 and torch.equal(v, raw[k])
    no_pickle(monkeypatch)
    exported = load_checkpoint(out)
    assert exported.extra == original.extra
    if name == "piano":
        config = GenerateConfig(events=30, seed=2)
        np.testing.assert_array_equal(generate_ids(original, config).pieces[0],
                                      generate_ids(out, config).pieces[0])


def test_strip_paths():
    data = {"out": "/root/out/run", "data": ["runs/a:0.5", "/work/main/runs/b:0.5"],
            "note": "see /tmp/x/y.mid and data/midi/chorales", "n": 3, "/abs/key/k": None}
    stripped = strip_paths(data, root="/work/main")
    assert stripped == {"out": "run", "data": ["runs/a:0.5", "runs/b:0.5"],
                        "note": "see y.mid and data/midi/chorales", "n": 3, "k": None}


def test_portable_save(tmp_path: Path):
    model = PerformanceRNN(ModelConfig(embed_dim=8, hidden_size=8, num_layers=1))
    path = save_checkpoint(tmp_path / "p.pt", model, ENC, step=1, extra={"d": "/work/a/b.mid"},
                           train_config={"out": "/tmp/run/x"}, portable=True)
    ckpt = load_checkpoint(path)
    assert ckpt.extra == {"d": "b.mid"} and ckpt.train_config == {"out": "x"}


@pytest.mark.parametrize("name", ["piano", "band"])
def test_shipped_models_carry_no_machine_paths(name: str):
    path = shipped_model_path(name)
    payload = torch.load(path, weights_only=True)
    metadata = " ".join(str(payload[k]) for k in ("metrics", "train_config", "extra",
                                                  "model_config", "encoding"))
    with zipfile.ZipFile(path) as archive:
        metadata += " ".join(archive.namelist())
    for prefix in ("/work/", "/root/", "/tmp/", "/home/"):
        assert prefix not in metadata
        assert prefix.encode() not in path.read_bytes()
