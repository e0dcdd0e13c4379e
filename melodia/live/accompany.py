"""A band that follows a player, live: ``melodia stream --accompany IN_PORT --lineup drums,bass``.

A musician plays into ``IN_PORT``; melodia counts in one bar (clicks on the drum channel), then
its band model plays the line-up with them, in real time, at the tempo:

- the player's notes are **given events** of the band's stream (:mod:`melodia.generation.given`):
  each one is forced into the stream as it arrives (its instrument, velocity and pitch), so the
  model hears the player through its input and its note state and plays only its own parts;
  generation runs a lookahead ahead of playback, so the band hears a note at most that late;
- the player's notes are **never echoed**: forced note events are not decoded into messages;
- the band comes in on the downbeat after the count-in (no opening rest), its drums on the grid
  of 16ths and triplets of the tempo;
- it stops, releasing every note, on Ctrl-C / SIGTERM, after ``rest_bars`` bars in which the
  player played nothing, and when the player's port vanishes (polled every half second);
- at ``--tempo``, or **following MIDI clock** on the same port (``follow_clock``): the band's
  stream runs on the sender's beats (:mod:`melodia.live.follow`), speeding up and slowing down
  with it.

::

    from melodia.live.stream import StreamConfig, stream
    from melodia.generation.config import GenerateConfig
    stats = stream(StreamConfig(model="band", accompany="Keystation", port="FLUID",
                                generate=GenerateConfig(lineup="drums,bass", tempo=100)))
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import mido
import numpy as np
import torch

from melodia.encoding.events import NOTE_OFF, NOTE_ON, lookup_tables
from melodia.encoding.quantize import velocity_to_bin
from melodia.generation.accompaniment import require_band
from melodia.generation.decoding import leaned
from melodia.generation.given import FREE, GIVEN_DTYPE, Forcer, on_grid
from melodia.generation.groove import stream_guide
from melodia.generation.pick import choose
from melodia.generation.session import Frame, open_session, tempo_ids
from melodia.live.decode import DRUM_CHANNEL, StreamDecoder, Timed
from melodia.live.follow import ClockFollower
from melodia.live.ports import PortError, input_names
from melodia.live.scheduler import Clock, Player, PlayStats, merge
from melodia.live.timed import open_timed_input
from melodia.midi import seconds_for_bars
from melodia.model.checkpoint import Checkpoint
from melodia.model.stepper import threads

log = logging.getLogger(__name__)

CLICK = 37  # GM side stick: the count-in
CLICK_S = 0.05  # a click's length
WATCH_S = 0.5  # how often the player's port is looked for
CLOCK_WAIT_S = 60.0  # how long --follow-clock waits for the sender's first beat of ticks


@dataclass
class Heard:
    """A player's note event as it arrived: ``at`` (``time.perf_counter``), on or off."""

    at: float
    on: bool
    pitch: int
    velocity: int


class PlayerPart:
    """An input callback that keeps the player's note events for the band, in arrival order (a
    re-struck key is ended first), and when the first and the last one came (``perf_counter``).
    ``at``: a message's arrival on the input's time axis; ``to_clock`` and ``to_wall`` turn it
    into the player's clock (a followed clock's music time) and into ``perf_counter`` time."""

    def __init__(self, to_clock: Callable[[float], float] = float,
                 to_wall: Callable[[float], float] = float) -> None:
        self._to_clock, self._to_wall = to_clock, to_wall
        self._lock = threading.Lock()
        self._new: collections.deque[Heard] = collections.deque()
        self._down: set[int] = set()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.notes = 0  # note-ons heard

    def __call__(self, message, at: float | None = None) -> None:
        if message.type not in ("note_on", "note_off"):
            return
        at = time.perf_counter() if at is None else at
        now, wall = self._to_clock(at), self._to_wall(at)
        on = message.type == "note_on" and message.velocity > 0
        with self._lock:
            if on and message.note in self._down:
                self._new.append(Heard(now, False, message.note, 0))
            if not on and message.note not in self._down:
                return
            (self._down.add if on else self._down.discard)(message.note)
            self.notes += on
            self._new.append(Heard(now, on, message.note, message.velocity))
            self.first_at = self.first_at if self.first_at is not None or not on else wall
            self.last_at = wall

    def take(self) -> list[Heard]:
        """The note events heard since the last call."""
        with self._lock:
            out = list(self._new)
            self._new.clear()
        return out


