"""The trainer: config files, LR schedule, a tiny run that learns, exact resume, DDP, the CLI."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from melodia.cli import main
from melodia.corpus.preparation import PrepareConfig, prepare
from melodia.errors import MelodiaError
from melodia.midi import Score, Track, make_notes, write_midi
from melodia.model.checkpoint import load_checkpoint
from melodia.model.config import ModelConfig
from melodia.training.config import TrainConfig, read_toml, run_config
from melodia.training.trainer import lr_at, train

# Tiny models gain nothing from threads; on a busy machine spinning OpenMP threads slow them.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Three performance-like files written as MIDI and prepared: 2 train, 1 validation."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for i in range(3):
        n = 250
        starts = np.cumsum(rng.choice([0.0, 0.125, 0.25], n, p=[0.3, 0.5, 0.2]))
        scale = np.array([0, 2, 4, 5, 7, 9, 11])
        pitch = 60 + scale[rng.integers(0, 7, n)] + 12 * rng.integers(-1, 1, n)
        notes = make_notes(starts, starts + 0.2, pitch, rng.integers(60, 80, n))
        write_midi(Score(tracks=[Track(notes=notes)]), root / "midi" / f"{i}.mid")
    prepare([root / "midi"], root / "data", config=PrepareConfig(workers=1), progress=False)
    manifest = json.loads((root / "data" / "manifest.json").read_text())
    for i, record in enumerate(manifest["files"]):
        record["split"] = "validation" if i == 2 else "train"
    (root / "data" / "manifest.json").write_text(json.dumps(manifest))
    return root / "data"


def tiny(dataset: Path, out: Path, **kw) -> TrainConfig:
    settings = dict(data=str(dataset), out=str(out), steps=6, batch_size=4, seq_len=32, lr=1e-2,
                    min_lr=1e-3, warmup_steps=2, eval_every=3, log_every=1, eval_events=500,
                    eval_segment=128, device="cpu",
                    model=ModelConfig(embed_dim=16, hidden_size=24, num_layers=2, dropout=0.1))
    return TrainConfig(**{**settings, **kw})


def test_config_survives_toml(tmp_path: Path):
    config = TrainConfig(data="d", out="o", steps=5, eval_events=None, controls=False,
                         model=ModelConfig(hidden_size=64, dropout=0.0))
    (tmp_path / "run.toml").write_text(config.to_toml())
    assert TrainConfig.from_dict(read_toml(tmp_path / "run.toml")) == config


@pytest.mark.parametrize("bad", [{"steps": 0}, {"lr": 0.0}, {"min_lr": 1.0}, {"stretch": 0.5},
                                 {"device": "tpu"}, {"eval_events": 0}, {"transpose": 13}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"stepz": 3})


def test_lr_schedule_warms_up_then_decays_to_min():
    c = TrainConfig(steps=110, lr=1e-3, min_lr=1e-4, warmup_steps=10)
    assert lr_at(0, c) == pytest.approx(1e-4) and lr_at(9, c) == pytest.approx(1e-3)
    assert lr_at(60, c) == pytest.approx(5.5e-4)
    assert lr_at(110, c) == pytest.approx(1e-4)
    lrs = [lr_at(s, c) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_run_config_layers_defaults_file_and_flags(tmp_path: Path):
    (tmp_path / "a.toml").write_text('steps = 7\nlr = 0.5\n[model]\nhidden_size = 32\n')
    c = run_config("d", tmp_path / "run", tmp_path / "a.toml", {"lr": 0.1, "model": {"num_layers": 1}})
    assert (c.steps, c.lr, c.model.hidden_size, c.model.num_layers, c.batch_size) == (7, 0.1, 32, 1, 64)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text(c.to_toml())
    resumed = run_config(None, tmp_path / "run", None, {"steps": 9}, resume=True)
    assert resumed.steps == 9 and resumed.model.hidden_size == 32 and resumed.data == "d"
    with pytest.raises(MelodiaError, match="no dataset"):
        run_config(None, tmp_path / "elsewhere")


def test_tiny_run_lowers_the_loss(dataset: Path, tmp_path: Path):
    losses = []
    result = train(tiny(dataset, tmp_path / "run", steps=40, eval_every=40), progress=False,
                   callbacks=[lambda info: losses.append(info.loss)])
    assert losses[0] == pytest.approx(math.log(388), abs=0.3)
    assert np.mean(losses[-5:]) < losses[0] - 1.0
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert len(evals) == 1 and evals[0]["nll"] < math.log(388) - 1.0
    assert result.best_nll == evals[0]["nll"]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best.step == 40 and best.train_config["steps"] == 40 and best.model.config.control_dim == 20
    assert (tmp_path / "run" / "config.toml").is_file()


def killed_and_resumed(config: Callable[[Path], TrainConfig], tmp_path: Path
                       ) -> tuple[list[float], list[float]]:
    """Train ``config(tmp_path / "a")`` whole, and ``config(tmp_path / "b")`` killed after step 5
    (its last checkpoint is from step 3), refused a second fresh start, then resumed: the losses
    of every step of a, and of the steps b ran after resuming."""
    full: list[float] = []
    train(config(tmp_path / "a"), progress=False, callbacks=[lambda i: full.append(i.loss)])

    class Killed(Exception):
        pass

    def kill_at_5(info):
        if info.step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(config(tmp_path / "b"), progress=False, callbacks=[kill_at_5])
    with pytest.raises(MelodiaError, match="already holds a run"):
        train(config(tmp_path / "b"), progress=False)
    resumed: list[float] = []
    train(config(tmp_path / "b"), resume=True, progress=False,
          callbacks=[lambda i: resumed.append(i.loss)])
    return full, resumed


def test_resume_is_exact(dataset: Path, tmp_path: Path):
    full, resumed = killed_and_resumed(lambda out: tiny(dataset, out), tmp_path)
    assert resumed == full[3:]  # bit for bit: same crops, dropout masks and optimizer state
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(x, y)

    def losses(run: str) -> list:
        rows = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["kind"], r.get("loss"), r.get("nll")) for r in map(json.loads, rows)]

    assert losses("a") == losses("b")


def test_logged_windows_are_the_steps_they_cover(dataset: Path, tmp_path: Path):
    """Losses stay on the device between log rows; a row still averages its steps exactly."""
    seen: list[tuple[int, float, float]] = []
    train(tiny(dataset, tmp_path / "run", log_every=3), progress=False,
          callbacks=[lambda i: seen.append((i.step, i.loss, i.grad_norm))])
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in logged] == [3, 6]
    for row, steps in zip(logged, (seen[:3], seen[3:])):
        assert row["loss"] == sum(loss for _, loss, _ in steps) / 3
        assert row["grad_norm"] == steps[-1][2] > 0
        assert row["events_per_s"] > 0


def test_loader_workers_change_nothing(dataset: Path, tmp_path: Path):
    here: list[float] = []
    train(tiny(dataset, tmp_path / "a", loader_workers=0), progress=False,
          callbacks=[lambda i: here.append(i.loss)])
    there: list[float] = []
    train(tiny(dataset, tmp_path / "b", loader_workers=2), progress=False,
          callbacks=[lambda i: there.append(i.loss)])
    assert here == there and len(here) == 6


def test_note_state_reaches_the_model_without_controls(dataset: Path, tmp_path: Path):
    result = train(tiny(dataset, tmp_path / "run", steps=1, controls=False, note_state=True,
                        model=ModelConfig(embed_dim=16, hidden_size=24, num_layers=1)),
                   progress=False)
    c = result.model.config
    assert c.control_dim == 0 and c.state_dim == 256
    torch.manual_seed(0)
    fresh = type(result.model)(c).state_dict()["lstm.weight_ih_l0"]
    trained = result.model.state_dict()["lstm.weight_ih_l0"]
    state_columns = slice(c.embed_dim, c.embed_dim + c.state_dim)  # inputs: embedding, state
    assert not torch.equal(trained[:, state_columns], fresh[:, state_columns])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, config: dict, out: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = train(TrainConfig.from_dict(config), progress=False)
    torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")


def test_ddp_two_processes_match_one_process(dataset: Path, tmp_path: Path):
    config = tiny(dataset, tmp_path / "ddp", steps=3, eval_every=3,
                  model=ModelConfig(embed_dim=16, hidden_size=24, num_layers=2, dropout=0.0))
    mp.spawn(_ddp_worker, args=(2, _free_port(), config.to_dict(), str(tmp_path)), nprocs=2)
    single = train(TrainConfig.from_dict({**config.to_dict(), "out": str(tmp_path / "one")}),
                   progress=False).model.state_dict()
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key, value in single.items():
        assert torch.equal(rank0[key], rank1[key]), key
        torch.testing.assert_close(rank0[key], value, rtol=1e-4, atol=1e-5)
    assert load_checkpoint(tmp_path / "ddp" / "last.pt").step == 3  # rank 0 wrote the run


def test_a_launch_without_torchrun_fails_in_one_line(dataset: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MelodiaError, match="WORLD_SIZE=2 but RANK, MASTER_ADDR, MASTER_PORT not set.*torchrun"):
        train(tiny(dataset, tmp_path / "run"), progress=False)


def test_a_rank_that_never_comes_fails_instead_of_hanging(dataset: Path, tmp_path: Path,
                                                         monkeypatch):
    import time

    import melodia.training.distributed

    monkeypatch.setattr(melodia.training.distributed, "DDP_TIMEOUT_S", 2.0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    t0 = time.monotonic()
    with pytest.raises(MelodiaError, match="rank 0 of 2 could not join the gloo process group"):
        train(tiny(dataset, tmp_path / "run"), progress=False)
    assert time.monotonic() - t0 < 60


def test_more_processes_than_gpus_is_refused():
    from melodia.training.distributed import check_local_rank

    check_local_rank(1, 2)
    with pytest.raises(MelodiaError, match="LOCAL_RANK 2, but this machine has 2 GPUs.*torchrun"):
        check_local_rank(2, 2)


def test_cli_train_then_evaluate(dataset: Path, tmp_path: Path, capsys):
    run = tmp_path / "cli"
    (tmp_path / "run.toml").write_text("seq_len = 16\nbatch_size = 2\n[model]\nhidden_size = 8\n"
                                       "embed_dim = 8\nnum_layers = 1\n")
    assert main(["train", str(dataset), "-o", str(run), "--config", str(tmp_path / "run.toml"),
                 "--steps", "2", "--eval-every", "2", "--eval-events", "100", "--quiet",
                 "--no-controls"]) == 0
    saved = read_toml(run / "config.toml")
    assert saved["steps"] == 2 and saved["controls"] is False and saved["model"]["hidden_size"] == 8
    assert main(["train", "-o", str(run), "--resume", "--steps", "3", "--quiet"]) == 0
    assert load_checkpoint(run / "last.pt").step == 3
    capsys.readouterr()
    assert main(["evaluate", str(run), str(dataset), "--split", "validation", "--json",
                 "--baselines", "1,3", "--max-events", "200", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["results"]] == ["model", "whole files", "+memory",
                                                     "unigram", "3-gram"]
    assert main(["evaluate", str(run), str(dataset), "--split", "test"]) == 2  # no test files


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0 and "usage" in capsys.readouterr().out


def test_config_files_take_flag_spellings(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('batch-size = 8\nseq-len = 64\n[model]\nlayers = 1\nhidden-size = 32\n')
    config = run_config("data", str(tmp_path / "out"), path)
    assert (config.batch_size, config.seq_len) == (8, 64)
    assert (config.model.num_layers, config.model.hidden_size) == (1, 32)
    shipped = run_config("data", str(tmp_path / "o2"),
                         Path(__file__).resolve().parents[2] / "data/recipes/cpu_small.toml")
    assert shipped.model.hidden_size == 256 and shipped.device == "cpu"


def test_a_slow_cpu_run_is_announced_with_its_duration(caplog):
    from melodia.training.trainer import _warn_if_slow

    config = TrainConfig(data="x", steps=20_000)
    with caplog.at_level("WARNING"):
        _warn_if_slow(elapsed_s=10.0, steps=5, config=config)  # 2 s/step -> ~11 h
    assert "11.1 h" in caplog.text and "cpu_small.toml" in caplog.text
    caplog.clear()
    small = TrainConfig(data="x", steps=20_000, model=ModelConfig(num_layers=2, hidden_size=256))
    with caplog.at_level("WARNING"):
        _warn_if_slow(elapsed_s=10.0, steps=5, config=small)  # already CPU-sized: not the recipe
    assert "fewer --steps" in caplog.text and "cpu_small.toml" not in caplog.text
    caplog.clear()
    _warn_if_slow(elapsed_s=0.5, steps=5, config=TrainConfig(data="x", steps=1000))
    assert not caplog.text
