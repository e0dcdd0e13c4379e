"""Self-describing checkpoints: weights + model config + encoding + training state, no pickle.

A checkpoint is one ``torch.save`` file holding only tensors and plain values; every config is a
JSON string, so it loads with ``torch.load(weights_only=True)`` (no arbitrary code runs)::

    {"format": "melodia-checkpoint", "version": 1, "step": int,
     "model_config": json, "encoding": json, "metrics": json, "train_config": json, "extra": json,
     "model": state_dict, "optimizer": optimizer state_dict | None,
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...]}}

Writes are atomic: the file is written beside its destination, flushed, fsynced and renamed over
it, so a crash at any moment leaves either the old or the new checkpoint, never a torn one.

``export_model`` (:mod:`melodia.model.export`) writes a folder that needs no pickle at all
(``model.safetensors``, ``config.json``, a model card; ``melodia export``).

``load_checkpoint`` reads either form and checks what it reads (types, weight names and shapes,
a parameter budget) before it builds a model, and that every stored number is finite (weights,
optimizer state, and the metadata generation reads: a NaN in the control prior makes silence), so
a crafted or diverged file fails with one :class:`CheckpointError` line.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from melodia.encoding import PerformanceEncoding, encoding_from_dict
from melodia.errors import MelodiaError
from melodia.model.config import ModelConfig
from melodia.model.families import MAX_PARAMETERS, build_model, finite
from melodia.util.atomic import atomic_write
from melodia.util.portable import strip_paths

log = logging.getLogger(__name__)

FORMAT = "melodia-checkpoint"
VERSION = 1
RUN_FILES = ("best.pt", "last.pt")  # what ``load_checkpoint(run_dir)`` looks for, in order
EXPORT_FORMAT = "melodia-export"
EXPORT_FILES = ("model.safetensors", "config.json")  # what makes a folder an exported model


class CheckpointError(MelodiaError):
    """A checkpoint file that is missing, unreadable or not a melodia checkpoint."""


@dataclass
class Checkpoint:
    """Everything a checkpoint holds, rebuilt: the model is ready to run (in eval mode)."""

    model: nn.Module  # a PerformanceRNN or a MusicTransformer (model_config.kind)
    encoding: PerformanceEncoding
    step: int
    model_config: ModelConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] | None = None
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    # fast steppers built from this model, by precision (melodia.model.registry.load_stepper)
    steppers: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        c = self.model_config
        return (f"Checkpoint({str(self.path)!r}, step={self.step}, {self.encoding.name}, "
                f"{c.describe()}, metrics={self.metrics})")


def _unwrap(model: nn.Module) -> nn.Module:
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
    portable: bool = False,
) -> Path:
    """Write a checkpoint atomically; ``metrics``, ``extra``, ``train_config`` must be JSON-able.

    ``portable=True`` (for checkpoints that ship) passes them through :func:`strip_paths`, so no
    absolute path of the machine that wrote it travels with the file.
    """
    model = _unwrap(model)
    if portable:
        metrics, extra, train_config = strip_paths((metrics, extra, train_config))
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


# ---------------------------------------------------------------------------------- loading


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :func:`export_model`."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in EXPORT_FILES)


def resolve(path: str | Path) -> Path:
    """A checkpoint file, an exported folder, or ``best.pt`` / ``last.pt`` in a run directory."""
    path = Path(path)
    if path.is_dir():
        for name in RUN_FILES:
            if (path / name).is_file():
                return path / name
        if is_export(path):
            return path
        raise CheckpointError(f"{path} holds no checkpoint ({' or '.join(RUN_FILES)}, or "
                              f"{' and '.join(EXPORT_FILES)} from `melodia export`)")
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint: not a regular file (a device or "
                              f"pipe); give a .pt file, a run folder or an exported folder")
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    return path


def _read_torch(path: Path, map_location) -> Any:
    """``torch.load(weights_only=True)`` with one clear line instead of torch's advice."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"cannot read checkpoint {path}: not a torch file (melodia "
                              f"checkpoints are zip archives written by torch.save)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"cannot read checkpoint {path}: it holds Python objects other than tensors and "
            f"plain values{what}; it is not a melodia checkpoint and may be malicious, so it "
            f"was not unpickled") from None
    except Exception as err:  # torn/foreign files raise a zoo of exception types
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"cannot read checkpoint {path}: torn or corrupt torch file "
                              f"({type(err).__name__}: {first})") from None


