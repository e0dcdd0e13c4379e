"""What a live command does before its model plays: stop cleanly on signals from the first moment,
and open its MIDI port while torch is still importing.

``melodia stream``'s first note waits on importing torch (about 1.3 s of one core), on the MIDI
port (a JACK client: server round trips) and on the model. The port needs no torch, so the
command line opens it in the main thread while :class:`Preload` imports the generation modules
in another (``tests/benchmarks/bench_startup.py --profile`` shows the stages)::

    stop = threading.Event()
    with stop_on_signals(stop):
        with Preload("melodia.live.stream"):
            port = open_output(virtual="melodia")    # melodia.live.ports: no torch
        from melodia.live.stream import stream       # imported by now
        stream(config, stop=stop, output=port, own_output=True)

This module imports no torch, numpy or MIDI library.
"""

from __future__ import annotations

import importlib
import logging
import signal
import socket
import threading
import time
from contextlib import contextmanager
from typing import Self

log = logging.getLogger(__name__)

# the music starts this long after a player is started: the producer's head start
START_DELAY_S = 0.05
# rtmidi's JACK output queues messages for the server's next cycles: closing the port at once
# could drop the final note-offs
DRAIN_S = 0.1


class Preload:
    """Import ``modules`` in a background thread while the ``with`` body runs; leaving the block
    waits for them, and an error of the import is raised there (unless the body raised).

    Only Python's own work is parallel here: while the body waits on something outside the
    interpreter (a JACK server opening a port, the disk), the imports go on. The body must not
    import the same modules itself (two threads importing one package can deadlock).
    """

    def __init__(self, *modules: str) -> None:
        self.modules = modules
        self.error: BaseException | None = None
        self.seconds: float | None = None  # how long the imports took, once done
        self._thread = threading.Thread(target=self._run, name="melodia-preload", daemon=True)

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            for name in self.modules:
                importlib.import_module(name)
        except BaseException as err:  # handed to the main thread by wait()
            self.error = err
        self.seconds = time.perf_counter() - start

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the imports are done; raise their error, if any."""
        self._thread.join()
        log.debug("imported %s in %.2f s", ", ".join(self.modules), self.seconds or 0.0)
        if self.error is not None:
            raise self.error

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.wait()
        else:  # the body failed: still wait, so no import runs on into interpreter shutdown
            self._thread.join()


@contextmanager
def stop_on_signals(stop: threading.Event):
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP set ``stop``: the player ends its notes and returns,
    even while the model is still loading. A second Ctrl-C raises KeyboardInterrupt, which the
    player also survives cleanly. Outside the main thread it does nothing.

    The handler itself takes no lock: a handler runs in the main thread between two bytecodes,
    possibly while that thread holds ``stop``'s own lock (inside ``stop.wait``), and
    ``stop.set()`` there waits for ever. So the signal wakes a watcher thread (through
    :func:`signal.set_wakeup_fd`), and the watcher sets ``stop``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wake, woken = socket.socketpair()
    wake.setblocking(False)
    interrupts: list[int] = []  # appended by the handler: no lock

    def handler(signum, _frame) -> None:
        if signum == signal.SIGINT:
            interrupts.append(signum)
            if len(interrupts) > 1:
                raise KeyboardInterrupt

    def watch() -> None:
        while woken.recv(64) and not done:
            stop.set()

    done = False
    watcher = threading.Thread(target=watch, name="melodia-signals", daemon=True)
    watcher.start()
    previous = {}
    old_fd = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(old_fd)
        done = True
        wake.send(b"\0")
        watcher.join(1.0)
        wake.close()
        woken.close()


__all__ = ["DRAIN_S", "Preload", "START_DELAY_S", "stop_on_signals"]
