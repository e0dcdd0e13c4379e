import itertools
import threading
import time

import mido
import numpy as np
import pytest

from melodia.live.decode import stream_messages
from melodia.live.scheduler import (ECHO_S, SEND_FAILURES, ManualClock, MonotonicClock, Player,
                                    clock_messages, merge)


def notes(times_s, channel=0, length_s=0.05):
    """A time-sorted stream of short notes, one starting at each time, pitch 60, 61, ..."""
    events = []
    for k, t in enumerate(times_s):
        pitch = 60 + k % 24
        events.append((t, mido.Message("note_on", channel=channel, note=pitch, velocity=90)))
        events.append((t + length_s, mido.Message("note_off", channel=channel, note=pitch)))
    return sorted(events, key=lambda e: e[0])


class Recorder:
    """A list-collecting send: (clock time, message) of everything sent."""

    def __init__(self, clock):
        self.clock = clock
        self.sent: list[tuple[float, mido.Message]] = []

    def __call__(self, message: mido.Message) -> None:
        self.sent.append((self.clock.now(), message))

    def types(self):
        return [m.type for _, m in self.sent]


def assert_silent(messages):
    """Replaying the sent messages leaves no note on, and the end resets every channel used."""
    sounding, channels = set(), set()
    for m in messages:
        if hasattr(m, "channel"):
            channels.add(m.channel)
        if m.type == "note_on" and m.velocity > 0:
            sounding.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            sounding.discard((m.channel, m.note))
    assert sounding == set()
    resets = {(m.channel, m.control) for m in messages if m.type == "control_change"}
    assert resets >= {(c, cc) for c in channels for cc in (120, 123)}


def without_echoes(messages):
    """The messages less the repeated note-offs (a note-off for a key that is not sounding)."""
    sounding, out = set(), []
    for item in messages:
        m = item[1] if isinstance(item, tuple) else item
        if m.type == "note_on" and m.velocity > 0:
            sounding.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            if (m.channel, m.note) not in sounding:
                continue
            sounding.discard((m.channel, m.note))
        out.append(item)
    return out


def producer_threads():
    return [t for t in threading.enumerate() if t.name == "melodia-live-producer"]


def test_manual_clock_sends_each_message_at_its_time():
    clock = ManualClock(10.0)
    send = Recorder(clock)
    stream = notes([0.0, 0.25, 0.5, 1.0])
    stats = Player(send, iter(stream), clock, start_delay_s=0.1).run()
    music = without_echoes(send.sent)[:len(stream)]
    assert [m for _, m in music] == [m for _, m in stream]
    assert [t for t, _ in music] == pytest.approx([10.1 + t for t, _ in stream])
    assert stats.sent == len(stream) and stats.notes == 4
    assert stats.jitter_s == [0.0] * len(stream) and stats.late_max_s == 0.0
    assert stats.underruns == 0 and stats.duration_s == pytest.approx(1.05)
    # CC123, CC120 on channel 0, twice (the release is repeated ECHO_S later)
    assert [m.type for _, m in without_echoes(send.sent)[len(stream):]] == ["control_change"] * 4
    # every note-off went out twice, ECHO_S apart: a listener that misses one still ends the note
    offs = [(t, m.note) for t, m in send.sent if m.type == "note_off"]
    for note in (60, 61, 62, 63):
        first, second = [t for t, n in offs if n == note][:2]
        assert second - first == pytest.approx(ECHO_S, abs=1e-9) or note == 63


def test_lookahead_is_respected():
    clock = ManualClock()
    stream = notes(np.arange(0, 5, 0.1))
    aheads = []
    player = None

    def instrumented():
        last_t = None
        for item in stream:
            if last_t is not None:  # how far the producer already is when it asks for more
                aheads.append(last_t - (clock.now() - player.start_s))
            last_t = item[0]
            yield item

    player = Player(Recorder(clock), instrumented(), clock, lookahead_s=0.5)
    player.run()
    assert len(aheads) == len(stream) - 1
    assert max(aheads) <= 0.5 + 1e-9
    assert max(aheads) > 0.3  # and it does work ahead


