"""Training settings: :class:`TrainConfig` (saved as a run's ``config.toml``), config files
whose keys may be spelled as the flags, and how defaults, a file and flags are merged."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from melodia.errors import MelodiaError
from melodia.model.config import ModelConfig
from melodia.util.knobs import KnobError, check


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
    # current instrument every step (melodia.features.band); ignored for piano data
    band: bool = True
    meter: bool = True  # band: feed where the music is in the bar (melodia.features.band.METER_SPANS)
    # band: feed what each part struck at this point of the bar 1 and 2 bars back
    # (melodia.features.lookback); off until a shipped model is trained with it
    lookback: bool = False
    init: str = ""  # start from this checkpoint's weights (fine-tuning); "" = random init
    control_dropout: float = 0.1  # chance per crop to drop each control, so both are optional
    holdout_fraction: float = 0.05  # with no validation files: hold out each train file's tail
    # processes building batches ahead of the step (melodia.training.batches); -1 = auto: none on a CPU,
    # up to 4 per GPU
    loader_workers: int = -1
    model: ModelConfig = field(default_factory=ModelConfig)  # vocab/control size set from data

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        for f in dataclasses.fields(self):  # a number from a TOML file or the API is a number
            default, value = f.default, getattr(self, f.name)
            if value is None and "None" in str(f.type):
                continue
            if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                    not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise KnobError(f"{f.name} must be a number, not {value!r}")
        for name in ("steps", "batch_size", "seq_len"):
            setattr(self, name, check(name, getattr(self, name)))
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
        span = self.model.attention_span
        if span is not None and span > self.seq_len:
            raise ValueError(f"a {self.model.kind}'s context ({span}) must not exceed "
                             f"seq_len ({self.seq_len}): it would attend further back than it "
                             f"ever trained to (give --context {self.seq_len} or a longer "
                             f"--seq-len)")
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


__all__ = ["TrainConfig", "data_entries", "read_toml", "run_config"]
