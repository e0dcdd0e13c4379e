"""Keys in any common spelling: music21's (``E- major``, ``eb``), chord symbols, Unicode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from melodia.cli import main
from melodia.errors import GenerateError
from melodia.features.keys import key_histogram, parse_key


@pytest.mark.parametrize("spelling, key", [
    ("E- major", (3, "major")), ("Eb major", (3, "major")), ("E♭ major", (3, "major")),
    ("E flat major", (3, "major")), ("eb", (3, "minor")), ("D#m", (3, "minor")),
    ("f# minor", (6, "minor")), ("F♯ minor", (6, "minor")), ("A minor", (9, "minor")),
    ("Am", (9, "minor")), ("a", (9, "minor")), ("B-", (10, "major")), ("b-", (10, "minor")),
    ("G major", (7, "major")), ("G", (7, "major")), ("Cb", (11, "major")), ("B#", (0, "major")),
    ("  D  minor ", (2, "minor")), ("Dmin", (2, "minor")), ("Cmaj", (0, "major"))])
def test_every_common_spelling_reads(spelling, key):
    assert parse_key(spelling) == key


def test_spellings_of_one_key_ask_for_the_same_control():
    same = [key_histogram(k) for k in ("E- major", "Eb major", "E♭ major", "D# major")]
    assert all(np.array_equal(same[0], h) for h in same[1:])
    assert not np.array_equal(key_histogram("eb"), key_histogram("Eb"))  # minor vs major
    # music21's own name of a key it found is read back as that key
    import music21

    for name in ("E- major", "f# minor", "b- minor", "C# major"):
        k = music21.key.Key(*name.split())
        assert parse_key(str(k)) == (k.tonic.pitchClass, k.mode)


@pytest.mark.parametrize("bad", ["H major", "x", "", "C minor major", "E--- major", "Am7"])
def test_unreadable_keys_get_one_line_listing_the_accepted_forms(bad):
    with pytest.raises(GenerateError) as err:
        parse_key(bad)
    message = str(err.value)
    assert "\n" not in message and repr(bad) in message and "E- major" in message


def test_the_cli_takes_music21s_spelling_and_refuses_h_major(tmp_path: Path, capsys):
    out = tmp_path / "k.mid"
    assert main(["generate", "--key", "E- major", "--seconds", "1", "--seed", "1",
                 "-o", str(out)]) == 0 and out.stat().st_size > 0
    capsys.readouterr()
    assert main(["generate", "--key", "H major", "--seconds", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read the key 'H major'" in err
