"""The stuck-note stress, small enough for the suite: ``stream`` stopped by real SIGINT and SIGTERM
at random moments while a busy process starves the CPU, one listener vanishing mid-stream; every
note-on a separate JACK client receives meets its own note-off (tests/live/stress.py runs the
same with more runs on demand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.live.stress import unended

STRESS = Path(__file__).with_name("stress.py")


def test_unended_counts_each_note_on_against_its_own_note_off():
    on, off = [0x90, 60, 80], [0x80, 60, 0]
    assert unended([on, off]) == []
    assert unended([on, on, off]) == [(0, 60)]  # struck twice, ended once
    assert unended([on, [0x90, 60, 0]]) == []  # a note-on of velocity 0 ends it
    assert unended([on, [0xB0, 123, 0]]) == [(0, 60)]  # the panic does not count
    assert unended([[0x99, 36, 90], [0x89, 36, 0], [0x91, 36, 90]]) == [(1, 36)]  # per channel


def test_stopped_at_random_moments_on_a_starved_cpu_no_note_is_left_sounding(tmp_path: Path):
    out = tmp_path / "stress.json"
    done = subprocess.run([sys.executable, str(STRESS), "--runs", "6", "--busy", "1",
                           "--vanish-every", "3", "--seed", "7", "--json", str(out)],
                          capture_output=True, text=True, timeout=400)
    runs = json.loads(out.read_text()) if out.exists() else []
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(runs) == 6 and {r["signal"] for r in runs} == {"SIGINT", "SIGTERM"}
    assert sum(r["vanish"] for r in runs) == 2
    for r in runs:
        assert r["notes"] > 0 and r["received"] > 0, r  # music was played and heard
        assert r["stuck"] == [], r