class LiveForcer(Forcer):
    """A :class:`Forcer` whose given events arrive while the stream plays (:meth:`add`)."""

    def add(self, events: np.ndarray) -> None:
        """Append ``GIVEN_DTYPE`` events (steps raised to keep the order)."""
        if not len(events):
            return
        events = events.copy()
        last = int(self.events["step"][-1]) if len(self.events) else 0
        events["step"] = np.maximum.accumulate(np.maximum(events["step"], last))
        self.events = np.concatenate([self.events, events])


def heard_events(heard: list[Heard], origin: float, sps: int, instrument: int, bins: int,
                 pitches: tuple[int, int]) -> np.ndarray:
    """``GIVEN_DTYPE`` events of the player's notes, at the stream step of their arrival
    (``origin``: the ``perf_counter`` time of step 0); pitches outside the encoding dropped."""
    kept = [h for h in heard if pitches[0] <= h.pitch <= pitches[1]]
    out = np.zeros(len(kept), dtype=GIVEN_DTYPE)
    for i, h in enumerate(kept):
        step = max(int(np.floor((h.at - origin) * sps + 0.5)), 0)
        vbin = int(velocity_to_bin(max(h.velocity, 1), bins)) if h.on else 0
        out[i] = (step, h.on, instrument, h.pitch, vbin)
    return out


def band_ids(checkpoint: Checkpoint, config, part: PlayerPart,
             origin: Callable[[], float | None],
             instrument: int, rest_s: float | None) -> Iterator[tuple[int, bool]]:
    """The band's stream as ``(id, given)``: the model's own events, and the player's notes
    forced in as they arrive; ends once the player has been silent ``rest_s`` seconds of the
    stream (None: never). ``origin()``: the player's clock time of the stream's time 0 (None
    until the music has started)."""
    encoding = checkpoint.encoding
    require_band(encoding)
    qpm = float(config.tempo or 120.0)
    frame = Frame(tempo_ids(encoding, qpm), None, (instrument,))
    session = open_session(checkpoint, dataclasses.replace(config, tempo=qpm), None, 1, frame)
    sps = encoding.config.steps_per_second
    tempos = np.array([[0.0, qpm]])
    forcer = LiveForcer(encoding, np.zeros(0, GIVEN_DTYPE), 1,
                        grid=lambda now: on_grid(now, tempos, sps))  # for as long as it plays
    grammar, mask, logits, features, state, inputs = session.start
    generator = torch.Generator().manual_seed(session.seed)
    guide = stream_guide(encoding, config, session.plan, grammar.now, session.seed)
    pitches = (encoding.config.min_pitch, encoding.config.max_pitch)
    bins, entered, shifts = encoding.config.velocity_bins, False, forcer.shift0
    last_heard, start = 0.0, None
    while True:
        now_s = float(grammar.now[0]) / sps
        start = origin() if start is None else start
        heard = part.take() if start is not None else []  # (kept until the music has started)
        if heard:
            forcer.add(heard_events(heard, start, sps, instrument, bins, pitches))
            last_heard = now_s
        if rest_s is not None and now_s - last_heard > rest_s:
            return
        forced = forcer.forced(grammar)
        if forced[0] == FREE:
            allowed = forcer.restrict(mask, grammar)
            if not entered:  # the band comes in on the downbeat: no opening rest
                waits = allowed[:, shifts:shifts + len(forcer.shift_steps)].copy()
                allowed[:, shifts:shifts + len(forcer.shift_steps)] = False
                if not allowed.any():
                    allowed[:, shifts:shifts + len(forcer.shift_steps)] = waits
            lean, bonus = leaned(logits, grammar, grammar.instrument, guide)
            ids = choose(lean, features, allowed, session.stepper, session.sampler, generator,
                         grammar.kinds, grammar.instrument, bonus).numpy()
            entered = entered or grammar.kinds[ids[0]] == NOTE_ON
        else:
            ids = forced
        forcer.update(ids, grammar.kinds, grammar.values)
        if guide is not None:
            guide.update(ids, grammar.kinds, grammar.values, grammar.instrument)
        mask = grammar.advance(ids)
        yield int(ids[0]), bool(forced[0] != FREE)
        logits, features, state = session.stepper.step(torch.from_numpy(ids), state,
                                                       inputs and inputs(grammar))


