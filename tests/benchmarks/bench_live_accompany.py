"""Live accompaniment through real JACK ports: entry, timing and stuck notes.

    python tests/benchmarks/bench_live_accompany.py [--runs 3]

Needs a JACK server (``jackd --no-realtime -d dummy``, as ``.ci/run`` starts one). Each run is
three processes, as in ``tests/live/test_accompany_live.py``: a player (``tests/live/player.py``)
plays the melody of a Bach chorale the band model never trained on into a JACK port, in time
with melodia's one-bar count-in; ``melodia stream --model band --accompany ... --lineup
drums,bass --tempo 120`` plays with it into another port; a receiver records what comes back.
Each run ends one way in turn: melodia's ``--seconds``, SIGINT, SIGTERM, the player quitting
(its port vanishing). Printed per run and over all: the band's first note against the player's
first note (goal: within one beat, 500 ms), melodia's send jitter p99 (goal <= 2 ms),
underruns (goal 0), notes left sounding at the receiver (goal 0), player's notes echoed (goal 0).

    python tests/benchmarks/bench_live_accompany.py --follow-clock [--runs 3]

instead follows the player's MIDI beat clock (100 BPM, tempo measured), as
``test_the_band_follows_midi_clock`` does, and prints how close the band's drum hits come to
the 16th and eighth-triplet grid of the sender's beats (phased by the count-in as received):
the share within 30 ms, the median and 90th percentile distance, and the measured tempo.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.live.test_accompany_live import TOP, _follow_clock, _play, clicks_and_drums  # noqa: E402
from tests.live.test_stream import _unended  # noqa: E402


def _figure(err: str, before: str, after: str) -> float | None:
    if before not in err:
        return None
    return float(err.split(before)[1].split(after)[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="rounds of the four endings")
    p.add_argument("--follow-clock", action="store_true",
                   help="follow the player's beat clock instead; print the drums' grid figures")
    args = p.parse_args()
    if args.follow_clock:
        return _clock_runs(args.runs)
    rows = []
    for r in range(args.runs):
        for how in ("time", "SIGINT", "SIGTERM", "vanish"):
            with tempfile.TemporaryDirectory() as tmp:
                code, err, got, player = _play(Path(tmp), how)
            entry = _figure(err, "the band came in ", " ms")
            p99 = _figure(err, "send jitter p99 ", " ms")
            under = _figure(err, " ms, ", " underruns")
            stuck = sum(_unended(got).values())
            echoes = sum(1 for m in got if m.type == "note_on" and m.velocity and m.channel != 9
                         and m.note >= TOP)
            rows.append((how, code, entry, p99, under, stuck, echoes, len(player["notes"])))
            print(f"run {r + 1} {how:8s} exit {code}  entry {entry} ms  jitter p99 {p99} ms  "
                  f"underruns {under}  stuck {stuck}  echoes {echoes}  "
                  f"player notes {len(player['notes'])}", flush=True)
    entries = [abs(r[2]) for r in rows if r[2] is not None]
    p99s = [r[3] for r in rows if r[3] is not None]
    print(f"\n{len(rows)} runs: |entry| max {max(entries):.0f} ms (goal <= 500), jitter p99 max "
          f"{max(p99s):.2f} ms (goal <= 2), underruns {sum(r[4] or 0 for r in rows):.0f}, "
          f"stuck notes {sum(r[5] for r in rows)}, echoes {sum(r[6] for r in rows)}, "
          f"bad exits {sum(r[1] not in (0, 130) for r in rows)}")
    return 0


def _clock_runs(runs: int) -> int:
    grids = (0.6 / 4, 0.6 / 3)  # 16ths and eighth-note triplets at 100 BPM
    offs: list[float] = []
    for r in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            code, err, _, raw, downbeat = _follow_clock(Path(tmp), None)
        _, drums = clicks_and_drums(raw, downbeat)
        off = [min(abs(t / g - round(t / g)) * g for g in grids) for t in drums]
        offs += off
        print(f"run {r + 1} exit {code}  measured {_figure(err, 'notes at ', ' BPM')} BPM  "
              f"drums {len(off)}  within 30 ms {np.mean(np.array(off) <= 0.03):.2f}  "
              f"median {1e3 * np.median(off):.1f} ms  p90 {1e3 * np.percentile(off, 90):.1f} ms  "
              f"send jitter p99 {_figure(err, 'send jitter p99 ', ' ms')} ms", flush=True)
    print(f"\n{runs} runs, {len(offs)} drum hits: within 30 ms of the grid "
          f"{np.mean(np.array(offs) <= 0.03):.2f}, median {1e3 * np.median(offs):.1f} ms, "
          f"p90 {1e3 * np.percentile(offs, 90):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
