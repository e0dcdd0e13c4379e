"""MIDI in and out, in seconds: value types (:mod:`melodia.midi.score`) and Standard MIDI File
reading and writing (:mod:`melodia.midi.files`). Every name is importable from here, e.g.
``from melodia.midi import Score, read_midi, write_midi``. No tokens, no torch.
"""

from melodia.midi.files import (file_channels, from_pretty_midi, load_score, midi_bytes, read_midi,
                                to_pretty_midi, write_midi)
from melodia.midi.score import (DEFAULT_QPM, DEFAULT_TICKS_PER_QUARTER, DEFAULT_TIME_SIGNATURE,
                                DRUM_CHANNEL, MAX_FILE_TICKS, MAX_SECONDS, MAX_SILENCE_END_S,
                                NOTE_DTYPE, PEDAL_DTYPE, TEMPO_DTYPE, TIME_SIGNATURE_DTYPE, Score,
                                TickClock, Track, check_duration, check_notes,
                                default_time_signatures, instrument_name, make_notes,
                                seconds_for_bars)

__all__ = [
    "DEFAULT_QPM", "DEFAULT_TICKS_PER_QUARTER", "DEFAULT_TIME_SIGNATURE", "DRUM_CHANNEL",
    "MAX_FILE_TICKS", "MAX_SECONDS", "MAX_SILENCE_END_S", "NOTE_DTYPE", "PEDAL_DTYPE",
    "TEMPO_DTYPE", "TIME_SIGNATURE_DTYPE", "Score", "TickClock", "Track", "check_duration",
    "check_notes", "default_time_signatures", "file_channels", "from_pretty_midi",
    "instrument_name", "load_score", "make_notes", "midi_bytes", "read_midi",
    "seconds_for_bars", "to_pretty_midi", "write_midi",
]