def band_messages(ids: Iterator[tuple[int, bool]], checkpoint: Checkpoint, channel: int,
                  offset_s: float) -> Iterator[Timed]:
    """The band's messages, ``offset_s`` later: the given (player's) note events are not
    decoded, so nothing of the player is echoed; the rest as :class:`StreamDecoder` plays it."""
    decoder = StreamDecoder(checkpoint.encoding, channel)
    kinds = lookup_tables(checkpoint.encoding.vocab)[0]
    for event, given in ids:
        if given and kinds[event] in (NOTE_ON, NOTE_OFF):
            continue
        for t, message in decoder.feed(event):
            yield t + offset_s, message
    for t, message in decoder.release():
        yield t + offset_s, message


def count_in(qpm: float, bars: int) -> Iterator[Timed]:
    """``bars`` 4/4 bars of clicks on the drum channel, the first beat of each accented."""
    beat = 60.0 / qpm
    for k in range(4 * bars):
        velocity = 110 if k % 4 == 0 else 75
        yield k * beat, mido.Message("note_on", channel=DRUM_CHANNEL, note=CLICK,
                                     velocity=velocity)
        yield k * beat + CLICK_S, mido.Message("note_off", channel=DRUM_CHANNEL, note=CLICK)


def band_stream(config, part: PlayerPart, origin: Callable[[], float | None],
                checkpoint: Checkpoint, lead_s: float) -> Iterator[Timed]:
    """The band's timed messages from ``lead_s`` on (after the count-in), made lazily in the
    player's producer thread."""
    qpm = float(config.generate.tempo or 120.0)
    rest_s = seconds_for_bars(config.rest_bars, qpm) if config.rest_bars else None
    with threads(config.generate.threads):
        ids = band_ids(checkpoint, config.generate, part, origin, config.player_instrument,
                       rest_s)
        yield from band_messages(ids, checkpoint, config.channel, lead_s)


@dataclass
class LiveRun:
    """What a live accompaniment did: the player's ``stats``, the ``perf_counter`` times of the
    band's first note and the player's first note, the tempo played, and whether it ended
    because the player's port vanished."""

    stats: PlayStats
    band_first_at: float | None
    player_first_at: float | None
    qpm: float | None
    player_notes: int
    vanished: bool = False

    @property
    def entry_s(self) -> float | None:
        """The band's first note minus the player's first note (seconds)."""
        if self.band_first_at is None or self.player_first_at is None:
            return None
        return self.band_first_at - self.player_first_at