def _json_field(payload: dict[str, Any], name: str, path: Path, kind: type | None = dict) -> Any:
    """A field that is JSON text in a ``.pt`` checkpoint, a JSON value in ``config.json``."""
    value = payload.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise CheckpointError(f"{path}: its {name} is not valid JSON") from None
    if value is None and name != "model_config":
        return {} if kind is dict else None
    if kind is not None and not isinstance(value, kind):
        raise CheckpointError(f"{path}: its {name} must be a JSON object, got "
                              f"{type(value).__name__}")
    return value


def _build(payload: dict[str, Any], weights_of: Any, path: Path, map_location,
           **state: Any) -> Checkpoint:
    """Validate ``payload`` (either form), then build the model and the encoding it describes;
    ``weights_of()`` loads the weights, only once the model's size is known to be sane."""
    step = payload.get("step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path}: its step must be an integer, got {step!r}")
    model_data = _json_field(payload, "model_config", path)
    encoding_data = _json_field(payload, "encoding", path)
    metrics = _json_field(payload, "metrics", path)
    train_config = _json_field(payload, "train_config", path, kind=None)
    extra = _json_field(payload, "extra", path)
    try:
        model = build_model(ModelConfig.from_saved(model_data), weights_of, MAX_PARAMETERS)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    try:
        encoding = encoding_from_dict(encoding_data)
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: invalid encoding: {err}") from None
    if encoding.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{path}: its encoding has {encoding.vocab_size} ids, its model "
                              f"{model.config.vocab_size}")
    _refuse_non_finite(path, {"model_config": model_data, "encoding": encoding_data,
                              "metrics": metrics, "train_config": train_config, "extra": extra,
                              "optimizer": state.get("optimizer_state"),
                              "rng": state.get("rng_state")})
    return Checkpoint(model=model.to(map_location).eval(), encoding=encoding, step=step,
                      model_config=model.config, metrics=metrics, train_config=train_config,
                      extra=extra, path=path, **state)


def _refuse_non_finite(path: Path, stored: dict[str, Any]) -> None:
    """One line naming the first NaN or infinity in ``stored`` (JSON values, tensors, in dicts,
    lists and tuples), e.g. ``extra.control_prior[2][5]``: such a checkpoint generates silence."""
    where = _non_finite(stored)
    if where is not None:
        name = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in where)
        raise CheckpointError(f"{path}: its {name.lstrip('.')} holds a NaN or infinite value: a "
                              f"diverged training run or a damaged file? Refusing to load it")


def _non_finite(value: Any) -> list | None:
    """The keys that lead to the first NaN or infinity in ``value`` (``[]``: ``value`` itself),
    or None where every number is finite."""
    if isinstance(value, float):
        return None if math.isfinite(value) else []
    if isinstance(value, torch.Tensor):
        return None if not value.is_floating_point() or finite(value) else []
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item)
        if found is not None:
            return [key, *found]
    return None


def _load_export(path: Path, map_location) -> Checkpoint:
    """An exported folder: ``config.json`` and ``model.safetensors``; no pickle anywhere."""
    try:
        payload = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read {path / 'config.json'}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not a melodia export (config.json has no "
                              f"\"format\": \"{EXPORT_FORMAT}\")")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has export version {payload['version']}; this melodia "
                              f"reads up to {VERSION}: upgrade melodia")

    def weights() -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path / "model.safetensors", device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"cannot read {path / 'model.safetensors'}: {err}") from None

    return _build(payload, weights, path, map_location)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint file, an exported folder, or a run directory's best/last; rebuild the
    model and encoding. Anything that is not a well-formed melodia checkpoint raises
    :class:`CheckpointError`."""
    path = resolve(path)
    if path.is_dir():
        return _load_export(path, map_location)
    payload = _read_torch(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a melodia checkpoint")
    version = payload.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {version!r}; this melodia "
                              f"reads up to {VERSION}: upgrade melodia")
    if "model" not in payload:
        raise CheckpointError(f"{path}: holds no model weights")
    return _build(payload, lambda: payload["model"], path, map_location,
                  optimizer_state=payload.get("optimizer"), rng_state=payload.get("rng"))


__all__ = ["Checkpoint", "CheckpointError", "is_export", "load_checkpoint",
           "resolve", "save_checkpoint"]
