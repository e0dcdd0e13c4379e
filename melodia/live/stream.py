"""``melodia stream``: play a model live into a MIDI port, endlessly or as call and response.

::

    from melodia.live.stream import StreamConfig, stream
    stats = stream(StreamConfig(model="piano", seconds=30))      # virtual output port "melodia"

Generation runs in the :class:`~melodia.live.scheduler.Player`'s producer thread, a lookahead
ahead of playback; the player sends each message at its time and, however it stops (time up,
Ctrl-C, SIGTERM, an error, a closed port), ends every note it started.

**Live accompaniment** (``accompany``): a band that plays with a person playing into an input
port (see :mod:`melodia.live.accompany`).

**Call and response** (``listen``): melodia waits on an input port for a phrase; the phrase ends
when nothing has sounded for a bar at the tempo (or the trigger control change arrives); it is the
primer of a continuation of ``respond_seconds`` that melodia plays, then it listens again, round
after round (see :mod:`melodia.live.respond`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from melodia.generation.config import GenerateConfig
from melodia.generation.generator import iter_events
from melodia.live.decode import stream_messages
from melodia.live.headstart import HeadStart, after_head, head_of
from melodia.live.ports import open_output
from melodia.live.respond import call_and_response
from melodia.live.scheduler import Clock, Player, PlayStats, clock_messages, merge
from melodia.live.start import DRAIN_S, START_DELAY_S, stop_on_signals
from melodia.model.checkpoint import Checkpoint
from melodia.model.registry import load_model

log = logging.getLogger(__name__)

# the opening, up to this long after the first note, is made before the clock starts
# (_from_first_note): the producer's head start is then START_DELAY_S + OPENING_S, as it was
# (0.15 s), but making 0.1 s of music takes a fraction of that, so the first note comes sooner
OPENING_S = 0.1


@dataclass
class StreamConfig:
    """Where to play, what, and for how long."""

    model: str = "piano"  # piano, band, a checkpoint file or a run directory
    virtual: str | None = "melodia"  # open a virtual output port of this name...
    port: str | None = None  # ...or connect to an existing output port whose name contains this
    api: str | None = None  # alsa, jack, coremidi, windows_mm (default: what works here)
    seconds: float | None = None  # stop after this long (None: until stopped)
    channel: int = 0  # MIDI channel (0-15) of the piano / the band's first melodic part
    clock_out: bool = False  # also send MIDI beat clock (24 per quarter note) at `tempo`
    lookahead_s: float = 0.5  # how far generation runs ahead of playback
    # call and response: listen on this input port (None: just play)
    listen: str | None = None
    respond_seconds: float = 8.0  # length of each answer
    rounds: int | None = None  # answers before stopping (None: until stopped)
    trigger_cc: int | None = None  # a control change number that ends a phrase at once
    # live accompaniment (melodia.live.accompany): the band plays with this input port's player
    accompany: str | None = None
    player_instrument: int = 0  # GM program the player's notes are heard as (128: drums)
    count_in: int = 1  # bars of clicks before the band and the player start
    rest_bars: float = 2.0  # the band stops after this many bars without the player (0: never)
    follow_clock: bool = False  # the band's beat from MIDI clock on the accompany port
    generate: GenerateConfig = field(default_factory=GenerateConfig)  # sampling, band options

    def __post_init__(self) -> None:
        if not 0 <= self.channel <= 15:
            raise ValueError("channel must be 0..15")
        if self.seconds is not None and not 0 < self.seconds < 1e7:
            raise ValueError("seconds must be a positive number")
        if not 0 < self.lookahead_s <= 10 or not 0 < self.respond_seconds <= 600:
            raise ValueError("need 0 < lookahead_s <= 10 and 0 < respond_seconds <= 600")
        if self.follow_clock and self.accompany is None:
            raise ValueError("--follow-clock follows the clock of the --accompany port")
        if self.accompany is not None and self.listen is not None:
            raise ValueError("--accompany plays along, --listen answers: choose one")
        if not 0 <= self.count_in <= 8 or not 0 <= self.rest_bars <= 1000:
            raise ValueError("need 0 <= count-in <= 8 bars and 0 <= rest-bars <= 1000")

    @property
    def qpm(self) -> float:
        return float(self.generate.tempo or 120.0)


def timed_messages(config: StreamConfig, primer=None,
                   checkpoint: Checkpoint | None = None) -> Iterator[tuple]:
    """The model's music as ``(seconds, mido.Message)``, endlessly (plus beat clock if asked);
    ``checkpoint``: ``config.model`` already loaded."""
    checkpoint = checkpoint or load_model(config.model)
    events = iter_events(checkpoint, config=config.generate, primer=primer)
    first = next(events)  # prime the model now, before the clock starts
    music = _from_first_note(stream_messages(itertools.chain([first], events),
                                             checkpoint.encoding, config.channel))
    if config.clock_out:
        return merge(music, clock_messages(config.qpm, None))
    return music


def seeded(config: StreamConfig, seed: int) -> StreamConfig:
    """``config`` with its generation's seed set."""
    return dataclasses.replace(config, generate=dataclasses.replace(config.generate, seed=seed))


