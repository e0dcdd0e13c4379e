"""A musician for the live tests: plays a MIDI file's melody into a JACK MIDI port, in time
with melodia's count-in.

    python tests/live/player.py FILE.mid --virtual NAME --listen PORT --out FILE.json
        [--tempo 120] [--count-in 1] [--seconds S] [--transpose N] [--hold] [--clock]

Opens a virtual JACK output NAME (the port melodia's ``--accompany`` connects to) and prints
``ready``; connects an input to the port whose name contains PORT (melodia's output) and waits
(up to a minute) for the count-in's first, accented click, then prints ``counting``; plays the
file's highest line (one note at a time, ``--transpose`` semitones up) from the downbeat
``--count-in`` bars later, on channel 1, for ``--seconds``. Then it quits, closing its port
(the player's port vanishing), or with ``--hold`` keeps the port open until SIGTERM.
``--clock``: MIDI beat clock at ``--tempo`` on the same port, from the start. No port or no
click in a minute: one line on stderr, exit 1. Writes ``{"first_note_at": perf_counter,
"notes": [[pitch, on_at, off_at], ...], "downbeat_at": perf_counter}``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import rtmidi

from melodia.midi import read_midi

try:
    from tests.live.receiver import connect
except ModuleNotFoundError:  # run as a script: tests/live is sys.path[0]
    from receiver import connect

CLICK = 37


def melody(path: str, seconds: float, transpose: int) -> list[tuple[float, float, int]]:
    """The highest note sounding at each onset, cut where the next one starts."""
    score = read_midi(path)
    notes = sorted((float(n["start_s"]), float(n["end_s"]), int(n["pitch"]))
                   for t in score.tracks if not t.is_drum for n in t.notes)
    top: dict[float, tuple[float, int]] = {}
    for start, end, pitch in notes:
        if start < seconds and (start not in top or pitch > top[start][1]):
            top[start] = (end, pitch)
    starts = sorted(top)
    out = []
    for i, start in enumerate(starts):
        end = min(top[start][0], starts[i + 1] if i + 1 < len(starts) else top[start][0])
        out.append((start, max(end - 0.02, start + 0.03), top[start][1] + transpose))
    return out


def _sleep_until(t: float, done: threading.Event) -> bool:
    """Sleep (not spin: the band being tested shares the CPU) until ``perf_counter`` reaches
    ``t``; False if ``done`` was set first."""
    while (left := t - time.perf_counter()) > 0:
        if done.wait(left):
            return False
    return not done.is_set()


def _clock(send, qpm: float, done: threading.Event) -> None:
    """MIDI beat clock: start, then a tick every 1/24 beat, on time (no drift), until done."""
    tick_s, start = 60.0 / (qpm * 24), time.perf_counter()
    send([0xFA])
    k = 0
    while _sleep_until(start + k * tick_s, done):
        send([0xF8])
        k += 1


def _gave_up(why: str) -> int:
    print(f"player: {why}", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--virtual", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tempo", type=float, default=120.0)
    p.add_argument("--count-in", type=int, default=1)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--transpose", type=int, default=0)
    p.add_argument("--hold", action="store_true")
    p.add_argument("--clock", action="store_true",
                   help="also send MIDI beat clock at --tempo (start, then 24 ticks a beat)")
    args = p.parse_args(argv)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="melodia-test-player")
    out.open_virtual_port(args.virtual)
    lock = threading.Lock()  # the clock thread and the notes share the port

    def send(message: list[int]) -> None:
        with lock:
            out.send_message(message)

    if args.clock:
        threading.Thread(target=_clock, args=(send, args.tempo, done), daemon=True).start()
    print("ready", flush=True)
    # read from Python, not in JACK's process thread: a callback there waits for Python's lock
    # and a listener late for its JACK cycle loses that cycle's MIDI (see receiver.py)
    listen = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="melodia-test-ears")
    if connect(listen, args.listen, 60.0, "ears") is None:
        return _gave_up(f"no port contains {args.listen!r} in 60 s: {listen.get_ports()}")
    deadline, clicked, heard = time.perf_counter() + 60, None, []
    while clicked is None:
        got = listen.get_message()
        if got is None:
            if time.perf_counter() > deadline or done.wait(0.001):
                return _gave_up(f"no accented click in 60 s; heard first: {heard[:8]}")
        elif len(got[0]) == 3 and got[0][0] == 0x99 and got[0][1] == CLICK and got[0][2] >= 100:
            clicked = time.perf_counter()
        else:
            heard.append(got[0])
    print("counting", flush=True)  # for a test that times a stop from the music's start
    downbeat = clicked + args.count_in * 240.0 / args.tempo
    events = sorted([(s, 1, p) for s, e, p in melody(args.file, args.seconds, args.transpose)]
                    + [(e, 0, p) for s, e, p in melody(args.file, args.seconds, args.transpose)])
    played: dict[int, list] = {}
    notes = []
    for t, on, pitch in events:
        if not _sleep_until(downbeat + t, done):
            break
        now = time.perf_counter()
        send([0x90 if on else 0x80, pitch, 90 if on else 0])
        if on:
            played[pitch] = [pitch, now, None]
            notes.append(played[pitch])
        elif pitch in played:
            played.pop(pitch)[2] = now
    for pitch in list(played):  # stopped mid-note: end it
        send([0x80, pitch, 0])
    if args.hold:
        done.wait(120)
    with open(args.out, "w") as f:
        json.dump({"first_note_at": notes[0][1] if notes else None, "notes": notes,
                   "downbeat_at": downbeat}, f)
    listen.close_port()
    out.close_port()
    return 0


if __name__ == "__main__":
    sys.exit(main())
