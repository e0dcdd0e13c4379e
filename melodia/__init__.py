"""melodia: learn music from MIDI and play it back (Performance RNN in PyTorch).

The public API is loaded lazily, so ``import melodia`` stays fast and imports no torch.
``melodia.load`` takes the shipped model's name, or "band", a .pt file, an exported folder or a
run directory, and gives model + encoding + step + metrics:

>>> import melodia
>>> ckpt = melodia.load("piano")
>>> ckpt.encoding.name, ckpt.encoding.vocab.size
('piano', 388)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Functions named like their own modules are bound eagerly (neither module imports torch or a
# C library at import time): once a submodule is loaded, Python does not rebind the package
# attribute, so ``melodia.output.audio`` stays the function even after ``import melodia.output.audio``.
from melodia.output.plot import plot_piano_roll as plot  # noqa: E402
from melodia.output.audio import render  # noqa: E402

#: Public name -> (module, attribute), imported on first use.
_LAZY: dict[str, tuple[str, str]] = {
    "load": ("melodia.model.registry", "load_model"),  # "piano", "band", a file or a run directory
    "encode": ("melodia.encoding", "encode"),
    "decode": ("melodia.encoding", "decode"),
    "generate": ("melodia.generation.generator", "generate"),
    "iter_events": ("melodia.generation.generator", "iter_events"),
    "accompany": ("melodia.generation.accompaniment", "accompany"),
    "infill": ("melodia.generation.infill", "infill"),
    "form": ("melodia.generation.form", "form"),
    "restyle": ("melodia.generation.restyle", "restyle"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'melodia' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", "accompany", "decode", "encode", "form", "generate", "infill",
           "iter_events", "load", "plot", "render", "restyle"]
