"""A stream's first seconds kept for its next start (melodia.live.headstart) and the model in a
process of its own (melodia.cli.worker): the same music note for note, sooner."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from melodia.live import headstart as hs
from melodia.live.headstart import HeadStart, after_head, read_headstart, settings_key
from tests.live.test_stream import _received, _receiver, _unended


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "melodia" / "headstarts"


def _head(seed: int = 5) -> HeadStart:
    return HeadStart(seed, [(0.0, mido.Message("note_on", note=60, velocity=80)),
                            (0.5, mido.Message("note_off", note=60)),
                            (0.5, mido.Message("control_change", control=64, value=127))])


def test_the_key_names_the_music_not_where_it_goes(tmp_path: Path):
    model = tmp_path / "m.pt"
    model.write_bytes(b"x" * 10)
    options = {"temperature": 1.0, "seed": 1, "port": "a", "seconds": 4.0, "func": print}
    key = settings_key(str(model), options)
    assert key == settings_key(str(model), {**options, "seed": 2, "port": "b", "seconds": 9.0})
    assert key != settings_key(str(model), {**options, "temperature": 0.9})
    assert settings_key("piano", options) != settings_key("band", options)
    model.write_bytes(b"y" * 11)  # the model file changed: another stream
    assert key != settings_key(str(model), options)


def test_a_kept_head_reads_back_and_a_spare_is_taken_once(cache: Path):
    hs.write_headstart("k", _head(5), spare=False)
    hs.write_headstart("k", _head(9), spare=True)
    back = read_headstart("k", 5)
    assert back.seed == 5 and [(t, m.bytes()) for t, m in back.messages] == [
        (t, m.bytes()) for t, m in _head().messages]
    assert read_headstart("k", 5) is not None  # a seed's head stays
    assert read_headstart("k", None).seed == 9
    assert read_headstart("k", None) is None  # the spare was taken
    assert read_headstart("k", 6) is None and read_headstart("other", 5) is None


@pytest.mark.parametrize("text", ["{", '{"version": 1, "key": "k", "seed": 5, "messages": []}',
                                  '{"version": 1, "key": "k", "seed": 5, "messages": '
                                  '[[1.0, [144, 60, 9]], [0.5, [128, 60, 0]]]}',
                                  '{"version": 1, "key": "k", "seed": 5, "messages": '
                                  '[[0.0, [144, 600, 9]]]}',
                                  '{"version": 99, "key": "k", "seed": 5, "messages": []}'])
def test_a_damaged_head_is_ignored_and_removed(cache: Path, text: str):
    path = cache / "k-5.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert read_headstart("k", 5) is None
    assert not path.exists()


def test_after_head_checks_the_model_and_drops_a_head_it_does_not_play(cache: Path, caplog):
    head = _head(5)
    hs.write_headstart("k", head, spare=False)
    tail = [(1.0, mido.Message("note_on", note=62, velocity=70))]
    assert list(after_head(iter(head.messages + tail), head, "k")) == tail  # the same: goes on
    assert read_headstart("k", 5) is not None
    other = [(0.0, mido.Message("note_on", note=61, velocity=80))] + head.messages[1:] + tail
    with caplog.at_level(logging.WARNING, logger="melodia.live.headstart"):
        rest = list(after_head(iter(other), head, "k"))
    # the head's sounding notes and pedal end where it ends, then the model's own stream
    # from there (what it made for the time the head played is not played)
    assert [(t, m.bytes()) for t, m in rest] == [
        (0.5, [176, 64, 0]), *[(t, m.bytes()) for t, m in other if t >= 0.5]]
    assert "differs" in caplog.text and read_headstart("k", 5) is None


def _stream(name: str, tmp_path: Path, env: dict, *options: str) -> tuple[list, str]:
    out = tmp_path / f"{name}.json"
    stream = subprocess.Popen([sys.executable, "-m", "melodia.cli", "stream", "--api", "jack",
                               "--virtual", name, "--seconds", "3", *options],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    receiver = _receiver(name, out)
    said, errors = stream.communicate(timeout=120)
    assert stream.returncode == 0, errors
    return _received(receiver, out), said + errors


def _notes(messages: list) -> list:
    return [m.bytes() for m in messages if m.type in ("note_on", "note_off")]


def _same_music(a: list, b: list, dropped: int = 3) -> bool:
    """The same notes in the same order, but for a few that a late cycle of the non-realtime
    JACK server swallowed on the way (tests/live/test_stream.py): only gaps, no other note."""
    import difflib

    a, b = [tuple(x) for x in _notes(a)], [tuple(x) for x in _notes(b)]
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    gaps = [(tag, i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal"]
    return (len(a) > 8 and all(tag in ("delete", "insert") for tag, _, _ in gaps)
            and sum(n + m for _, n, m in gaps) <= dropped)


def test_a_stream_started_from_its_kept_head_plays_the_same_music(tmp_path: Path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    kept = tmp_path / "xdg" / "melodia" / "headstarts"
    name = f"melodia-h{os.getpid()}"
    first, said = _stream(f"{name}-a", tmp_path, env, "--seed", "4")
    assert "(seed 4)" not in said and len(list(kept.glob("*-4.json"))) == 1
    again, said = _stream(f"{name}-b", tmp_path, env, "--seed", "4")
    assert "(seed 4)" in said  # started from the kept head
    assert _same_music(first, again)
    assert not _unended(again)
    # a head the model would not play (a note changed): dropped, and the stream goes on
    path = next(kept.glob("*-4.json"))
    data = json.loads(path.read_text())
    on = next(m for m in data["messages"] if m[1][0] & 0xF0 == 0x90 and m[1][2])
    on[1][1] = (on[1][1] + 1) % 128
    path.write_text(json.dumps(data))
    changed, _ = _stream(f"{name}-c", tmp_path, env, "--seed", "4")
    assert len(_notes(changed)) > 8 and not _unended(changed)
    assert not path.exists() or json.loads(path.read_text()) != data


def test_streams_without_a_seed_start_from_a_spare_drawn_for_them(tmp_path: Path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    spare = tmp_path / "xdg" / "melodia" / "headstarts"
    name = f"melodia-s{os.getpid()}"
    _stream(f"{name}-a", tmp_path, env)
    _wait_for(lambda: list(spare.glob("*-spare.json")))  # the child keeps it as it ends
    seed = json.loads(next(spare.glob("*-spare.json")).read_text())["seed"]
    got, said = _stream(f"{name}-b", tmp_path, env)
    assert f"(seed {seed})" in said and not _unended(got)
    # the same seed asked for again plays the same piece (made by the model, no head kept)
    again, said_again = _stream(f"{name}-c", tmp_path, env, "--seed", str(seed))
    assert _same_music(got, again), (said, said_again)


def _wait_for(condition, seconds: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
