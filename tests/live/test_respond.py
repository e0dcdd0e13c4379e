"""PhraseListener: what ends a phrase, what it holds; the real ports run in test_stream.py."""

from __future__ import annotations

import threading
import time

import mido
import numpy as np

from melodia.live.respond import PhraseListener


def _play(listener: PhraseListener, notes: list[int], gap: float = 0.02) -> None:
    for note in notes:
        listener(mido.Message("note_on", note=note, velocity=70))
        time.sleep(gap)
        listener(mido.Message("note_off", note=note))


def test_a_phrase_ends_after_the_silence_and_keeps_its_notes():
    listener = PhraseListener()
    _play(listener, [60, 62, 64])
    start = time.perf_counter()
    score, ended = listener.wait_phrase(threading.Event(), silence_s=0.15)
    waited = time.perf_counter() - start
    notes = score.tracks[0].notes
    assert notes["pitch"].tolist() == [60, 62, 64] and (notes["velocity"] == 70).all()
    assert notes["start_s"][0] == 0.0 and np.all(np.diff(notes["start_s"]) > 0.01)
    assert 0.1 < waited < 0.5 and ended <= start


def test_a_held_note_keeps_the_phrase_open_until_released():
    listener = PhraseListener()
    listener(mido.Message("note_on", note=48, velocity=90))
    stop = threading.Event()
    threading.Timer(0.3, lambda: listener(mido.Message("note_off", note=48))).start()
    start = time.perf_counter()
    score, _ = listener.wait_phrase(stop, silence_s=0.1)
    assert time.perf_counter() - start > 0.35
    assert score.tracks[0].notes["end_s"][0] > 0.25


def test_the_trigger_cc_ends_a_phrase_at_once_but_not_an_empty_one():
    listener = PhraseListener(trigger_cc=64)
    listener(mido.Message("control_change", control=64, value=127))  # nothing heard yet
    _play(listener, [67])
    listener(mido.Message("control_change", control=64, value=127))
    start = time.perf_counter()
    score, _ = listener.wait_phrase(threading.Event(), silence_s=5.0)
    assert time.perf_counter() - start < 0.5 and score.note_count == 1


def test_muted_listener_drops_notes_and_stop_ends_the_wait():
    listener = PhraseListener()
    listener.muted = True
    _play(listener, [60, 61])
    listener.muted = False
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    assert listener.wait_phrase(stop, silence_s=0.05) is None
