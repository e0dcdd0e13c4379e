"""How fast melodia starts: ``generate --seconds 1`` and ``stream``'s first note, against the bare
import of what they need, with where the time goes.

    python tests/benchmarks/bench_startup.py [--runs 5] [--json OUT.json]

Each figure is the median wall time of ``--runs`` fresh processes, all in one run so the ratios
compare like with like on this machine's load:

- ``bare import``: ``python -c "import torch, pretty_midi, mido"``;
- ``generate``: ``melodia generate --seconds 1 -o X.mid --seed 1`` (goal <= 1.3x the bare import);
- ``stream first note``: from launching ``melodia stream --api jack --port NAME`` to the first
  note-on that NAME, a separate JACK client's input port (tests/live/receiver.py, standing in for
  a synth), receives (goal <= 1.5 s), with the command's send jitter p99, three ways: the first
  stream with these settings (an empty cache: the model in its own process must import torch
  and load first), ``--seed 1`` again (its first seconds kept, melodia.live.headstart), and
  streams without a seed (each starts from the spare the one before kept). Needs a JACK server
  (``jackd -d dummy``).

``--profile`` adds one run of ``generate`` split into imports, model loading, set-up and sampling,
and one of ``stream`` with the time after launch at which each stage was done (the command line,
the port, the player's start, the first note), from timers around the library's calls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MELODIA = [sys.executable, "-m", "melodia"]


def wall(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def first_note(runs: int, warm: bool, seed: str | None = "1") -> tuple[list[float], list[float]]:
    """Seconds from launching ``melodia stream`` to the first note-on at another JACK client,
    and each run's send jitter p99 (ms, as the command reports it). ``warm``: all runs share
    one cache of kept stream starts, filled by a run before them (melodia.live.headstart);
    else each run has an empty one (the first stream ever with these settings)."""
    times, jitter = [], []
    with tempfile.TemporaryDirectory() as shared:
        env = dict(os.environ, XDG_CACHE_HOME=shared)
        for i in range(-1 if warm else 0, runs):
            name = f"melodia-start-{os.getpid()}-{int(warm)}-{i}"
            with tempfile.TemporaryDirectory() as tmp:
                if not warm:
                    env["XDG_CACHE_HOME"] = tmp
                out = Path(tmp) / "got.json"
                receiver = subprocess.Popen(  # a synth's input port, as a musician plays into
                    [sys.executable, str(ROOT / "tests/live/receiver.py"), "--virtual", name,
                     "--out", str(out), "--seconds", "20", "--count", "1"],
                    stdout=subprocess.PIPE, text=True)
                assert receiver.stdout.readline().strip() == "ready"
                start = time.perf_counter()
                stream = subprocess.Popen(
                    [*MELODIA, "stream", "--api", "jack", "--port", name, "--seconds", "3",
                     *(["--seed", seed] if seed else [])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                receiver.wait(40)
                said = stream.communicate(timeout=60)[1]
                time.sleep(2.0)  # the model's process keeps the next start as it ends
                if i < 0:
                    continue
                got = json.loads(out.read_text())["messages"]
                notes = [m["time_s"] for m in got
                         if m["bytes"][0] & 0xF0 == 0x90 and m["bytes"][2]]
                times.append(notes[0] - start if notes else float("nan"))
                found = re.search(r"jitter p99 ([0-9.]+) ms", said)
                jitter.append(float(found.group(1)) if found else float("nan"))
    return times, jitter


def profile() -> dict[str, float]:
    """One in-process ``generate --seconds 1``, split by stage."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import melodia.cli\n"
        "from melodia.generation import generator as g\n"
        "from melodia.model import registry as r\n"
        "t1 = time.perf_counter(); spent = {}\n"
        "def timed(name, fn):\n"
        "    def run(*a, **k):\n"
        "        s = time.perf_counter(); out = fn(*a, **k)\n"
        "        spent[name] = spent.get(name, 0) + time.perf_counter() - s; return out\n"
        "    return run\n"
        "import melodia.generation.session as s\n"
        "s.load_stepper = timed('load model', s.load_stepper)\n"
        "g.open_session = timed('session', g.open_session)\n"
        "g.sample_rows = timed('sampling', g.sample_rows)\n"
        "import melodia.midi as m; from melodia.cli import make\n"
        "import tempfile, os; out = os.path.join(tempfile.mkdtemp(), 'p.mid')\n"
        "melodia.cli.main(['generate', '--seconds', '1', '-o', out, '--seed', '1'])\n"
        "t2 = time.perf_counter()\n"
        "spent['set-up (plan, controls, prime)'] = spent.pop('session') - spent['load model']\n"
        "import json, sys; print(json.dumps({'imports': t1 - t0, **spent,"
        " 'whole command': t2 - t1}))\n")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


