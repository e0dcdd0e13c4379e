"""The pieces of live accompaniment without ports: the player's notes as given events, the
band's messages without them, the count-in, and the clock follower on synthetic ticks."""

from __future__ import annotations

import threading
import time

import mido
import numpy as np
import pytest

from melodia.encoding.events import NOTE_ON, lookup_tables
from melodia.generation.config import GenerateConfig
from melodia.generation.given import GIVEN_DTYPE
from melodia.live.accompany import (CLICK, Heard, LiveForcer, PlayerPart, band_ids,
                                    band_messages, count_in, heard_events)
from melodia.live.follow import ClockFollower
from melodia.model.registry import load_model


def test_player_part_keeps_arrivals_and_ends_a_restruck_key():
    part = PlayerPart(lambda at: at - 1.0, lambda at: at + 100.0)  # the player's clock, wall
    part(mido.Message("note_on", note=60, velocity=90), 1.0)
    part(mido.Message("note_on", note=60, velocity=70), 1.2)  # struck again while down
    part(mido.Message("note_off", note=61), 1.5)  # never down: ignored
    part(mido.Message("note_off", note=60), 1.6)
    part(mido.Message("clock"), 1.7)
    got = [(round(h.at, 6), h.on, h.pitch) for h in part.take()]
    assert got == [(0.0, True, 60), (0.2, False, 60), (0.2, True, 60), (0.6, False, 60)]
    assert part.take() == [] and part.first_at == 101.0 and part.last_at == 101.6


def test_heard_events_land_on_their_steps_in_order():
    heard = [Heard(10.505, True, 64, 100), Heard(10.0, True, 20, 90), Heard(11.0, False, 64, 0)]
    events = heard_events(heard, 10.0, 100, 0, 32, (21, 108))
    assert events["step"].tolist() == [51, 100] and events["pitch"].tolist() == [64, 64]
    assert events["on"].tolist() == [True, False] and events["vbin"][0] > 0
    forcer = LiveForcer(load_model("band").encoding, np.zeros(0, GIVEN_DTYPE))
    forcer.add(events)
    forcer.add(heard_events([Heard(10.2, True, 67, 80)], 10.0, 100, 0, 32, (21, 108)))
    assert forcer.events["step"].tolist() == [51, 100, 100]  # a late arrival keeps the order


def test_band_stream_forces_the_player_and_never_echoes_it():
    checkpoint = load_model("band")
    part = PlayerPart(lambda: 0.0)
    for k in range(6):
        part._new.append(Heard(0.25 * k, True, 84 + k, 90))
        part._new.append(Heard(0.25 * k + 0.2, False, 84 + k, 0))
    ids = band_ids(checkpoint, GenerateConfig(seed=2, tempo=120, lineup="drums,bass"), part,
                   lambda: 0.0, 0, rest_s=None)
    taken = []
    for event, given in ids:
        taken.append((event, given))
        if len(taken) > 400:
            break
    kinds, values = lookup_tables(checkpoint.encoding.vocab)
    forced_on = [values[e] for e, g in taken if g and kinds[e] == NOTE_ON]
    assert forced_on == [84, 85, 86, 87, 88, 89]  # every player's note, in the stream
    messages = list(band_messages(iter(taken), checkpoint, 0, 2.0))
    notes = [m for _, m in messages if m.type == "note_on" and m.velocity]
    assert notes and not [m for m in notes if m.channel != 9 and m.note >= 84]  # no echo
    assert min(t for t, m in messages if m.type == "note_on") == 2.0  # in on the downbeat


def test_count_in_clicks_a_bar():
    clicks = list(count_in(120.0, 1))
    ons = [(t, m.velocity) for t, m in clicks if m.type == "note_on"]
    assert ons == [(0.0, 110), (0.5, 75), (1.0, 75), (1.5, 75)]
    assert all(m.channel == 9 and m.note == CLICK for _, m in clicks)


def test_clock_follower_measures_the_tempo_and_runs_with_it():
    follower = ClockFollower()
    follower(mido.Message("start"))
    tick = 60.0 / (90.0 * 24)
    stop = threading.Event()
    assert not follower.wait_running(stop, timeout_s=0.01)
    start = time.perf_counter()
    for k in range(60):
        while time.perf_counter() < start + k * tick:
            pass
        follower(mido.Message("clock"))
    assert follower.wait_running(stop, timeout_s=0.1)
    assert follower.qpm == pytest.approx(90.0, rel=0.02)
    assert follower.now() == pytest.approx(59 / 24 * 60 / 90.0, abs=0.03)  # 59 ticks in
    follower(mido.Message("stop"))
    held = follower.now()
    time.sleep(0.05)
    assert follower.now() == pytest.approx(held, abs=tick * 60 / 90.0 * 2)


def test_clock_follower_keeps_stamped_ticks_spacing_however_late_they_are_handed_over():
    """Ticks stamped on arrival (as :mod:`melodia.live.timed` stamps them) but handed over in
    one late burst, as a busy interpreter does: the tempo and the music's time come from the
    stamps, not from when the ticks were handed over."""
    t0 = 1000.0
    now = [t0]
    follower = ClockFollower(clock=lambda: now[0])
    tick = 60.0 / (100.0 * 24)
    follower(mido.Message("start"), t0)
    for k in range(60):  # all handed over at once, 0.7 s after they began
        follower(mido.Message("clock"), t0 + k * tick)
    now[0] = t0 + 59 * tick + 0.01
    assert follower.qpm == pytest.approx(100.0, rel=1e-6)
    assert follower.now() == pytest.approx((59 * tick + 0.01) * 100 / 100, abs=1e-6)
    assert follower.at(t0 + 24 * tick) == pytest.approx(0.6, abs=1e-9)  # a beat at 100 BPM


def test_a_named_tempo_is_kept_and_time_follows_the_sender():
    follower = ClockFollower(qpm=120.0)  # the band is told 120; the sender plays 60
    tick = 60.0 / (60.0 * 24)
    start = time.perf_counter()
    for k in range(30):
        while time.perf_counter() < start + k * tick:
            pass
        follower(mido.Message("clock"))
    assert follower.qpm == 120.0
    assert follower.now() == pytest.approx(29 / 24 * 0.5, abs=0.03)  # beats at 120's seconds
