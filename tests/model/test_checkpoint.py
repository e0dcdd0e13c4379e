"""Checkpoints: round trip, run directories, atomic writes, no unrestricted pickle, melodia.load."""

from __future__ import annotations

import json
import os
import re
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


# ------------------------------------------------------------ non-finite numbers in stored data

PRIOR = [[0.25] * 20, [0.5] * 20]  # a control prior, as training keeps one (rows of 20 controls)


def _poisoned(tmp_path: Path, case: str) -> Path:
    """A real checkpoint (save_checkpoint of a trained model) with one NaN or infinity in its
    stored data; ``case`` "clean": none."""
    model, opt = trained_pair()
    extra = {"control_prior": [row[:] for row in PRIOR], "best_nll": 2.5,
             "band": {"tempo": {"mean": 110.0, "range": [60.0, 180.0]}}}
    metrics, train_config = {"nll": 2.5, "bits": 3.6}, {"lr": 2e-3, "steps": 9}
    if case == "NaN in the metadata prior":
        extra["control_prior"][1][3] = float("nan")
    elif case == "inf in a nested float":
        extra["band"]["tempo"]["range"][1] = float("inf")
    elif case == "NaN metric":
        metrics["nll"] = float("nan")
    elif case == "-inf in the training config":
        train_config["lr"] = float("-inf")
    elif case == "NaN in the optimizer state":
        next(iter(opt.state.values()))["exp_avg"].view(-1)[0] = float("nan")
    return save_checkpoint(tmp_path / f"{case}.pt", model, ENC, step=3, optimizer=opt,
                           metrics=metrics, extra=extra, train_config=train_config)


NON_FINITE = {  # case -> the field the error names
    "NaN in the metadata prior": "extra.control_prior[1][3]",
    "inf in a nested float": "extra.band.tempo.range[1]",
    "NaN metric": "metrics.nll",
    "-inf in the training config": "train_config.lr",
    "NaN in the optimizer state": "optimizer.state[0].exp_avg",
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_a_nan_or_infinity_anywhere_in_a_checkpoint_is_refused_in_one_line(case, tmp_path):
    clean = load_checkpoint(_poisoned(tmp_path, "clean"))
    assert clean.extra["control_prior"] == PRIOR and clean.metrics["nll"] == 2.5
    path = _poisoned(tmp_path, case)
    expected = (f"{path}: its {NON_FINITE[case]} holds a NaN or infinite value: a diverged "
                f"training run or a damaged file? Refusing to load it")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == expected
    with pytest.raises(CheckpointError, match=re.escape(NON_FINITE[case])):
        melodia.load(path)  # the public API
    with pytest.raises(CheckpointError, match=re.escape(NON_FINITE[case])):
        melodia.generate(str(path), seconds=1.0, seed=1)


@pytest.mark.parametrize("case", ["NaN in the metadata prior", "inf in a nested float"])
def test_generate_refuses_a_checkpoint_with_a_non_finite_number_in_one_line(case, tmp_path):
    from melodia.cli import main

    good = tmp_path / "good.mid"  # the same model, all finite, generates
    assert main(["generate", "--model", str(_poisoned(tmp_path, "clean")), "--seconds", "1",
                 "-o", str(good), "--seed", "1"]) == 0 and good.stat().st_size > 0
    path, out = _poisoned(tmp_path, case), tmp_path / "out.mid"
    run = subprocess.run([sys.executable, "-m", "melodia", "generate", "--model", str(path),
                          "--seconds", "1", "-o", str(out), "--seed", "1"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2 and not out.exists()
    line = (f"melodia generate: error: {path}: its {NON_FINITE[case]} holds a NaN or infinite "
            f"value: a diverged training run or a damaged file? Refusing to load it")
    assert run.stderr.splitlines() == [line], run.stderr


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_finite_sees_every_nan_and_infinity_and_nothing_else(dtype):
    from melodia.model.families import finite

    big = torch.finfo(dtype).max
    assert finite(torch.full((1000, 100), big, dtype=dtype))  # finite, however large their sum
    assert finite(torch.full((7,), -big, dtype=dtype)) and finite(torch.zeros(0, dtype=dtype))
    for bad in (float("nan"), float("inf"), float("-inf")):
        tensor = torch.randn(64, 33).to(dtype)
        tensor[17, 5] = bad
        assert not finite(tensor)


def test_a_model_built_after_a_load_is_still_initialised_at_random(tmp_path):
    load_checkpoint(_poisoned(tmp_path, "clean"))  # builds its model without random draws
    config = ModelConfig(embed_dim=8, hidden_size=12, num_layers=2, control_dim=20)
    one, two = PerformanceRNN(config), PerformanceRNN(config)
    assert not torch.equal(one.lstm.weight_hh_l0, two.lstm.weight_hh_l0)
    assert one.lstm.weight_hh_l0.abs().max() > 0