def test_until_s_stops_an_endless_stream_and_its_producer():
    clock = ManualClock()
    send = Recorder(clock)
    endless = (item for k in itertools.count() for item in notes([k * 0.2], length_s=0.3))
    stats = Player(send, endless, clock).run(until_s=2.0)
    assert stats.duration_s == pytest.approx(2.0)
    assert all(t <= 0.1 + 2.0 for t, _ in send.sent)
    assert_silent([m for _, m in send.sent])
    assert producer_threads() == []


def test_stop_event_mid_stream_releases_every_sounding_note():
    clock = ManualClock()
    stop = threading.Event()
    sent = []

    def send(message):
        sent.append(message)
        if sum(m.type == "note_on" for m in sent) == 3:
            stop.set()

    chord = [(0.0, mido.Message("note_on", channel=c, note=n, velocity=80))
             for c, n in [(0, 60), (1, 64), (2, 67), (2, 72)]]
    stats = Player(send, iter(chord + notes([1.0])), clock).run(stop=stop)
    assert stats.notes == 3
    offs = [(m.channel, m.note) for m in without_echoes(sent) if m.type == "note_off"]
    assert offs == [(0, 60), (1, 64), (2, 67)]
    assert [(m.channel, m.note) for m in sent if m.type == "note_off"] == offs * 2
    assert_silent(sent)
    assert producer_threads() == []


def test_iterator_error_releases_notes_and_propagates():
    clock = ManualClock()
    send = Recorder(clock)

    def failing():
        yield 0.0, mido.Message("note_on", note=60, velocity=80)
        yield 0.5, mido.Message("note_on", channel=3, note=62, velocity=80)
        raise RuntimeError("model broke")

    with pytest.raises(RuntimeError, match="model broke"):
        Player(send, failing(), clock).run()
    assert send.types()[:2] == ["note_on", "note_on"]  # what came before the error was played
    assert_silent([m for _, m in send.sent])
    assert producer_threads() == []


def test_send_error_still_releases_and_propagates():
    clock = ManualClock()
    sent = []

    def send(message):
        if message.type == "note_on" and message.note == 62:
            raise OSError("port hiccup")
        sent.append(message)

    with pytest.raises(OSError, match="hiccup"):
        Player(send, iter(notes([0.0, 0.1, 0.2], length_s=1.0)), clock).run()
    # the note whose send failed counts as sounding too: a note_off for it is harmless
    assert [m.type for m in sent[:7]] == ["note_on", "note_on"] + ["note_off"] * 3 + [
        "control_change"] * 2
    assert 62 in [m.note for m in sent if m.type == "note_off"]
    assert [m.type for m in sent[7:]] == ["note_off"] * 3 + ["control_change"] * 2  # again
    assert_silent(sent)


def test_port_gone_gives_up_without_hanging():
    clock = ManualClock()
    calls = []

    def send(message):
        calls.append(message)
        if len(calls) > 2:
            raise OSError("port gone")

    endless = (item for k in itertools.count() for item in notes([k * 0.01], length_s=5.0))
    t0 = time.perf_counter()
    with pytest.raises(OSError, match="gone"):
        Player(send, endless, clock).run()
    assert time.perf_counter() - t0 < 2.0
    assert len(calls) == 3 + SEND_FAILURES  # the failed send, then a few release tries


def test_keyboard_interrupt_releases_and_reraises():
    clock = ManualClock()
    sent, interrupted = [], []

    def send(message):
        if len(sent) == 2 and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        sent.append(message)

    with pytest.raises(KeyboardInterrupt):
        Player(send, iter(notes([0.0, 0.01, 0.02], length_s=1.0)), clock).run()
    assert_silent(sent)


def test_slow_producer_counts_underruns_and_drops_nothing():
    clock = ManualClock()
    send = Recorder(clock)
    stream = notes(np.arange(0, 1, 0.1), length_s=0.05)

    def slow():  # each message takes 0.1 s to make: about twice slower than real time
        for item in stream:
            clock.advance(0.1)
            yield item

    stats = Player(send, slow(), clock, start_delay_s=0.0).run()
    assert stats.sent == len(stream) and stats.underruns > 5
    assert stats.late_max_s > 0.5 and min(stats.jitter_s) >= 0
    assert [m for _, m in send.sent[:len(stream)]] == [m for _, m in stream]


