"""Live MIDI tests run against a real JACK server (dummy driver: no sound card needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

JACKD = ["jackd", "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"]


def _jack_answers() -> bool:
    # jack_wait -c exits 0 either way; it prints "running" or "not running".
    checked = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True)
    return checked.stdout.strip() == "running"


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    """A running JACK server: the one that answers already, or a dummy one started (and stopped) here."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.fail("jackd is not installed; the live MIDI tests need it: sudo apt-get install jackd2")
    if _jack_answers():
        yield None
        return
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    log_path = tmp_path_factory.mktemp("jack") / "jackd.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(JACKD, env=env, stdout=log, stderr=subprocess.STDOUT)
    waited = subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True)
    if waited.returncode != 0 or server.poll() is not None:
        server.kill()
        server.wait()
        last = log_path.read_text(errors="replace").strip().splitlines()[-1:]
        pytest.fail(f"could not start {' '.join(JACKD)}: {' '.join(last) or 'no output'}")
    yield server
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def pytest_collection_modifyitems(items):
    """A test that plays through JACK in real time gets one rerun (pytest-rerunfailures; the
    summary counts it as ``rerun``): it shares this 2-core machine's CPU with its own player,
    receiver and JACK's server, and one scheduling stall of the test's tools is not melodia's
    miss. A test that fails twice fails. Timing figures are benchmarks
    (tests/benchmarks/bench_live*.py), never judged here."""
    for item in items:
        if "jack_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
