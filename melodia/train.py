"""The trainer: random crops -> PerformanceRNN, AdamW, warmup + cosine LR, eval, checkpoints, DDP.

One function, :func:`train`, runs the same on a laptop CPU, a GPU (bf16/fp16 autocast) and under
``torchrun --nproc-per-node N`` (DistributedDataParallel, gloo on CPU, NCCL on GPU; each rank
computes its own slice of every global batch). Everything random is a pure function of
``(seed, step)``: the crops (see :mod:`melodia.dataset`) and the dropout masks (the torch generator
is reseeded every step), so ``resume=True`` continues exactly where ``last.pt`` left off.

A run directory holds ``config.toml`` (the full config: rerun or resume with it),
``metrics.jsonl`` (one JSON object per log/eval row), ``last.pt`` and ``best.pt`` (lowest
validation NLL), and ``tb/`` when TensorBoard is installed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from melodia.errors import MelodiaError
from melodia.model import ModelConfig, PerformanceRNN, next_event_loss

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as ``config.toml`` in the run directory."""

    # dataset directory written by `melodia prepare`, or several as "DIR" / "DIR:WEIGHT" entries:
    # the first one's validation split scores the run; weights (all or none) mix the corpora
    data: str | list[str] = ""
    out: str = "runs/melodia"  # run directory
    steps: int = 20_000  # optimizer steps in all (the LR schedule spans them)
    batch_size: int = 64  # crops per step, across all ranks (Magenta: 64)
    seq_len: int = 512  # events per crop (the model predicts seq_len of them)
    lr: float = 1e-3  # peak learning rate (Magenta: 1e-3)
    min_lr: float = 1e-4  # cosine decay ends here at `steps`
    warmup_steps: int = 200  # linear warmup from 0
    weight_decay: float = 0.0  # AdamW decay of weight matrices (not biases)
    grad_clip: float = 3.0  # max global gradient norm, 0 = off (Magenta: 3)
    eval_every: int = 500  # steps between validation passes (and checkpoints)
    eval_events: int | None = 100_000  # validation events scored per pass, None = all
    eval_segment: int = 2048  # validation files are scored in pieces of this many events
    log_every: int = 10  # steps per metrics.jsonl row
    seed: int = 0
    device: str = "auto"  # auto (cuda if available), cpu, cuda, cuda:N
    amp: bool = True  # bf16/fp16 autocast on CUDA (ignored on CPU)
    transpose: int = 3  # augmentation: transpose by -transpose..+transpose semitones
    stretch: float = 0.05  # augmentation: stretch time by 1-stretch..1+stretch
    controls: bool = True  # condition on note density and pitch-class histogram
    note_state: bool = True  # feed the sounding notes (and their age) as an input at every step
    # band encoding: condition on line-up, style (the dataset's labels) and tempo, and feed the
    # current instrument every step (melodia.band); ignored for piano data
    band: bool = True
    meter: bool = True  # band: feed where the music is in the bar (melodia.band.METER_SPANS)
    init: str = ""  # start from this checkpoint's weights (fine-tuning); "" = random init
    control_dropout: float = 0.1  # chance per crop to drop each control, so both are optional
    holdout_fraction: float = 0.05  # with no validation files: hold out each train file's tail
    # processes building batches ahead of the step (melodia.batches); -1 = auto: none on a CPU,
    # up to 4 per GPU
    loader_workers: int = -1
    model: ModelConfig = field(default_factory=ModelConfig)  # vocab/control size set from data

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        positive = ("steps", "batch_size", "seq_len", "eval_every", "log_every", "eval_segment")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError("need lr > 0 and 0 <= min_lr <= lr")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("warmup_steps, weight_decay and grad_clip must be >= 0")
        if self.eval_events is not None and self.eval_events < 1:
            raise ValueError("eval_events must be >= 1 (or None for all)")
        if not 0 <= self.transpose <= 12 or not 0 <= self.stretch < 0.5:
            raise ValueError("need 0 <= transpose <= 12 and 0 <= stretch < 0.5")
        if not 0 <= self.control_dropout <= 1 or not 0 <= self.holdout_fraction < 1:
            raise ValueError("need 0 <= control_dropout <= 1 and 0 <= holdout_fraction < 1")
        if self.loader_workers < -1:
            raise ValueError("loader_workers must be >= 0, or -1 for auto")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**data)

    def to_toml(self) -> str:
        lines, model = [], []
        for key, value in self.to_dict().items():
            if key == "model":
                model = [f"{k} = {_toml_value(v)}" for k, v in value.items()]
            else:  # TOML has no null; the one optional setting reads "all"
                lines.append(f"{key} = {_toml_value('all' if value is None else value)}")
        return "\n".join(["# melodia train config", *lines, "", "[model]", *model, ""])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def read_toml(path: str | Path) -> dict[str, Any]:
    """A config file's settings (``eval_events = "all"`` stands for None)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise MelodiaError(f"cannot read config {path}: {err}") from None
    data = _canonical_keys(data)
    if data.get("eval_events") == "all":
        data["eval_events"] = None
    return data


# the command line's names for model settings (`--layers 2` = `num_layers = 2` in [model])
_FLAG_NAMES = {"layers": "num_layers"}


def _canonical_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Config keys as the flags spell them (``batch-size``, ``[model] layers``) or as the
    dataclass fields do (``batch_size``, ``num_layers``): both are accepted."""
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "model" and isinstance(value, dict):
            value = {_FLAG_NAMES.get(k.replace("-", "_"), k.replace("-", "_")): v
                     for k, v in value.items()}
        out[name] = value
    return out