def headstart(config: StreamConfig, seed: int,
              checkpoint: Checkpoint | None = None) -> HeadStart:
    """The first seconds of the stream of ``seed`` (:mod:`melodia.live.headstart`), to keep."""
    return head_of(timed_messages(seeded(config, seed), checkpoint=checkpoint), seed)


def after_headstart(config: StreamConfig, head: HeadStart, key: str) -> Iterator[tuple]:
    """The stream of ``head``'s seed past ``head`` (made again by the model and checked)."""
    return after_head(timed_messages(seeded(config, head.seed)), head, key)


def _from_first_note(music: Iterator[tuple], opening_s: float = OPENING_S) -> Iterator[tuple]:
    """``music`` moved earlier so that its first note sounds at time 0: a stream starts playing,
    not with the model's opening rest (what precedes the first note, program changes, comes at
    0 too). The opening, up to ``opening_s`` after the first note, is made here at once, before
    a player's clock starts."""
    head: list[tuple] = []
    first = None  # the time of the first note
    for t, message in music:
        if first is not None and t > first + opening_s:
            return _shifted(head, itertools.chain([(t, message)], music), first)
        head.append((t, message))
        if first is None and message.type == "note_on" and message.velocity:
            first = t
    return _shifted(head, music, first if first is not None else 0.0)


def _shifted(head: list[tuple], rest: Iterator[tuple], offset: float) -> Iterator[tuple]:
    for t, message in head:
        yield max(0.0, t - offset), message
    for t, message in rest:
        yield t - offset, message


def stream(config: StreamConfig, stop: threading.Event | None = None,
           clock: Clock | None = None, output=None,
           own_output: bool = False) -> PlayStats | list[PlayStats]:
    """Play ``config.model`` into a port until ``config.seconds`` pass or ``stop`` is set; with
    ``config.listen``, answer phrases instead (a list of each answer's stats). ``output``: an
    open mido output port to use instead of opening one; ``own_output``: close it at the end as
    a port opened here (the command line opens its port while torch imports,
    :mod:`melodia.live.start`)."""

    stop = stop or threading.Event()
    port = output or open_output(virtual=config.virtual if config.port is None else None,
                                 port=config.port, api=config.api)
    try:
        with stop_on_signals(stop):
            checkpoint = load_model(config.model)  # resolved and loaded once for every round
            if config.accompany is not None:
                # deferred: the live band's modules (and the evaluation they lean on) would
                # slow every stream's first note
                from melodia.live.accompany import accompany_live

                return accompany_live(config, port, stop, checkpoint, clock)
            if config.listen is not None:
                messages = functools.partial(timed_messages, checkpoint=checkpoint)
                return call_and_response(config, port, stop, messages, clock)
            player = Player(port.send, timed_messages(config, checkpoint=checkpoint), clock=clock,
                            lookahead_s=config.lookahead_s, start_delay_s=START_DELAY_S)
            return player.run(until_s=config.seconds, stop=stop)
    finally:
        if output is None or own_output:
            time.sleep(DRAIN_S)  # let the backend hand on the last note-offs before closing
            port.close()


__all__ = ["StreamConfig", "after_headstart", "headstart", "seeded", "stream",
           "timed_messages"]
