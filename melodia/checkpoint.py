"""Self-describing checkpoints: weights + model config + encoding + training state, no pickle.

A checkpoint is one ``torch.save`` file holding only tensors and plain values; every config is a
JSON string, so it loads with ``torch.load(weights_only=True)`` (no arbitrary code runs)::

    {"format": "melodia-checkpoint", "version": 1, "step": int,
     "model_config": json, "encoding": json, "metrics": json, "train_config": json, "extra": json,
     "model": state_dict, "optimizer": optimizer state_dict | None,
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...]}}

Writes are atomic: the file is written beside its destination, flushed, fsynced and renamed over
it, so a crash at any moment leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from melodia.atomic import atomic_write
from melodia.encoding import PerformanceEncoding, encoding_from_dict
from melodia.errors import MelodiaError
from melodia.model import ModelConfig, PerformanceRNN

log = logging.getLogger(__name__)

FORMAT = "melodia-checkpoint"
VERSION = 1
RUN_FILES = ("best.pt", "last.pt")  # what ``load_checkpoint(run_dir)`` looks for, in order


class CheckpointError(MelodiaError):
    """A checkpoint file that is missing, unreadable or not a melodia checkpoint."""


@dataclass
class Checkpoint:
    """Everything a checkpoint holds, rebuilt: the model is ready to run (in eval mode)."""

    model: PerformanceRNN
    encoding: PerformanceEncoding
    step: int
    model_config: ModelConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] | None = None
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self) -> str:
        c = self.model_config
        return (f"Checkpoint({str(self.path)!r}, step={self.step}, {self.encoding.name}, "
                f"{c.num_layers}x{c.hidden_size} LSTM, metrics={self.metrics})")


def _unwrap(model: nn.Module) -> PerformanceRNN:
    """The bare model inside DistributedDataParallel / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    encoding: PerformanceEncoding,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    *,
    train_config: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; ``metrics``, ``extra``, ``train_config`` must be JSON-able."""
    model = _unwrap(model)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "step": int(step),
        "model_config": json.dumps(model.config.to_dict()),
        "encoding": json.dumps(encoding.to_dict()),
        "metrics": json.dumps(metrics or {}),
        "train_config": json.dumps(train_config),
        "extra": json.dumps(extra or {}),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": _to_cpu(optimizer.state_dict()) if optimizer is not None else None,
        "rng": rng_state(),
    }
    path = atomic_write(path, lambda f: torch.save(payload, f))
    log.debug("saved %s (step %d)", path, step)
    return path


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or ``best.pt`` / ``last.pt`` inside a run directory."""
    path = Path(path)
    if path.is_dir():
        for name in RUN_FILES:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path} holds no checkpoint ({' or '.join(RUN_FILES)})")
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint file (or a run directory's best/last) and rebuild model and encoding."""
    path = resolve(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torn/foreign files raise a zoo of exception types
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a melodia checkpoint")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload['version']}; this melodia "
                              f"reads up to {VERSION}: upgrade melodia")
    config = ModelConfig.from_dict(json.loads(payload["model_config"]))
    model = PerformanceRNN(config)
    model.load_state_dict(payload["model"])
    model.to(map_location).eval()
    return Checkpoint(
        model=model,
        encoding=encoding_from_dict(json.loads(payload["encoding"])),
        step=int(payload["step"]),
        model_config=config,
        metrics=json.loads(payload["metrics"]),
        train_config=json.loads(payload["train_config"]),
        optimizer_state=payload.get("optimizer"),
        rng_state=payload.get("rng"),
        extra=json.loads(payload["extra"]),
        path=path,
    )


__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "resolve", "save_checkpoint"]
