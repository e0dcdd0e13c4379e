"""The trainer: random crops -> a model (LSTM or transformer), AdamW, warmup + cosine LR, eval, checkpoints, DDP.

One function, :func:`train`, runs the same on a laptop CPU, a GPU (bf16/fp16 autocast) and under
``torchrun --nproc-per-node N`` (DistributedDataParallel, gloo on CPU, NCCL on GPU; each rank
computes its own slice of every global batch). Everything random is a pure function of
``(seed, step)``: the crops (see :mod:`melodia.training.crops`) and the dropout masks (the torch generator
is reseeded every step), so ``resume=True`` continues exactly where ``last.pt`` left off.

Settings live in :mod:`melodia.training.config`, the data a run reads in :mod:`melodia.training.data`,
batches in :mod:`melodia.training.batches`, devices and DDP in :mod:`melodia.training.distributed`.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from melodia.errors import MelodiaError
from melodia.evaluate import Totals, event_types, model_totals
from melodia.evaluate.nll import scoring_segment
from melodia.features.band import METER_DIM, file_conditions
from melodia.features.controls import CONTROL_DIM, NOTE_STATE_DIM, control_prior
from melodia.features.lookback import LOOKBACK_DIM
from melodia.midi.instruments import N_INSTRUMENTS
from melodia.model.checkpoint import load_checkpoint, save_checkpoint
from melodia.model.families import make_model
from melodia.model.lstm import next_event_loss
from melodia.training.batches import input_dims
from melodia.training.config import TrainConfig
from melodia.training.data import training_data
from melodia.training.distributed import all_reduce, join_process_group, resolve_device
from melodia.training.loader import auto_workers, batch_loader, expand_inputs, to_device

log = logging.getLogger(__name__)


CPU_CHECK_STEPS = 5  # after this many steps on a CPU, say how long the run will take
SLOW_RUN_S = 3600.0


def _warn_if_slow(elapsed_s: float, steps: int, config: TrainConfig) -> None:
    """On a CPU, warn (with the estimate) when the run will take more than an hour."""
    eta = elapsed_s / steps * (config.steps - steps)
    if eta > SLOW_RUN_S:
        c = config.model
        small = c.num_layers <= 2 and c.hidden_size <= 256  # already the CPU recipe's size
        advice = ("fewer --steps, shorter --seq-len" if small else
                  "--config data/recipes/cpu_small.toml (2x256, ~0.4 s/step on 2 cores)")
        log.warning("this %s trains at %.1f s/step on the CPU: %d steps take about %.1f h."
                    " For a CPU-sized run try %s, or --device cuda", c.describe(),
                    elapsed_s / steps, config.steps, eta / 3600, advice)


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine decay."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


@dataclass
class StepInfo:
    """What callbacks see after each optimizer step (``step`` counts completed steps).

    ``loss`` and ``grad_norm`` are read from the device when a callback asks for them, which
    waits for the step to finish; a callback that does not ask lets the GPU run ahead."""

    step: int
    losses: torch.Tensor  # [mean loss, events], on the device
    lr: float
    norm: torch.Tensor  # the gradient norm before clipping, on the device
    model: nn.Module
    validation: dict[str, Any] | None = None  # set on steps that evaluated

    @property
    def loss(self) -> float:
        """Mean loss of the step over all ranks (nats/event)."""
        return float(self.losses[0])

    @property
    def grad_norm(self) -> float:
        return float(self.norm)


@dataclass
class TrainResult:
    model: nn.Module
    step: int
    best_nll: float
    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)  # this call's metrics rows


# ------------------------------------------------------------------------------- helpers


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


def _init_from(model: nn.Module, path: str, device: torch.device) -> None:
    """Load the weights of checkpoint ``path`` into ``model``: the same shape, or the same but
    for bar lookback inputs ``model`` takes and the checkpoint did not (they are the inputs'
    last columns: their weights start at zero, so the model starts as the checkpoint plays)."""

    source = load_checkpoint(path, map_location=device)
    wider = model.config.lookback_dim - source.model_config.lookback_dim
    same = dataclasses.replace(source.model_config, dropout=model.config.dropout,
                               lookback_dim=model.config.lookback_dim)
    if same != model.config or wider < 0:
        raise MelodiaError(f"--init {path} holds a {source.model_config}; this run builds a "
                           f"{model.config}: the shapes must match (but for new bar lookback "
                           "inputs)")
    state, target = source.model.state_dict(), model.state_dict()
    for name, value in state.items():
        if wider and value.shape != target[name].shape:
            if value.shape[:-1] != target[name].shape[:-1] or \
                    value.shape[-1] + wider != target[name].shape[-1]:
                raise MelodiaError(f"--init {path}: {name} is {tuple(value.shape)}, this run's "
                                   f"{tuple(target[name].shape)}")
            state[name] = torch.cat([value, value.new_zeros(*value.shape[:-1], wider)], dim=-1)
    model.load_state_dict(state)
    log.info("initialised from %s (step %d)%s", path, source.step,
             f", {wider} new lookback inputs at zero" if wider else "")


def _step(net: torch.nn.Module, batch: dict[str, torch.Tensor], optimizer, scaler, autocast,
          config: TrainConfig, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step; returns ``[mean loss over all ranks, their event count]`` and the
    gradient norm, as tensors on the device (no wait for the GPU here)."""
    with autocast():
        loss_sum, count = next_event_loss(net, batch["inputs"], batch["targets"],
                                          batch.get("controls"))
    stats = all_reduce(torch.stack([loss_sum.detach(), count.to(loss_sum.dtype)]), world)
    total = stats[1].clamp(min=1)
    scaler.scale(loss_sum * world / total).backward()  # DDP averages gradients over ranks
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    max_norm = config.grad_clip if config.grad_clip > 0 else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return torch.stack([stats[0] / total, stats[1]]).detach(), grad_norm.detach()


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          callbacks: Sequence[Callable[[StepInfo], None]] = ()) -> TrainResult:
    """Train a model of ``config.model.kind`` on ``config.data``; see the module docstring.

    ``resume`` continues from ``<out>/last.pt`` (a fresh start if there is none). Without it, a
    run directory that already holds a checkpoint is refused rather than overwritten.
    """

    run_dir = Path(config.out)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if last_path.exists() and not resume:
        raise MelodiaError(f"{run_dir} already holds a run; pass resume=True (--resume) to "
                           "continue it, or choose another output directory")
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank, world, created_group = join_process_group(str(device))
    if config.batch_size % world:
        raise MelodiaError(f"batch_size {config.batch_size} is not divisible by {world} ranks")
    main = rank == 0

    encoding, train_seqs, valid_seqs, crops, primary, band = training_data(config)
    model_config = dataclasses.replace(config.model, vocab_size=encoding.vocab_size,
                                       control_dim=CONTROL_DIM if config.controls else 0,
                                       state_dim=NOTE_STATE_DIM if config.note_state else 0,
                                       band_dim=band.layout.dim if band else 0,
                                       instrument_dim=N_INSTRUMENTS if band else 0,
                                       meter_dim=METER_DIM if band and config.meter else 0,
                                       lookback_dim=LOOKBACK_DIM if band and config.lookback
                                       else 0)
    config = dataclasses.replace(config, model=model_config)
    torch.manual_seed(config.seed)
    model = make_model(model_config).to(device)
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
        log.info("%s, %s parameters; %d train sequences (%d events), %d validation",
                 c.describe(), f"{model.num_parameters():,}", len(train_seqs),
                 sum(map(len, train_seqs)), len(valid_seqs))
    logger = _Log(run_dir, start if start else None, enabled=main)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)

    valid_conditions = None
    if band is not None:  # each validation file plays under its own line-up, style and tempo

        valid_conditions = [file_conditions(s, encoding, band.layout, style, tempos=t)
                            for s, style, t in zip(valid_seqs, band.valid_styles,
                                                   band.valid_tempos)]

    def validate(step: int) -> dict[str, Any]:
        totals = model_totals(model, valid_seqs, encoding, segment_events=scoring_segment(model_config, config.eval_segment),
                              max_events=config.eval_events, shard=(rank, world),
                              conditions=valid_conditions,
                              tempos=band.valid_tempos if band is not None else None)
        values = torch.tensor(totals.values, dtype=torch.float64, device=device)
        values = all_reduce(values, world).cpu().numpy()
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
    window, window_t0 = [], time.perf_counter()  # per step: [loss, events] on the device
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
            losses, grad_norm = _step(net, batch, optimizer, scaler, autocast, config, world)
            done = step + 1
            if done == start + CPU_CHECK_STEPS and device.type == "cpu" and main:
                _warn_if_slow(time.perf_counter() - started, done - start, config)
            window.append(losses)
            validation = None
            if done % config.log_every == 0 or done == config.steps:
                steps = torch.stack(window).tolist()  # the one wait for the GPU per window
                elapsed = time.perf_counter() - window_t0
                row = {"step": done, "kind": "train",
                       "loss": sum(r[0] for r in steps) / len(steps), "lr": lr,
                       "grad_norm": float(grad_norm),
                       "events_per_s": sum(int(r[1]) for r in steps) / max(elapsed, 1e-9),
                       "elapsed_s": time.perf_counter() - started}
                logger.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", ev_s=f"{row['events_per_s']:.0f}",
                                refresh=False)
                window, window_t0 = [], time.perf_counter()
            if done % config.eval_every == 0 or done == config.steps:
                if device.type == "cuda":  # the steps queued so far are training time
                    torch.cuda.synchronize(device)
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
                bar.set_postfix(loss=f"{float(losses[0]):.3f}", val=f"{validation['nll']:.3f}",
                                refresh=False)
                window_t0 += time.perf_counter() - eval_t0  # eval time is not training time
            bar.update(1)
            info = StepInfo(done, losses, lr, grad_norm, model, validation)
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


__all__ = ["StepInfo", "TrainResult", "lr_at", "train"]