STREAM_STAGES = """
import os, sys, time
T0 = float(os.environ["MELODIA_T0"])
marks = {}
def mark(what):
    marks.setdefault(what, time.time() - T0)
mark("python started")
import melodia.cli
mark("command line imported")
import melodia.live.ports as ports
import melodia.live.scheduler as scheduler
def timed(name, fn):
    def run(*a, **k):
        out = fn(*a, **k); mark(name); return out
    return run
ports.open_output = timed("port open", ports.open_output)
run = scheduler.Player.run
def playing(self, *a, **k):
    mark("player started (first message made or kept)")
    return run(self, *a, **k)
scheduler.Player.run = playing
send = scheduler.Player._send
def first_note(self, m):
    if m.type == "note_on":
        mark("first note sent")
    return send(self, m)
scheduler.Player._send = first_note
melodia.cli.main(sys.argv[1:])
import json; print(json.dumps(dict(sorted(marks.items(), key=lambda kv: kv[1]))))
"""


def stream_stages(port: str) -> dict[str, float]:
    """When each stage of ``melodia stream --port PORT`` is done, seconds after launch."""
    env = {**os.environ, "MELODIA_T0": repr(time.time())}
    done = subprocess.run([sys.executable, "-c", STREAM_STAGES, "stream", "--api", "jack",
                           "--port", port, "--seconds", "1", "--seed", "1"], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-stream", action="store_true", help="skip the JACK first-note figure")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = wall([sys.executable, "-c", "import torch, pretty_midi, mido"], args.runs)
        gen = wall([*MELODIA, "generate", "--seconds", "1", "-o", f"{tmp}/x.mid", "--seed", "1"],
                   args.runs)
    figures["bare_import_s"], figures["generate_s"] = bare, gen
    ratio = statistics.median(gen) / statistics.median(bare)
    print(f"bare import of torch, pretty_midi, mido: {statistics.median(bare):.2f} s (median of "
          f"{args.runs}; {min(bare):.2f}-{max(bare):.2f})")
    print(f"melodia generate --seconds 1:            {statistics.median(gen):.2f} s "
          f"({min(gen):.2f}-{max(gen):.2f}) = {ratio:.2f}x the bare import (goal <= 1.3x)")
    figures["generate_ratio"] = ratio
    if not args.no_stream:
        for warm, what in ((False, "first stream with these settings"),
                           (True, "--seed 1, its start kept"), (True, "no --seed, a spare kept")):
            notes, jitter = first_note(args.runs, warm, "1" if "seed 1" in what or not warm
                                       else None)
            figures[f"stream_first_note_s ({what})"] = notes
            figures[f"stream_jitter_p99_ms ({what})"] = jitter
            print(f"melodia stream, launch to first note, {what}: {statistics.median(notes):.2f} s "
                  f"({min(notes):.2f}-{max(notes):.2f}; goal <= 1.5 s); send jitter p99 median "
                  f"{statistics.median(jitter):.2f} ms (max {max(jitter):.2f})")
    if args.profile:
        figures["profile_s"] = profile()
        print("generate --seconds 1, in one process:")
        for stage, seconds in figures["profile_s"].items():
            print(f"  {stage:32s} {seconds:6.2f} s")
        if not args.no_stream:
            name = f"melodia-stages-{os.getpid()}"
            receiver = subprocess.Popen(
                [sys.executable, str(ROOT / "tests/live/receiver.py"), "--virtual", name, "--out",
                 os.devnull, "--seconds", "15"], stdout=subprocess.PIPE, text=True)
            assert receiver.stdout.readline().strip() == "ready"
            figures["stream_stages_s"] = stream_stages(name)
            receiver.terminate()
            receiver.wait(10)
            print("stream, seconds after launch when each stage is done:")
            for stage, seconds in figures["stream_stages_s"].items():
                print(f"  {stage:32s} {seconds:6.2f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
