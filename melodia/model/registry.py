"""Which model to generate with: the ones that ship with melodia (by name), checkpoint files and
run directories, each loaded once and cached (with its :class:`~melodia.model.stepper.FastStepper`).

::

    ckpt = melodia.load("piano")               # melodia.model.registry.load_model: a shipped name, a
    ckpt = melodia.load("runs/band")           # checkpoint file, an exported folder or a run dir
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from melodia.errors import GenerateError
from melodia.model.checkpoint import EXPORT_FILES, RUN_FILES, Checkpoint, load_checkpoint
from melodia.model.families import make_stepper
from melodia.model.stepper import FastStepper

#: Models that ship inside the package (melodia/weights/<file>), by name.
SHIPPED = {"piano": "piano.pt", "band": "band.pt"}


def shipped_model_path(name: str) -> Path:
    """Path of a model shipped as package data (``piano``; ``band`` once one ships)."""
    if name not in SHIPPED:
        raise GenerateError(f"no shipped model called {name!r}; shipped: {sorted(SHIPPED)}")
    path = Path(str(resources.files("melodia.weights") / SHIPPED[name]))
    if not path.is_file():
        raise GenerateError(
            f"this melodia ships no {name} model ({path} is missing); train one with "
            f"`melodia train` and pass its run directory or checkpoint as the model")
    return path


def resolve_model(model: str | Path) -> Path:
    """A shipped model's name, a checkpoint file or a run directory -> the checkpoint's path."""
    if isinstance(model, str) and model in SHIPPED:
        return shipped_model_path(model)
    path = Path(model)
    if not path.exists():
        raise GenerateError(f"no such model: {model} (use {' or '.join(SHIPPED)}, a checkpoint "
                            f"file or a run directory)")
    return path


def _checkpoint_file(model: str | Path) -> Path:
    """The file or folder to load; a run directory is cached by its own time stamp, which moves
    whenever a checkpoint is written into it (they are renamed in, atomically)."""
    return resolve_model(model).resolve()


def _stamp(path: Path) -> tuple[int, ...]:
    """What moves when the model at ``path`` changes: its time stamp and, for a folder, those of
    the files in it that make a model (an exported folder's config.json may be edited in place,
    which leaves the folder's own time stamp as it was)."""
    files = [path, *(path / name for name in (*RUN_FILES, *EXPORT_FILES))] if path.is_dir() \
        else [path]
    return tuple(f.stat().st_mtime_ns for f in files if f.exists())


@lru_cache(maxsize=4)
def _cached_checkpoint(path: str, stamp: tuple[int, ...]) -> Checkpoint:
    return load_checkpoint(path)


def load_model(model: str | Path | Checkpoint = "piano") -> Checkpoint:
    """The checkpoint for ``model`` (a shipped name, a file or run directory), cached per file."""
    if isinstance(model, Checkpoint):
        return model
    path = _checkpoint_file(model)
    return _cached_checkpoint(str(path), _stamp(path))


def load_stepper(model: str | Path | Checkpoint = "piano", precision: str = "fp32"
                 ) -> tuple[Checkpoint, FastStepper]:
    """The checkpoint and its :class:`~melodia.model.stepper.FastStepper` (built once per
    checkpoint and precision, kept on the checkpoint)."""
    checkpoint = load_model(model)
    stepper = checkpoint.steppers.get(precision)
    if stepper is None:
        stepper = checkpoint.steppers[precision] = make_stepper(checkpoint.model, precision)
    return checkpoint, stepper


__all__ = ["SHIPPED", "load_model", "load_stepper", "resolve_model", "shipped_model_path"]
