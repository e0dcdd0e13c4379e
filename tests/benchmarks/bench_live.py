"""Live timing: send jitter and underruns while the model generates on the same cores, measured
at melodia and at a separate JACK client; and call-and-response latency.

    python tests/benchmarks/bench_live.py [--model band] [--seconds 60] [--clock-out]
        [--rounds 5] [--json OUT.json]

Needs a JACK server. Measure against a realtime one, as a musician runs it (a non-realtime
server on two busy cores wakes late whenever the model computes, which is the server's delay,
not melodia's; the `control_no_model` run shows what the path adds without a model):

    JACK_NO_AUDIO_RESERVATION=1 jackd -n rtbench -R -P 70 -d dummy -r 48000 -p 256 &
    JACK_DEFAULT_SERVER=rtbench python tests/benchmarks/bench_live.py --clock-out --json OUT.json

The stream plays into a virtual JACK port; `tests/live/receiver.py` (another process) records
each message with JACK's timestamps. A line fitted through (scheduled time, JACK arrival time)
removes the two clocks' offset and drift; the residuals are the jitter the listening client
sees (JACK hands MIDI on once per period: 256 frames = 5.3 ms, so up to ~2.7 ms either way).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _percentiles(values_s: list[float]) -> dict[str, float]:
    a = np.asarray(values_s) * 1000.0
    if not len(a):
        return {"n": 0}
    return {"n": int(len(a)), "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def stream_jitter(model: str, seconds: float, clock_out: bool, pregenerate: bool = False) -> dict:
    from melodia.generation.config import GenerateConfig
    from melodia.live.ports import open_output
    from melodia.live.scheduler import Player
    from melodia.live.stream import StreamConfig, timed_messages

    name = f"melodia-bench-{int(time.time())}"
    port = open_output(virtual=name, api="jack")
    out = Path(f"/tmp/{name}.json")
    receiver = subprocess.Popen([sys.executable, str(ROOT / "tests/live/receiver.py"), "--port",
                                 name, "--out", str(out), "--seconds", str(seconds + 5)],
                                stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    config = StreamConfig(model=model, seconds=seconds, clock_out=clock_out,
                          generate=GenerateConfig(seed=1, tempo=120.0))
    scheduled: list[float] = []
    player = None

    def send(message) -> None:
        scheduled.append(time.perf_counter())
        port.send(message)

    messages = timed_messages(config)
    if pregenerate:  # control: the same kind of stream with no model running while it plays
        messages = iter(list(_until(messages, seconds + 1.0)))
    player = Player(send, messages, lookahead_s=config.lookahead_s)
    stats = player.run(until_s=seconds)
    port.close()
    receiver.terminate()
    receiver.wait(10)
    got = json.loads(out.read_text())
    # When the receiver's callback runs depends on the CPU (the model is generating on the same
    # two cores), so arrival times come from JACK's own timestamps (rtmidi's deltas). JACK's
    # dummy driver keeps its own clock, which drifts from the system's: a line fitted through
    # (due time, arrival time) removes offset and drift, and what is left is the jitter a
    # listening client sees (JACK hands MIDI over once per period: 256 frames, 5.3 ms).
    jack_time = np.cumsum([m["delta_s"] for m in got["messages"]])
    due = np.asarray(scheduled) - np.concatenate(
        [stats.jitter_s, np.zeros(max(0, len(scheduled) - len(stats.jitter_s)))])
    k = min(len(jack_time), len(due))
    slope, offset = np.polyfit(due[:k], jack_time[:k], 1)
    residual = jack_time[:k] - (offset + slope * due[:k])
    receiver = {**_percentiles(np.abs(residual).tolist()),
                "drift_ppm": float((slope - 1) * 1e6)}
    callback = np.array([m["time_s"] for m in got["messages"]])[:k]
    callback_late = (callback - np.asarray(scheduled)[:k]).tolist()
    notes = sum(1 for m in got["messages"] if m["bytes"][0] & 0xF0 == 0x90 and m["bytes"][2])
    return {"seconds": seconds, "messages_sent": stats.sent,
            "messages_per_s": stats.sent / seconds, "notes_per_s": notes / seconds,
            "underruns": stats.underruns, "send_jitter": _percentiles(stats.jitter_s),
            "receiver_jitter_abs": receiver,
            "receiver_callback_after_send": _percentiles(callback_late),
            "received": len(jack_time)}


def _until(messages, seconds: float):
    for t, message in messages:
        if t > seconds:
            return
        yield t, message


def response_latency(model: str, rounds: int) -> dict:
    from melodia.generation.config import GenerateConfig
    from melodia.live.ports import open_output
    from melodia.live.stream import StreamConfig, stream

    tag = int(time.time())
    player = open_output(virtual=f"bench-player-{tag}", api="jack")
    config = StreamConfig(model=model, virtual=f"melodia-cr-{tag}", api="jack",
                          listen=f"bench-player-{tag}", rounds=rounds, respond_seconds=2.0,
                          generate=GenerateConfig(seed=2, tempo=240.0))
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(stream(config)), daemon=True)
    worker.start()
    time.sleep(1.5)  # melodia loads the model and connects to the player's port
    import mido

    for r in range(rounds):
        for i, pitch in enumerate((60, 64, 67, 72)):
            player.send(mido.Message("note_on", note=pitch, velocity=80))
            time.sleep(0.12)
            player.send(mido.Message("note_off", note=pitch))
        time.sleep(1.0 + 2.0 + 0.8)  # a bar of silence at 240 bpm, the answer, a margin
    worker.join(30)
    player.close()
    return {"rounds": len(result),
            "latency_ms": [round(x.latency_s * 1000, 1) for x in result if x.latency_s],
            "reaction_ms": [round(x.compute_s * 1000, 1) for x in result if x.compute_s],
            "silence_that_ends_a_phrase_ms": 1000.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="band")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clock-out", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    figures = {"stream": stream_jitter(args.model, args.seconds, args.clock_out),
               "control_no_model": stream_jitter(args.model, args.seconds, args.clock_out,
                                                 pregenerate=True),
               "call_and_response": response_latency("piano", args.rounds)}
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