CPU_CHECK_STEPS = 5  # after this many steps on a CPU, say how long the run will take
SLOW_RUN_S = 3600.0


def _warn_if_slow(elapsed_s: float, steps: int, config: TrainConfig) -> None:
    """On a CPU, warn (with the estimate) when the run will take more than an hour."""
    eta = elapsed_s / steps * (config.steps - steps)
    if eta > SLOW_RUN_S:
        c = config.model
        log.warning("this %dx%d LSTM trains at %.1f s/step on the CPU: %d steps take about %.1f h."
                    " For a CPU-sized run try --config data/recipes/cpu_small.toml (2x256, "
                    "~0.4 s/step on 2 cores) or --device cuda", c.num_layers, c.hidden_size,
                    elapsed_s / steps, config.steps, eta / 3600)


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine decay."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


@dataclass
class StepInfo:
    """What callbacks see after each optimizer step (``step`` counts completed steps)."""

    step: int
    loss: float
    lr: float
    grad_norm: float
    model: PerformanceRNN
    validation: dict[str, Any] | None = None  # set on steps that evaluated


@dataclass
class TrainResult:
    model: PerformanceRNN
    step: int
    best_nll: float
    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)  # this call's metrics rows


# ------------------------------------------------------------------------------- helpers


DDP_TIMEOUT_S = float(os.environ.get("MELODIA_DDP_TIMEOUT_S", "300"))  # join + each collective
_LAUNCH = "launch with `torchrun --nproc-per-node N melodia train ...` (N <= GPUs per machine)"


def _distributed(device: str) -> tuple[int, int, bool]:
    """(rank, world size, whether we created the process group) from torchrun's environment.
    A broken launch (variables missing, a rank that never comes) fails with one line after at
    most ``DDP_TIMEOUT_S`` (env ``MELODIA_DDP_TIMEOUT_S``) instead of hanging."""
    import datetime

    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, False
    created = not dist.is_initialized()
    if created:
        missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise MelodiaError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: {_LAUNCH}")
        backend = "nccl" if device.startswith("cuda") else "gloo"
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=DDP_TIMEOUT_S))
        except (RuntimeError, ValueError) as err:  # DistStoreError, DistNetworkError among them
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise MelodiaError(f"rank {os.environ['RANK']} of {world} could not join the {backend} "
                               f"process group within {DDP_TIMEOUT_S:.0f} s ({first[:200]}): "
                               f"{_LAUNCH}") from None
    return dist.get_rank(), dist.get_world_size(), created


def check_local_rank(local_rank: int, gpus: int) -> None:
    """Refuse a launch with more processes per machine than GPUs (they would share one GPU)."""
    if local_rank >= gpus:
        raise MelodiaError(f"LOCAL_RANK {local_rank}, but this machine has {gpus} GPU"
                           f"{'s' if gpus != 1 else ''}: {_LAUNCH}")


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MelodiaError("device cuda asked for, but torch sees no CUDA GPU")
    if name == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        check_local_rank(local_rank, torch.cuda.device_count())
        name = f"cuda:{local_rank}"
    return torch.device(name)