def test_beat_clock_messages_and_merge():
    ticks = list(clock_messages(120, until_s=1.0))
    assert ticks[0][1].type == "start" and ticks[0][0] == 0.0
    assert len(ticks) == 1 + 49  # 48 clocks a second at 120 qpm, from 0 to 1 s inclusive
    assert [t for t, _ in ticks[1:3]] == pytest.approx([0.0, 1 / 48])
    merged = list(merge(iter(notes([0.0, 0.5])), iter(ticks)))
    assert [t for t, _ in merged] == sorted(t for t, _ in merged)
    assert len(merged) == len(ticks) + 4
    with pytest.raises(ValueError):
        next(clock_messages(0))


def test_player_stops_the_beat_clock_it_started():
    clock = ManualClock()
    send = Recorder(clock)
    music = notes([0.0, 0.25])
    Player(send, merge(iter(music), clock_messages(100)), clock).run(until_s=1.0)
    types = send.types()
    assert types.count("start") == 1 and types[-1] == "stop"
    assert types.count("clock") == 41  # 40 per second at 100 qpm, 0..1 s
    assert_silent([m for _, m in send.sent])


def test_shipped_piano_model_stream_plays(one_thread):
    from melodia.generation.generator import iter_events
    from melodia.model.registry import load_model

    clock = ManualClock()
    send = Recorder(clock)
    messages = stream_messages(iter_events("piano", seed=1), load_model("piano").encoding)
    stats = Player(send, messages, clock, lookahead_s=0.5).run(until_s=4.0)
    assert stats.notes > 4 and stats.jitter_s == [0.0] * stats.sent
    assert all(t <= 0.1 + 4.0 for t, _ in send.sent)
    assert_silent([m for _, m in send.sent])
    assert producer_threads() == []


def test_monotonic_clock_jitter_on_a_real_stream():
    clock = MonotonicClock()
    send = Recorder(clock)
    stream = notes(np.arange(0, 0.5, 0.02), length_s=0.03)
    stats = Player(send, iter(stream), clock).run()
    assert stats.sent == len(stream) and stats.duration_s == pytest.approx(0.53, abs=0.02)
    assert np.percentile(np.abs(stats.jitter_s), 99) < 0.005
    assert_silent([m for _, m in send.sent])


def test_monotonic_clock_sleep_returns_early_on_stop():
    clock, stop = MonotonicClock(), threading.Event()
    threading.Timer(0.05, stop.set).start()
    t0 = clock.now()
    clock.sleep_until(t0 + 5.0, stop)
    assert clock.now() - t0 < 1.0


def test_second_interrupt_during_release_still_silences():
    clock = ManualClock()
    sent, interrupts = [], []

    def send(message):
        if len(sent) == 2 and len(interrupts) < 2:  # Ctrl-C, then Ctrl-C again while releasing
            interrupts.append(True)
            raise KeyboardInterrupt
        sent.append(message)

    with pytest.raises(KeyboardInterrupt):
        Player(send, iter(notes([0.0, 0.01, 0.02], length_s=1.0)), clock).run()
    assert len(interrupts) == 2
    assert_silent(sent)


def test_monotonic_clock_jitter_with_the_piano_model_generating(one_thread):
    from melodia.generation.generator import iter_events
    from melodia.model.registry import load_model

    clock = MonotonicClock()
    send = Recorder(clock)
    messages = stream_messages(iter_events("piano", seed=1), load_model("piano").encoding)
    stats = Player(send, messages, clock, lookahead_s=0.3).run(until_s=0.5)
    assert stats.sent > 0 and stats.duration_s == pytest.approx(0.5, abs=0.05)
    assert np.percentile(np.abs(stats.jitter_s), 99) < 0.005
    assert_silent([m for _, m in send.sent])
