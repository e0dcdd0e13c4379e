"""Checkpoints: round trip, run directories, atomic writes, no unrestricted pickle, melodia.load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import melodia
from melodia.encoding import get_encoding
from melodia.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN

ENC = get_encoding("piano", max_note_s=5.0)


def trained_pair() -> tuple[PerformanceRNN, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = PerformanceRNN(ModelConfig(embed_dim=8, hidden_size=12, num_layers=2, control_dim=20))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    logits, _ = model(torch.randint(0, 388, (2, 5)))
    logits.sum().backward()
    opt.step()
    return model, opt


def test_round_trip(tmp_path: Path):
    model, opt = trained_pair()
    path = save_checkpoint(tmp_path / "a.pt", model, ENC, step=7, optimizer=opt,
                           metrics={"nll": 2.5}, extra={"note": "x"}, train_config={"steps": 9})
    ckpt = load_checkpoint(path)
    assert ckpt.step == 7 and ckpt.metrics == {"nll": 2.5} and ckpt.extra == {"note": "x"}
    assert ckpt.train_config == {"steps": 9}
    assert ckpt.model_config == model.config and ckpt.model.config == model.config
    assert ckpt.encoding.to_dict() == ENC.to_dict()  # the non-default encoding survives
    for (k, v), (k2, v2) in zip(model.state_dict().items(), ckpt.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert not ckpt.model.training
    ids = torch.randint(0, 388, (1, 6))
    model.eval()
    torch.testing.assert_close(ckpt.model(ids)[0], model(ids)[0])
    opt2 = torch.optim.AdamW(ckpt.model.parameters(), lr=1e-2)
    opt2.load_state_dict(ckpt.optimizer_state)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert isinstance(ckpt.rng_state["torch"], torch.Tensor)


def test_run_directory_prefers_best(tmp_path: Path):
    model, _ = trained_pair()
    save_checkpoint(tmp_path / "last.pt", model, ENC, step=10)
    assert load_checkpoint(tmp_path).step == 10
    save_checkpoint(tmp_path / "best.pt", model, ENC, step=4)
    assert melodia.load(tmp_path).step == 4


def test_failed_write_leaves_the_old_checkpoint(tmp_path: Path, monkeypatch):
    model, opt = trained_pair()
    path = save_checkpoint(tmp_path / "last.pt", model, ENC, step=1, optimizer=opt)
    before = path.read_bytes()

    def torn_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, ENC, step=2, optimizer=opt)
    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_not_a_checkpoint(tmp_path: Path):
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a melodia checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_arbitrary_pickles_are_refused(tmp_path: Path):
    marker = tmp_path / "pwned"
    torch.save({"format": "melodia-checkpoint", "payload": Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot read") as info:
        load_checkpoint(tmp_path / "evil.pt")
    message = str(info.value)
    assert "may be malicious" in message and "not a melodia checkpoint" in message
    assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()  # the payload never ran


def good_payload() -> dict:
    """What save_checkpoint writes, as a dict to tamper with."""
    model, _ = trained_pair()
    return {"format": "melodia-checkpoint", "version": 1, "step": 3,
            "model_config": json.dumps(model.config.to_dict()),
            "encoding": json.dumps(ENC.to_dict()), "metrics": "{}", "train_config": "null",
            "extra": "{}", "model": model.state_dict(), "optimizer": None, "rng": {}}


def _huge(payload: dict, **sizes) -> None:
    config = json.loads(payload["model_config"])
    config.update(sizes or {"hidden_size": 16384, "num_layers": 128})  # each in range, too many
    payload["model_config"] = json.dumps(config)


def _diverged(payload: dict, value: float) -> dict:
    payload["model"]["bias"] = payload["model"]["bias"].clone().fill_(value)
    return payload


def _reshaped(payload: dict) -> None:
    payload["model"]["proj.weight"] = torch.zeros(3, 3)


CRAFTED = {
    "text renamed .pt": (None, "not a torch file"),
    "plain state_dict": (lambda p: p["model"], "not a melodia checkpoint"),
    "string step": (lambda p: {**p, "step": "7"}, "step must be an integer"),
    "no weights": (lambda p: {k: v for k, v in p.items() if k != "model"}, "no model weights"),
    "empty weights": (lambda p: {**p, "model": {}}, "no model weights"),
    "wrong shapes": (lambda p: (_reshaped(p), p)[1], "has shape"),
    "missing weight": (lambda p: (p["model"].pop("bias"), p)[1], "do not match"),
    "absurd size": (lambda p: (_huge(p), p)[1], "refusing to build"),
    "absurd width": (lambda p: (_huge(p, hidden_size=10 ** 6), p)[1],
                     "hidden_size must be a whole"),
    "bad config": (lambda p: {**p, "model_config": '{"layers": 3}'}, "invalid model_config"),
    "config not json": (lambda p: {**p, "model_config": "{"}, "not valid JSON"),
    "bad encoding": (lambda p: {**p, "encoding": '{"name": "kazoo"}'}, "invalid encoding"),
    "nameless encoding": (lambda p: {**p, "encoding": '{"nam": "piano"}'},
                          "an encoding record needs a name .piano or band."),
    "diverged (nan)": (lambda p: _diverged(p, float("nan")), "NaN or infinite values .bias."),
    "diverged (inf)": (lambda p: _diverged(p, float("inf")), "a diverged training run"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_checkpoints_give_one_clear_line(case: str, tmp_path: Path, monkeypatch):
    craft, message = CRAFTED[case]
    path = tmp_path / "crafted.pt"
    if craft is None:
        path.write_text("this is a text file, not a checkpoint\n")
    else:
        torch.save(craft(good_payload()), path)
    if case in ("absurd size", "absurd width"):  # refused from the config: no model is built
        monkeypatch.setattr(PerformanceRNN, "__init__", lambda *a: pytest.fail("built"))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_estimate_parameters_is_exact():
    from melodia.model.families import estimate_parameters

    for config in (ModelConfig(embed_dim=8, hidden_size=12, num_layers=2, control_dim=20),
                   ModelConfig(embed_dim=16, hidden_size=16, num_layers=1, tie_embeddings=False),
                   ModelConfig(embed_dim=8, hidden_size=8, num_layers=3, state_dim=5, band_dim=2)):
        assert estimate_parameters(config) == PerformanceRNN(config).num_parameters()


def test_import_melodia_is_lazy():
    code = ("import sys, melodia; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert callable(melodia.load); assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


OLD_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "checkpoint-v1-before-layout.pt"
# what melodia before the stage layout (c64895b) generated from that file: 64 events, seed 3
OLD_IDS = [
    256, 21, 44, 84, 26, 269, 34, 337, 330, 296, 362, 60, 343, 54, 172, 33, 266, 61, 376, 95,
    359, 78, 70, 376, 22, 63, 65, 88, 295, 49, 161, 82, 356, 26, 63, 78, 266, 285, 21, 268,
    305, 287, 257, 257, 82, 370, 60, 78, 210, 82, 385, 82, 188, 82, 379, 93, 361, 54, 382, 82,
    177, 367, 68, 70, 182]


def test_a_checkpoint_written_before_the_layout_loads_and_plays_the_same():
    from melodia.generation import GenerateConfig, generate_ids

    ckpt = load_checkpoint(OLD_CHECKPOINT)
    assert ckpt.step == 7 and ckpt.model_config.hidden_size == 16
    assert ckpt.encoding.name == "piano"
    result = generate_ids(ckpt, GenerateConfig(events=64, seed=3))
    assert result.pieces[0].tolist() == OLD_IDS
