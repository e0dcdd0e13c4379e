"""MIDI ports for live playback: mido ports on python-rtmidi, with the system API chosen explicitly.

python-rtmidi is optional (``pip install 'melodia[ports]'``) and imported only when a port is used.
Every failure is a :class:`PortError` whose message is one line saying what to do.

The APIs, by melodia name:

========== ============== ==================================================================
name       rtmidi API     notes
========== ============== ==================================================================
alsa       LINUX_ALSA     needs the ALSA sequencer (``/dev/snd/seq``; ``modprobe snd-seq``)
jack       UNIX_JACK      needs a running JACK server (``jackd -d dummy`` works without sound)
coremidi   MACOSX_CORE    macOS
windows_mm WINDOWS_MM     Windows; no virtual ports (use loopMIDI and ``--port``)
========== ============== ==================================================================

On JACK a virtual port opened as ``NAME`` shows up to other programs as
``RtMidiOut Client:NAME`` (inputs: ``RtMidiIn Client:NAME``). Opening a second virtual port
with the same name works: JACK renames the second client (``RtMidiOut Client-01:NAME``).
Ports opened here are kept in a module-level list until closed, so a port nobody holds on to is
not garbage collected (and silently removed from the system) while music is still playing.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from melodia.errors import MelodiaError

log = logging.getLogger(__name__)

APIS = {
    "alsa": "LINUX_ALSA",
    "jack": "UNIX_JACK",
    "coremidi": "MACOSX_CORE",
    "windows_mm": "WINDOWS_MM",
}
DEFAULT_VIRTUAL = "melodia"  # name of the virtual port when none is given
ALSA_SEQ = Path("/dev/snd/seq")
INSTALL_HINT = "python-rtmidi is not installed: pip install 'melodia[ports]'"

_open_ports: list = []  # every port opened here and not yet closed (see the module docstring)


class PortError(MelodiaError):
    """A MIDI port or backend API that cannot be used; the message says how to fix it."""


# ------------------------------------------------------------------------------ backend and API


def _rtmidi():
    try:
        import rtmidi
    except ImportError as err:
        raise PortError(INSTALL_HINT) from err
    return rtmidi


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (libjack prints to it from C when no server answers)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def jack_running() -> bool:
    """True when a JACK server answers (rtmidi never starts one)."""
    rtmidi = _rtmidi()
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        return False
    try:
        with _quiet_stderr():
            probe = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="melodia-probe")
    except rtmidi.RtMidiError:
        return False
    probe.delete()
    return True


def available_apis() -> list[str]:
    """The APIs python-rtmidi was compiled with, by melodia name (whether they work now or not)."""
    rtmidi = _rtmidi()
    compiled = rtmidi.get_compiled_api()
    return [name for name, rt_name in APIS.items() if getattr(rtmidi, f"API_{rt_name}") in compiled]


def default_api() -> str:
    """The API to use here: ALSA if its sequencer works, else JACK if a server answers (Linux)."""
    if sys.platform == "darwin":
        return "coremidi"
    if sys.platform == "win32":
        return "windows_mm"
    apis = available_apis()
    if "alsa" in apis and ALSA_SEQ.exists():
        return "alsa"
    if "jack" in apis and jack_running():
        return "jack"
    raise PortError(f"no MIDI API works here: the ALSA sequencer is missing ({ALSA_SEQ}: "
                    "sudo modprobe snd-seq) and no JACK server answers (start one: "
                    "jackd -d dummy &, or qjackctl)")


def _check_api(api: str | None) -> str:
    """Validate ``api`` (None: :func:`default_api`) and that it can be used now; return its name."""
    if api is None:
        return default_api()
    if api not in APIS:
        raise PortError(f"unknown MIDI API {api!r}: choose one of {', '.join(APIS)}")
    if api not in available_apis():
        raise PortError(f"MIDI API {api!r} is not compiled into python-rtmidi here "
                        f"(available: {', '.join(available_apis()) or 'none'})")
    if api == "alsa" and not ALSA_SEQ.exists():
        raise PortError(f"the ALSA sequencer is missing ({ALSA_SEQ}): sudo modprobe snd-seq, "
                        "or use --api jack")
    if api == "jack" and not jack_running():
        raise PortError("no JACK server is running: start one (jackd -d dummy &, or qjackctl), "
                        "or choose another --api")
    return api


def _backend(api: str):
    import mido

    backend = mido.Backend("mido.backends.rtmidi", api=APIS[api])
    try:
        backend.load()
    except ImportError as err:
        raise PortError(INSTALL_HINT) from err
    return backend


# -------------------------------------------------------------------------------------- ports


def list_ports(api: str | None = None) -> dict:
    """The MIDI ports of ``api`` (None: :func:`default_api`).

    Returns
    -------
    dict
        ``{"api": name, "inputs": [port names], "outputs": [port names]}``; inputs are ports
        melodia can read from, outputs ports it can play to.
    """
    api = _check_api(api)
    backend = _backend(api)
    return {"api": api, "inputs": backend.get_input_names(), "outputs": backend.get_output_names()}


def input_names(api: str | None = None) -> Callable[[], list[str]]:
    """A cheap way to list ``api``'s input ports again and again: one client, made once (a new
    client per look costs a JACK server round trip that stalls a live player)."""
    api = _check_api(api)
    rtmidi = _rtmidi()
    with _quiet_stderr():
        probe = rtmidi.MidiIn(rtapi=getattr(rtmidi, f"API_{APIS[api]}"), name="melodia-watch")
    return probe.get_ports


def _find(names: list[str], port: str, kind: str, api: str) -> str:
    """The port in ``names`` called ``port``, else the first whose name contains it."""
    if port in names:
        return port
    matches = [name for name in names if port.lower() in name.lower()]
    if not matches:
        listed = ", ".join(repr(name) for name in names) or "none"
        raise PortError(f"no MIDI {kind} matching {port!r} ({api}); {kind}s: {listed}")
    if len(matches) > 1:
        log.info("%d %ss match %r; using %r", len(matches), kind, port, matches[0])
    return matches[0]


def _open(kind: str, virtual: str | None, port: str | None, api: str | None, **kwargs):
    if virtual is not None and port is not None:
        raise PortError("give either a virtual port name or an existing --port, not both")
    if port is None:
        virtual = virtual or DEFAULT_VIRTUAL
    if virtual is not None and (sys.platform == "win32" or api == "windows_mm"):
        raise PortError("rtmidi cannot open virtual ports on Windows: install loopMIDI, create a "
                        "port there and pass --port NAME")
    api = _check_api(api)
    backend = _backend(api)
    opener = backend.open_output if kind == "output" else backend.open_input
    if port is not None:
        names = backend.get_output_names() if kind == "output" else backend.get_input_names()
        port = _find(names, port, kind, api)
    try:
        opened = opener(virtual if port is None else port, virtual=port is None, **kwargs)
    except (OSError, RuntimeError, _rtmidi().RtMidiError) as err:
        what = f"virtual {kind} {virtual!r}" if port is None else f"{kind} {port!r}"
        raise PortError(f"cannot open MIDI {what} ({api}): {err}") from err
    _keep(opened)
    log.info("opened MIDI %s %r (%s%s)", kind, opened.name, api, ", virtual" if port is None else "")
    return opened


def _keep(opened) -> None:
    """Hold a reference to ``opened`` until it is closed (dropping closed ones as we go)."""
    _open_ports[:] = [p for p in _open_ports if not p.closed]
    _open_ports.append(opened)


def open_output(virtual: str | None = None, port: str | None = None, api: str | None = None):
    """Open a MIDI output: a new virtual port, or an existing port other programs offer.

    Parameters
    ----------
    virtual : str, optional
        Name of the virtual port to create (default ``"melodia"`` when ``port`` is not given).
    port : str, optional
        Connect to the existing output called this, or else the first whose name contains it
        (case-insensitive).
    api : str, optional
        One of :data:`APIS`; default :func:`default_api`.

    Returns
    -------
    mido.ports.BaseOutput
        An open mido port (a context manager with ``send``, ``panic``, ``reset`` and ``close``).
    """
    return _open("output", virtual, port, api)


def open_input(virtual: str | None = None, port: str | None = None, api: str | None = None,
               callback: Callable | None = None):
    """Open a MIDI input, as :func:`open_output`; ``callback(msg)`` gets each message if given."""
    return _open("input", virtual, port, api, callback=callback)


def open_named_input(name: str, api: str | None = None, callback: Callable | None = None):
    """Open the input a user named on the command line: ``virtual:NAME`` opens a virtual input
    port called NAME, anything else connects to the existing input port it names."""
    virtual = name[len("virtual:"):] if name.startswith("virtual:") else None
    return open_input(virtual=virtual, port=None if virtual else name, api=api, callback=callback)


def close_all() -> None:
    """Close every port opened here (registered to run at exit)."""
    while _open_ports:
        opened = _open_ports.pop()
        if not opened.closed:
            opened.close()


atexit.register(close_all)
