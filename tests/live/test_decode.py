import logging

import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.live.decode import DRUM_CHANNEL, StreamDecoder, stream_messages

PIANO = get_encoding("piano")
BAND = get_encoding("band")


def ev(encoding, type_: str, value: int) -> int:
    return encoding.vocab.encode_event(type_, value)


def feed_all(decoder: StreamDecoder, ids) -> list[tuple[float, str, dict]]:
    """(time_s, type, fields) of every message the ids give, for readable comparisons."""
    out = []
    for i in ids:
        for t, m in decoder.feed(i):
            fields = {k: v for k, v in m.dict().items() if k not in ("type", "time")}
            out.append((round(t, 6), m.type, fields))
    return out


def test_piano_times_and_velocities():
    ids = [ev(PIANO, "VELOCITY", 20), ev(PIANO, "NOTE_ON", 60), ev(PIANO, "TIME_SHIFT", 50),
           ev(PIANO, "NOTE_OFF", 60), ev(PIANO, "VELOCITY", 32), ev(PIANO, "NOTE_ON", 64),
           ev(PIANO, "TIME_SHIFT", 100), ev(PIANO, "TIME_SHIFT", 25), ev(PIANO, "NOTE_OFF", 64)]
    decoder = StreamDecoder(PIANO, channel=3)
    assert feed_all(decoder, ids) == [
        (0.0, "note_on", {"channel": 3, "note": 60, "velocity": 77}),
        (0.5, "note_off", {"channel": 3, "note": 60, "velocity": 64}),
        (0.5, "note_on", {"channel": 3, "note": 64, "velocity": 125}),
        (1.75, "note_off", {"channel": 3, "note": 64, "velocity": 64}),
    ]
    assert decoder.time_s == pytest.approx(1.75)
    assert decoder.sounding == set() and decoder.channels == (3,)


def test_piano_default_velocity_and_no_program_change():
    messages = feed_all(StreamDecoder(PIANO), [ev(PIANO, "NOTE_ON", 60)])
    assert messages == [(0.0, "note_on", {"channel": 0, "note": 60, "velocity": 64})]


def test_restruck_note_gets_a_note_off_first():
    ids = [ev(PIANO, "NOTE_ON", 60), ev(PIANO, "TIME_SHIFT", 10), ev(PIANO, "NOTE_ON", 60)]
    decoder = StreamDecoder(PIANO)
    assert [(t, m) for t, m, _ in feed_all(decoder, ids)] == [
        (0.0, "note_on"), (0.1, "note_off"), (0.1, "note_on")]
    assert decoder.sounding == {(0, 60)}


def test_orphan_note_off_is_ignored():
    decoder = StreamDecoder(PIANO)
    assert decoder.feed(ev(PIANO, "NOTE_OFF", 60)) == []
    decoder.feed(ev(PIANO, "NOTE_ON", 61))
    decoder.feed(ev(PIANO, "NOTE_OFF", 61))
    assert decoder.feed(ev(PIANO, "NOTE_OFF", 61)) == []


def test_band_channels_program_changes_and_drums():
    ids = [ev(BAND, "TEMPO", 20), ev(BAND, "PROGRAM", 33), ev(BAND, "NOTE_ON", 40),
           ev(BAND, "PROGRAM", 128), ev(BAND, "VELOCITY", 32), ev(BAND, "NOTE_ON", 36),
           ev(BAND, "PROGRAM", 25), ev(BAND, "NOTE_ON", 64), ev(BAND, "TIME_SHIFT", 30),
           ev(BAND, "PROGRAM", 33), ev(BAND, "NOTE_OFF", 40), ev(BAND, "NOTE_ON", 43),
           ev(BAND, "PROGRAM", 128), ev(BAND, "NOTE_OFF", 36)]
    decoder = StreamDecoder(BAND, channel=8)
    assert feed_all(decoder, ids) == [
        (0.0, "program_change", {"channel": 8, "program": 33}),
        (0.0, "note_on", {"channel": 8, "note": 40, "velocity": 64}),
        (0.0, "program_change", {"channel": DRUM_CHANNEL, "program": 0}),
        (0.0, "note_on", {"channel": 9, "note": 36, "velocity": 125}),
        (0.0, "program_change", {"channel": 10, "program": 25}),  # 9 skipped: drums only
        (0.0, "note_on", {"channel": 10, "note": 64, "velocity": 125}),
        (0.3, "note_off", {"channel": 8, "note": 40, "velocity": 64}),
        (0.3, "note_on", {"channel": 8, "note": 43, "velocity": 125}),
        (0.3, "note_off", {"channel": 9, "note": 36, "velocity": 64}),
    ]
    assert decoder.qpm == pytest.approx(float(BAND.bin_to_qpm(20)))
    assert decoder.instrument_channels == {33: 8, 128: 9, 25: 10}
    assert decoder.channels == (8, 9, 10)
    assert decoder.sounding == {(8, 43), (10, 64)}


