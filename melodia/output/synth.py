"""FluidSynth and SoundFonts: import the binding with a clear error, route its log to ``logging``,
find a SoundFont and check it, open a synth. The synthesis loop itself is :mod:`melodia.output.audio`.

FluidSynth (the C library ``libfluidsynth``) and its Python binding ``pyfluidsynth`` are optional:
:func:`import_fluidsynth` imports them when rendering runs, and their absence raises
:class:`~melodia.errors.RenderError` saying how to install them.

SoundFont precedence (see :func:`find_soundfont`): the ``soundfont`` argument, then the
``MELODIA_SOUNDFONT`` environment variable, then ``TimGM6mb.sf2`` shipped inside pretty_midi's
wheel, then common system SoundFonts such as ``/usr/share/sounds/sf2/FluidR3_GM.sf2``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import logging
import os
from pathlib import Path

from melodia.errors import RenderError

# FluidSynth's messages are logged where they always were, under melodia.output.audio
log = logging.getLogger("melodia.output.audio")

SOUNDFONT_ENV = "MELODIA_SOUNDFONT"
#: Tried in order when neither an explicit path, the environment nor pretty_midi gives one.
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)


# ----------------------------------------------------------------------------- FluidSynth


def install_hint(missing: str = "libfluidsynth") -> str:
    """Explain how to install what rendering needs.

    Parameters
    ----------
    missing : {"libfluidsynth", "pyfluidsynth"}
        The C library FluidSynth, or its Python binding.
    """
    system = ("FluidSynth's C library (libfluidsynth) was not found. Install it with one of:\n"
              "  Debian/Ubuntu: sudo apt-get install libfluidsynth3\n"
              "  macOS:         brew install fluid-synth\n"
              "  conda:         conda install -c conda-forge fluidsynth")
    python = ("the Python binding pyfluidsynth is not installed (`import fluidsynth` failed). "
              "Install it with: pip install 'melodia[audio]'")
    if missing == "pyfluidsynth":
        return f"cannot render audio: {python}; it also needs libfluidsynth.\n{system}"
    return (f"cannot render audio: {system}\n"
            "and, if missing, the binding: pip install 'melodia[audio]'")


def _log_from_fluidsynth(level: int, message: bytes | None, _data: object) -> None:
    text = (message or b"").decode(errors="replace")
    # melodia checks what matters itself (SoundFont loads, missing presets) and says so once
    log.log(logging.ERROR if level == 0 else logging.DEBUG, "fluidsynth: %s", text)


_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(
    _log_from_fluidsynth)


def import_fluidsynth():
    """Import pyfluidsynth, route FluidSynth's messages to ``logging`` and return the module.

    Raises
    ------
    RenderError
        pyfluidsynth or libfluidsynth is missing; the message says how to install it.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints where it found the library
            import fluidsynth  # when $CI is set
    except ModuleNotFoundError as err:
        if err.name != "fluidsynth":
            raise
        raise RenderError(install_hint("pyfluidsynth")) from None
    except (ImportError, OSError):  # pyfluidsynth raises ImportError when the C library is absent
        raise RenderError(install_hint("libfluidsynth")) from None
    if not hasattr(fluidsynth, "Synth"):
        raise RenderError("the module `fluidsynth` found is not pyfluidsynth; run "
                          "pip uninstall fluidsynth && pip install 'melodia[audio]'")
    _quiet_fluidsynth(fluidsynth)
    return fluidsynth


def _quiet_fluidsynth(fluidsynth) -> None:
    """Send FluidSynth's log (levels panic..debug) to our logger instead of stderr."""
    set_log = fluidsynth.cfunc("fluid_set_log_function", ctypes.c_void_p,
                               ("level", ctypes.c_int, 1), ("fun", ctypes.c_void_p, 1),
                               ("data", ctypes.c_void_p, 1))
    if set_log is not None:
        for level in range(5):
            set_log(level, ctypes.cast(_LOG_CALLBACK, ctypes.c_void_p), None)


def _write_float(fluidsynth):
    return fluidsynth.cfunc("fluid_synth_write_float", ctypes.c_int,
                            ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
                            ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1),
                            ("lincr", ctypes.c_int, 1), ("rout", ctypes.c_void_p, 1),
                            ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))


# ------------------------------------------------------------------------------ SoundFonts


def packaged_soundfont() -> Path | None:
    """Path of ``TimGM6mb.sf2`` inside the installed pretty_midi package, if it is there."""
    spec = importlib.util.find_spec("pretty_midi")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "TimGM6mb.sf2"
        if path.is_file():
            return path
    return None


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """Choose the SoundFont: explicit > ``$MELODIA_SOUNDFONT`` > pretty_midi's > system ones.

    Raises
    ------
    RenderError
        The explicit or environment path does not exist, or no SoundFont is found at all.
    """
    env = os.environ.get(SOUNDFONT_ENV)
    for origin, value in (("the soundfont argument", soundfont), (SOUNDFONT_ENV, env)):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise RenderError(f"SoundFont {path} (from {origin}) does not exist")
            return path
    found = packaged_soundfont() or next(
        (Path(p) for p in SYSTEM_SOUNDFONTS if Path(p).is_file()), None)
    if found is None:
        raise RenderError(f"no SoundFont found: pass --soundfont FILE.sf2 or set {SOUNDFONT_ENV} "
                          f"(pretty_midi's TimGM6mb.sf2 and {', '.join(SYSTEM_SOUNDFONTS)} are "
                          "missing); e.g. sudo apt-get install fluid-soundfont-gm")
    return found


def _check_soundfont_header(soundfont: Path) -> None:
    """Refuse files that are not RIFF SoundFont (sfbk) or DLS before FluidSynth grumbles."""
    with open(soundfont, "rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] not in (b"sfbk", b"DLS "):
        raise RenderError(f"{soundfont} is not a valid SoundFont (.sf2/.sf3 files start with a "
                          "RIFF 'sfbk' header)")
    riff_bytes, file_bytes = int.from_bytes(head[4:8], "little") + 8, soundfont.stat().st_size
    if riff_bytes > file_bytes:
        raise RenderError(f"{soundfont} is not a valid SoundFont: truncated ({file_bytes} bytes, "
                          f"its header announces {riff_bytes})")


def _open_synth(fluidsynth, soundfont: Path, sample_rate: int, gain: float, n_channels: int):
    _check_soundfont_header(soundfont)
    settings = {"synth.midi-channels": 16 * (n_channels // 16 + 1), "synth.verbose": 0}
    synth = fluidsynth.Synth(gain=gain, samplerate=sample_rate, **settings)
    sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise RenderError(f"FluidSynth cannot load {soundfont}: not a valid SoundFont")
    return synth, sfid


__all__ = ["SOUNDFONT_ENV", "SYSTEM_SOUNDFONTS", "find_soundfont", "import_fluidsynth",
           "install_hint", "packaged_soundfont"]