def _all_reduce(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999))


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence((seed, step, rank)).generate_state(1)[0])


class _Log:
    """metrics.jsonl (+ TensorBoard when installed); rank 0 only."""

    def __init__(self, run_dir: Path, keep_until: int | None, enabled: bool) -> None:
        self.path, self.enabled, self.tb = run_dir / "metrics.jsonl", enabled, None
        self.rows: list[dict[str, Any]] = []
        if not enabled:
            return
        if keep_until is not None and self.path.exists():  # resume: drop rows past the checkpoint
            rows = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
            keep = [r for r in rows if r["step"] <= keep_until]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        elif keep_until is None:
            self.path.write_text("")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            pass

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for key, value in row.items():
                if key not in ("step", "kind") and isinstance(value, (int, float)):
                    self.tb.add_scalar(f"{row['kind']}/{key}", value, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# --------------------------------------------------------------------------------- train


def data_entries(data: str | Sequence[str]) -> list[tuple[str, float | None]]:
    """``"DIR"`` / ``"DIR:WEIGHT"`` entries as (folder, weight or None); weights all or none."""
    entries = []
    for item in [data] if isinstance(data, str) else list(data):
        path, _, weight = str(item).rpartition(":")
        try:
            value = float(weight) if path else None
        except ValueError:
            value = None
        if value is None:
            entries.append((str(item), None))
        elif not (math.isfinite(value) and value >= 0):
            raise MelodiaError(f"a dataset weight must be a number >= 0, not {weight!r}")
        else:
            entries.append((path, value))
    weighted = [w is not None for _, w in entries]
    if any(weighted) and not all(weighted):
        raise MelodiaError("give every dataset a weight (DIR:WEIGHT) or none")
    if not entries or not entries[0][0]:
        raise MelodiaError("no dataset: give DATASET_DIR")
    return entries


@dataclasses.dataclass
class BandData:
    """What a band run conditions on: the layout, each sequence's style index, and what
    generation draws from when a user leaves a condition unset (saved in the checkpoint)."""

    layout: Any  # melodia.band.BandLayout
    train_styles: list[int | None]
    valid_styles: list[int | None]
    info: dict[str, Any]
    train_tempos: list[Any]  # exact tempo maps [[time_s, qpm], ...] per file (None: unknown)
    valid_tempos: list[Any]


def _styles_of(records: list[dict[str, Any]], styles: tuple[str, ...]) -> list[int | None]:
    return [styles.index(r["style"]) if r.get("style") in styles else None for r in records]


def _band_data(sets, encoding, train_records, valid_records, train_seqs) -> BandData:
    """Styles from the datasets' labels (``melodia prepare --labels-from-folders``), and per
    style the programs each family plays (likeliest first) and the line-ups and tempos of its
    files, so generation can fill in what a user does not ask for."""
    from collections import Counter

    from melodia.band import (BandLayout, family_of, instrument_profile, playing, qpm_at,
                              tempos_from_ids)

    styles = tuple(sorted({r["style"] for d in sets for r in d.files() if r.get("style")}))
    layout = BandLayout(styles, encoding.config.tempo_bins)
    programs: dict[str, Counter] = {}
    lineups = []
    for record, seq in zip(train_records, train_seqs):
        style = record.get("style") or ""
        instruments = playing(np.asarray(seq), encoding)
        tempos = record.get("tempos")
        qpm = qpm_at(tempos if tempos is not None else tempos_from_ids(seq, encoding), 0.0)
        lineups.append({"style": style, "instruments": instruments,
                        "qpm": round(qpm, 2)})
        counts = programs.setdefault(style, Counter())
        counts.update(instruments)
    by_family = {style: {} for style in programs}
    for style, counts in programs.items():
        for program, _ in counts.most_common():
            by_family[style].setdefault(family_of(program), []).append(int(program))
    info = {"styles": list(styles), "tempo_bins": layout.tempo_bins, "programs": by_family,
            "lineups": lineups, "profile": instrument_profile(train_seqs, encoding)}
    return BandData(layout, _styles_of(train_records, styles), _styles_of(valid_records, styles),
                    info, [r.get("tempos") for r in train_records],
                    [r.get("tempos") for r in valid_records])


def _data(config: TrainConfig):
    """Encoding, train and validation sequences, the training crops, the first dataset's
    training sequences (the music the corpus controls are measured on), and BandData (band
    encoding with ``config.band``) or None."""
    from melodia.corpus import TokenDataset
    from melodia.dataset import CropDataset, holdout_tail

    entries = data_entries(config.data)
    sets = [TokenDataset(path) for path, _ in entries]
    data = sets[0]
    for other, (path, _) in zip(sets[1:], entries[1:]):
        if other.encoding.to_dict() != data.encoding.to_dict():
            raise MelodiaError(f"{path} uses another encoding than {entries[0][0]}")
    train_records, valid_records = data.files("train"), data.files("validation")
    train_seqs = [data.ids(r) for r in train_records]
    valid_seqs = [data.ids(r) for r in valid_records]
    if not valid_seqs:
        log.warning("%s has no validation files: holding out the last %.0f%% of every training "
                    "file instead", entries[0][0], 100 * config.holdout_fraction)
        whole = train_seqs
        train_seqs, valid_seqs = holdout_tail(train_seqs, config.holdout_fraction)
        valid_records = [r for r, s in zip(train_records, whole)  # the files that gave a tail
                         if len(s) - max(2, int(round(len(s) * config.holdout_fraction))) >= 2]
    primary, groups = train_seqs, [0] * len(train_seqs)
    for g, other in enumerate(sets[1:], start=1):
        records = other.files("train")
        train_records = train_records + records
        train_seqs = train_seqs + [other.ids(r) for r in records]
        groups += [g] * len(records)
    weights = [w for _, w in entries] if entries[0][1] is not None else None
    band = None
    if config.band and any(r.type == "PROGRAM" for r in data.encoding.vocab.ranges):
        band = _band_data(sets, data.encoding, train_records, valid_records, train_seqs)
    crops = CropDataset(train_seqs, data.encoding, config.seq_len, seed=config.seed,
                        transpose=config.transpose, stretch=config.stretch,
                        controls=config.controls, control_dropout=config.control_dropout,
                        note_state=config.note_state,
                        groups=groups if weights else None, weights=weights,
                        band_layout=band.layout if band else None,
                        styles=band.train_styles if band else None,
                        meter=bool(band) and config.meter,
                        tempos=band.train_tempos if band else None)
    return data.encoding, train_seqs, valid_seqs, crops, primary, band


def _init_from(model: PerformanceRNN, path: str, device: torch.device) -> None:
    """Load the weights of checkpoint ``path`` into ``model`` (same shape required)."""
    from melodia.checkpoint import load_checkpoint

    source = load_checkpoint(path, map_location=device)
    if dataclasses.replace(source.model_config, dropout=model.config.dropout) != model.config:
        raise MelodiaError(f"--init {path} holds a {source.model_config}; this run builds a "
                           f"{model.config}: the shapes must match")
    model.load_state_dict(source.model.state_dict())
    log.info("initialised from %s (step %d)", path, source.step)


def _step(net: torch.nn.Module, batch: dict[str, torch.Tensor], optimizer, scaler, autocast,
          config: TrainConfig, world: int) -> tuple[float, int, float]:
    """One optimizer step; returns the mean loss over all ranks, their event count, grad norm."""
    with autocast():
        loss_sum, count = next_event_loss(net, batch["inputs"], batch["targets"],
                                          batch.get("controls"))
    stats = _all_reduce(torch.stack([loss_sum.detach(), count.to(loss_sum.dtype)]), world)
    total = stats[1].clamp(min=1)
    scaler.scale(loss_sum * world / total).backward()  # DDP averages gradients over ranks
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    max_norm = config.grad_clip if config.grad_clip > 0 else math.inf
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return float(stats[0] / total), int(stats[1]), grad_norm


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          callbacks: Sequence[Callable[[StepInfo], None]] = ()) -> TrainResult:
    """Train a :class:`PerformanceRNN` on ``config.data``; see the module docstring.

    ``resume`` continues from ``<out>/last.pt`` (a fresh start if there is none). Without it, a
    run directory that already holds a checkpoint is refused rather than overwritten.
    """
    from melodia.batches import auto_workers, batch_loader, expand_inputs, input_dims, to_device
    from melodia.checkpoint import load_checkpoint, save_checkpoint
    from melodia.band import METER_DIM, N_INSTRUMENTS
    from melodia.controls import CONTROL_DIM, NOTE_STATE_DIM, control_prior
    from melodia.evaluate import Totals, event_types, model_totals

    run_dir = Path(config.out)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if last_path.exists() and not resume:
        raise MelodiaError(f"{run_dir} already holds a run; pass resume=True (--resume) to "
                           "continue it, or choose another output directory")
    device = _device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank, world, created_group = _distributed(str(device))
    if config.batch_size % world:
        raise MelodiaError(f"batch_size {config.batch_size} is not divisible by {world} ranks")
    main = rank == 0

    encoding, train_seqs, valid_seqs, crops, primary, band = _data(config)
    model_config = dataclasses.replace(config.model, vocab_size=encoding.vocab_size,
                                       control_dim=CONTROL_DIM if config.controls else 0,
                                       state_dim=NOTE_STATE_DIM if config.note_state else 0,
                                       band_dim=band.layout.dim if band else 0,
                                       instrument_dim=N_INSTRUMENTS if band else 0,
                                       meter_dim=METER_DIM if band and config.meter else 0)
    config = dataclasses.replace(config, model=model_config)
    torch.manual_seed(config.seed)
    model = PerformanceRNN(model_config).to(device)
    if config.init and not (resume and last_path.exists()):
        _init_from(model, config.init, device)
    prior = (control_prior(primary, encoding, seed=config.seed).round(5).tolist()
             if config.controls else [])
    optimizer = _optimizer(model, config)
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    autocast = functools.partial(torch.autocast, device.type, dtype=amp_dtype, enabled=use_amp)

    start, best = 0, math.inf
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path, map_location=device)
        if ckpt.model_config != model_config:
            raise MelodiaError(f"{last_path} holds a {ckpt.model_config}, the config asks for "
                               f"{model_config}")
        model.load_state_dict(ckpt.model.state_dict())
        optimizer.load_state_dict(ckpt.optimizer_state)
        if "grad_scaler" in ckpt.extra:
            scaler.load_state_dict(ckpt.extra["grad_scaler"])
        start, best = ckpt.step, ckpt.extra.get("best_nll", math.inf)
        saved = ckpt.train_config or {}
        changed = sorted(k for k, v in config.to_dict().items()
                         if k not in ("model", "out", "data") and k in saved and saved[k] != v)
        if changed:
            log.warning("resuming with changed settings (%s): the run will not match an "
                        "uninterrupted one", ", ".join(changed))
        log.info("resuming %s at step %d", run_dir, start)
    elif resume:
        log.info("nothing to resume in %s: starting a new run", run_dir)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(config.to_toml())
        c = model_config
        log.info("%dx%d LSTM, %s parameters; %d train sequences (%d events), %d validation",
                 c.num_layers, c.hidden_size, f"{model.num_parameters():,}", len(train_seqs),
                 sum(map(len, train_seqs)), len(valid_seqs))
    logger = _Log(run_dir, start if start else None, enabled=main)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)

    valid_conditions = None
    if band is not None:  # each validation file plays under its own line-up, style and tempo
        from melodia.band import file_conditions

        valid_conditions = [file_conditions(s, encoding, band.layout, style, tempos=t)
                            for s, style, t in zip(valid_seqs, band.valid_styles,
                                                   band.valid_tempos)]

    def validate(step: int) -> dict[str, Any]:
        totals = model_totals(model, valid_seqs, encoding, segment_events=config.eval_segment,
                              max_events=config.eval_events, shard=(rank, world),
                              conditions=valid_conditions,
                              tempos=band.valid_tempos if band is not None else None)
        values = torch.tensor(totals.values, dtype=torch.float64, device=device)
        values = _all_reduce(values, world).cpu().numpy()
        r = Totals(event_types(encoding)[0], values, groups=totals.groups).result("validation")
        return {"step": step, "kind": "eval", "nll": r.nll, "bits": r.bits,
                "perplexity": r.perplexity, "accuracy": r.accuracy, "events": r.events}

    def checkpoint(path: Path, step: int, metrics: dict[str, Any]) -> None:
        extra = {"best_nll": best, "control_prior": prior,
                 **({"band": band.info} if band is not None else {}),
                 **({"grad_scaler": scaler.state_dict()} if scaler.is_enabled() else {})}
        save_checkpoint(path, model, encoding, step, optimizer, metrics, extra,
                        train_config=config.to_dict())

    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=start, unit="step", desc="training",
               disable=not (progress and main), dynamic_ncols=True)
    window_loss, window_events, window_steps, window_t0 = 0.0, 0, 0, time.perf_counter()
    started = time.perf_counter()
    mkldnn_before = torch.backends.mkldnn.enabled
    # oneDNN's LSTM kernels train 2.4x faster than the native ones here (3 x 512 at 16 x 512,
    # tests/benchmarks/bench_train.py --mkldnn-off); a sampler may have switched them off
    torch.backends.mkldnn.enabled = True
    model.train()
    dims = input_dims(crops)
    workers = (auto_workers(device, world) if config.loader_workers < 0
               else config.loader_workers)
    batches = batch_loader(crops, range(start, config.steps), config.batch_size, rank, world,
                           workers, pin_memory=device.type == "cuda")
    try:
        for step, compact in zip(range(start, config.steps), batches):
            torch.manual_seed(_step_seed(config.seed, step, rank))
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = to_device(compact, device)
            if dims.total:
                batch["controls"] = expand_inputs(batch, dims)
            step_loss, events, grad_norm = _step(net, batch, optimizer, scaler, autocast,
                                                 config, world)
            done = step + 1
            if done == start + CPU_CHECK_STEPS and device.type == "cpu" and main:
                _warn_if_slow(time.perf_counter() - started, done - start, config)
            window_loss += step_loss
            window_events += events
            window_steps += 1
            validation = None
            if done % config.log_every == 0 or done == config.steps:
                elapsed = time.perf_counter() - window_t0
                row = {"step": done, "kind": "train", "loss": window_loss / window_steps,
                       "lr": lr, "grad_norm": grad_norm,
                       "events_per_s": window_events / max(elapsed, 1e-9),
                       "elapsed_s": time.perf_counter() - started}
                logger.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", ev_s=f"{row['events_per_s']:.0f}",
                                refresh=False)
                window_loss, window_events, window_steps = 0.0, 0, 0
                window_t0 = time.perf_counter()
            if done % config.eval_every == 0 or done == config.steps:
                eval_t0 = time.perf_counter()
                validation = validate(done)
                logger.write(validation)
                improved = validation["nll"] < best
                best = min(best, validation["nll"])
                if main:
                    checkpoint(last_path, done, validation)
                    if improved:
                        checkpoint(best_path, done, validation)
                    log.info("step %d: validation %.4f nats/event (best %.4f)", done,
                             validation["nll"], best)
                bar.set_postfix(loss=f"{step_loss:.3f}", val=f"{validation['nll']:.3f}",
                                refresh=False)
                window_t0 += time.perf_counter() - eval_t0  # eval time is not training time
            bar.update(1)
            info = StepInfo(done, step_loss, lr, grad_norm, model, validation)
            for callback in callbacks:
                callback(info)
    finally:
        batches = None  # stops the loader's workers
        torch.backends.mkldnn.enabled = mkldnn_before
        bar.close()
        logger.close()
        if created_group:
            import torch.distributed as dist

            dist.destroy_process_group()
    return TrainResult(model=model, step=config.steps, best_nll=best, run_dir=run_dir,
                       history=logger.rows)


def run_config(data: str | None, out: str | None, config_file: str | Path | None = None,
               overrides: dict[str, Any] | None = None, resume: bool = False) -> TrainConfig:
    """Merge defaults < config file (or, resuming, the run's saved config.toml) < overrides."""
    settings: dict[str, Any] = {}
    saved = Path(out) / "config.toml" if out else None
    if config_file is not None:
        settings = read_toml(config_file)
    elif resume and saved is not None and saved.is_file():
        settings = read_toml(saved)
    overrides = dict(overrides or {})
    model = {**settings.pop("model", {}), **overrides.pop("model", {})}
    settings.update({k: v for k, v in overrides.items()})
    if data:
        settings["data"] = str(data) if isinstance(data, (str, Path)) else [str(d) for d in data]
    if out is not None:
        settings["out"] = str(out)
    if not settings.get("data"):
        raise MelodiaError("no dataset: give DATASET_DIR (or `data = ...` in the config file)")
    try:
        return TrainConfig.from_dict({**settings, "model": model})
    except (TypeError, ValueError) as err:
        raise MelodiaError(f"bad training config: {err}") from None


__all__ = ["BandData", "StepInfo", "TrainConfig", "TrainResult", "data_entries", "lr_at", "read_toml",
           "run_config", "train"]