def accompany_live(config, port, stop: threading.Event, checkpoint: Checkpoint,
                   clock: Clock | None = None) -> LiveRun:
    """Count in, then play the band with what arrives on ``config.accompany`` into ``port``
    until ``stop``, ``config.seconds``, the player's silence or its port's end."""
    follower = ClockFollower(config.generate.tempo) if config.follow_clock else None
    part: PlayerPart | None = None

    def hear(message, at: float) -> None:
        if follower is not None:
            follower(message, at)
        if part is not None:
            part(message, at)

    source = open_timed_input(config.accompany, config.api, hear)
    if follower is not None:
        follower.clock = source.clock
    part = PlayerPart(follower.at if follower else source.wall, source.wall)
    watch = None if config.accompany.startswith("virtual:") else PortWatch(source.name,
                                                                            config.api, stop)
    clicks: set[int] = set()
    first: list[float] = []

    def send(message) -> None:
        if not first and message.type == "note_on" and message.velocity and \
                id(message) not in clicks:
            first.append(time.perf_counter())
        port.send(message)

    qpm, stats = None, PlayStats()
    try:
        if follower is not None:
            clock = follower
            config = _follow(config, follower, source.name, stop)
        if not stop.is_set():
            qpm = float(config.generate.tempo or 120.0)
            lead_s = seconds_for_bars(config.count_in, qpm) if config.count_in else 0.0
            counted = list(count_in(qpm, config.count_in))
            clicks.update(id(m) for _, m in counted)
            player: Player | None = None

            def origin() -> float | None:  # the band's time 0 on the player's clock, once set
                started = None if player is None else player.start_s
                return None if started is None else started + lead_s

            band = _primed(band_stream(config, part, origin, checkpoint, lead_s))
            player = Player(send, merge(iter(counted), band), clock=clock,
                            lookahead_s=config.lookahead_s, start_delay_s=0.15)
            until = None if config.seconds is None else lead_s + config.seconds
            stats = player.run(until_s=until, stop=stop)
    finally:
        if watch is not None:
            watch.close()
        source.close()
    return LiveRun(stats, first[0] if first else None, part.first_at, qpm, part.notes,
                   bool(watch and watch.vanished))


def _primed(messages: Iterator[Timed]) -> Iterator[Timed]:
    """``messages`` with the first one made now: the band's session opens and its first note is
    ready before the count-in's clock starts (the count-in is merged with the band, and a merge
    waits for each stream's first message; on a slow machine the first clicks came late)."""
    first = next(messages, None)
    return messages if first is None else itertools.chain([first], messages)


def _follow(config, follower: ClockFollower, name: str, stop: threading.Event):
    """Wait for MIDI clock on the port; ``config`` with the band told the clock's tempo (unless
    a tempo was asked for). Stopped first: ``config`` as it was."""
    log.info("waiting for MIDI clock on %s", name)
    if not follower.wait_running(stop, CLOCK_WAIT_S):
        if stop.is_set():
            return config
        raise PortError(f"no MIDI clock arrived on {name} in {CLOCK_WAIT_S:.0f} s: start the "
                        "sender's transport, or drop --follow-clock")
    log.info("following MIDI clock at %.1f BPM", follower.qpm)
    return dataclasses.replace(config, generate=dataclasses.replace(
        config.generate, tempo=round(follower.qpm, 2)))


class PortWatch:
    """Sets ``stop`` when the input port named ``name`` is no longer listed (its program quit)."""

    def __init__(self, name: str, api: str | None, stop: threading.Event) -> None:
        self._names, self.name, self.stop = input_names(api), name, stop
        self.vanished = False
        self._thread = threading.Thread(target=self._watch, name="melodia-port-watch",
                                        daemon=True)
        self._done = threading.Event()
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_S):
            try:
                names = self._names()
            except Exception:  # a backend hiccup is not a vanished port
                continue
            if self.name not in names:
                log.warning("the player's port %r is gone: stopping", self.name)
                self.vanished = True
                self.stop.set()
                return

    def close(self) -> None:
        self._done.set()
        self._thread.join(2 * WATCH_S)


__all__ = ["Heard", "LiveForcer", "LiveRun", "PlayerPart", "PortWatch", "accompany_live",
           "band_ids", "band_messages", "band_stream", "count_in", "heard_events"]
