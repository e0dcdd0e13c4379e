"""Speed of batch-1 generation with the piece's short-term model on (issue 34's bar: >= 1,000
events/s on this 2-core CPU, and events 10,000-11,000 as fast as events 1,000-2,000, within 10%:
the memory's cost per event must not grow with the piece), and of a band's endless stream with
the parts called back (issue 33's bar: a 10-minute stream keeps its speed and grows <= 50 MB).

    python tests/benchmarks/bench_memory.py [--model piano] [--events 11000] [--memory 0 1]
        [--keep-playing 1 0]

For each ``--memory`` level (and, for a band model, each ``--keep-playing``), in one process and
one after the other: ``melodia.iter_events`` (what ``stream`` plays; top-p and grammar as a user
gets them) for ``--events`` events with one thread, timed per 1,000 events. Prints events/s for
events 1,000-2,000, the last 1,000 (10,000-11,000 by default) and all, the music's length, and
how much the process grew (resident memory) from event 1,000 to the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(model: str, memory: float, events: int, seed: int,
          keep_playing: bool = True) -> tuple[list[float], float, float]:
    """Seconds taken by each 1,000 events of one stream; the music's seconds; MB grown from
    event 1,000 to the end."""
    from melodia.generation.config import GenerateConfig
    from melodia.generation.generator import iter_events
    from melodia.model.registry import load_model

    encoding = load_model(model).encoding
    shift0 = encoding.vocab.offset("TIME_SHIFT")
    shifts = encoding.vocab.range("TIME_SHIFT")
    stream = iter_events(model, config=GenerateConfig(seed=seed, memory=memory, threads=1,
                                                      keep_playing=keep_playing))
    next(stream)  # set-up and priming are not what is measured
    laps, start, steps, at_1k = [], time.perf_counter(), 0, 0.0
    for i in range(1, events + 1):
        event = next(stream)
        if shift0 <= event < shift0 + shifts.size:
            steps += shifts.min + event - shift0
        if i % 1000 == 0:
            now = time.perf_counter()
            laps.append(now - start)
            start = now
            at_1k = _rss_mb() if i == 1000 else at_1k
    return laps, steps / encoding.config.steps_per_second, _rss_mb() - at_1k


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="piano")
    p.add_argument("--events", type=int, default=11000)
    p.add_argument("--memory", type=float, nargs="+", default=[0.0, 1.0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-playing", type=int, nargs="+", default=[1], choices=(0, 1),
                   help="band models: the parts called back (1, the default) or not (0)")
    args = p.parse_args()
    print(f"{'memory':>7} {'keep':>5} {'events 1k-2k':>13} {'last 1k':>13} {'all':>9} "
          f"(events/s) {'music':>8} {'grew':>8}")
    for memory in args.memory:
        for keep in args.keep_playing:
            laps, music_s, grew = timed(args.model, memory, args.events, args.seed, bool(keep))
            early = 1000 / laps[1] if len(laps) > 1 else float("nan")
            late = 1000 / laps[-1] if laps else float("nan")
            print(f"{memory:7.2f} {keep:5d} {early:13.0f} {late:13.0f} "
                  f"{1000 * len(laps) / sum(laps):9.0f}            {music_s:7.0f}s "
                  f"{grew:6.1f}MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
