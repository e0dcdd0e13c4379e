"""Live playing: model event ids -> timed MIDI messages -> a MIDI output, in real time.

- :mod:`melodia.live.ports`: MIDI ports through mido and python-rtmidi (ALSA, JACK, CoreMIDI,
  Windows MM), with one-line errors; ``melodia ports``.
- :mod:`melodia.live.stream`: ``melodia stream``, endless or call and response
  (:mod:`melodia.live.respond`).
- :mod:`melodia.live.decode`: :class:`StreamDecoder`, ids to ``(time_s, mido.Message)`` one
  event at a time; :func:`stream_messages` for a whole (possibly endless) id stream.
- :mod:`melodia.live.scheduler`: :class:`Player` sends messages at their times on a
  :class:`Clock`, generating just ahead of playback, and never leaves a note stuck; MIDI beat
  clock (:func:`clock_messages`) and :func:`merge` of timed streams.

::

    import melodia
    from melodia.model import load_model
    from melodia.live import Player, stream_messages

    encoding = load_model("piano").encoding
    messages = stream_messages(melodia.iter_events("piano", seed=1), encoding)
    stats = Player(port.send, messages).run(until_s=30)
"""

from __future__ import annotations

from melodia.live.decode import DRUM_CHANNEL, StreamDecoder, Timed, control_off, stream_messages
from melodia.live.scheduler import (CLOCKS_PER_QUARTER, Clock, ManualClock, MonotonicClock, Player,
                                    PlayStats, clock_messages, merge)

__all__ = ["CLOCKS_PER_QUARTER", "Clock", "DRUM_CHANNEL", "ManualClock", "MonotonicClock",
           "PlayStats", "Player", "StreamDecoder", "Timed", "clock_messages", "control_off",
           "merge", "stream_messages"]