def test_band_notes_before_any_program_are_program_0():
    messages = feed_all(StreamDecoder(BAND), [ev(BAND, "NOTE_ON", 60)])
    assert [m for _, m, _ in messages] == ["program_change", "note_on"]
    assert messages[0][2] == {"channel": 0, "program": 0}


def test_melodic_channels_wrap_and_run_out_without_raising(caplog):
    decoder = StreamDecoder(BAND, channel=14)
    channels = []
    for program in range(17):  # 16 melodic instruments, only 15 channels for them
        decoder.feed(ev(BAND, "PROGRAM", program))
        channels += [m.channel for _, m in decoder.feed(ev(BAND, "NOTE_ON", 60))
                     if m.type == "note_on"]
    assert channels[:4] == [14, 15, 0, 1]
    assert len(channels) == 15 and DRUM_CHANNEL not in channels
    assert "no free MIDI channel" in caplog.text


def test_release_silences_every_channel_used():
    decoder = StreamDecoder(BAND)
    feed_all(decoder, [ev(BAND, "PROGRAM", 128), ev(BAND, "NOTE_ON", 36),
                       ev(BAND, "PROGRAM", 1), ev(BAND, "NOTE_ON", 60),
                       ev(BAND, "TIME_SHIFT", 5)])
    released = decoder.release(at_s=2.0)
    assert {t for t, _ in released} == {2.0}
    offs = {(m.channel, m.note) for _, m in released if m.type == "note_off"}
    assert offs == {(9, 36), (0, 60)}
    controls = [(m.channel, m.control) for _, m in released if m.type == "control_change"]
    assert controls == [(0, 123), (0, 120), (9, 123), (9, 120)]
    assert decoder.sounding == set()
    assert [m.type for _, m in released][:2] == ["note_off", "note_off"]


def test_release_of_a_silent_stream_still_resets_the_base_channel():
    released = StreamDecoder(PIANO, channel=5).release()
    assert [(t, m.channel, m.control) for t, m in released] == [(0.0, 5, 123), (0.0, 5, 120)]


def test_ids_outside_the_vocabulary_are_ignored_and_logged_once(caplog):
    decoder = StreamDecoder(PIANO)
    with caplog.at_level(logging.WARNING, logger="melodia.live.decode"):
        for bad in [-1, PIANO.vocab_size, 10**30, "x", None, 2.5e9]:
            assert decoder.feed(bad) == []
    assert len(caplog.records) == 1
    assert decoder.feed(np.int64(ev(PIANO, "NOTE_ON", 60)))[0][1].type == "note_on"


def test_bad_channel_is_refused():
    with pytest.raises(ValueError):
        StreamDecoder(PIANO, channel=16)


@pytest.mark.parametrize("encoding", [PIANO, BAND], ids=["piano", "band"])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_ids_never_raise_and_every_note_on_is_closed(encoding, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(-5, encoding.vocab_size + 5, 5000)
    sounding: set[tuple[int, int]] = set()
    last_t = 0.0
    for t, m in stream_messages(ids, encoding, channel=seed):
        assert t >= last_t
        last_t = t
        if m.type == "note_on":
            assert (m.channel, m.note) not in sounding and m.velocity > 0
            sounding.add((m.channel, m.note))
        elif m.type == "note_off":
            sounding.remove((m.channel, m.note))  # never an unmatched note_off
    assert sounding == set()


def test_stream_messages_is_lazy_over_an_endless_stream():
    def endless():
        while True:
            yield ev(PIANO, "NOTE_ON", 60)
            yield ev(PIANO, "TIME_SHIFT", 10)

    stream = stream_messages(endless(), PIANO)
    first = [next(stream) for _ in range(3)]
    assert [m.type for _, m in first] == ["note_on", "note_off", "note_on"]
    assert first[1][0] == pytest.approx(0.1)
