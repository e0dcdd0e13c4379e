"""Mutated real MIDI files: reading and encoding either work or raise melodia's own error."""

import time

import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.errors import MelodiaError
from melodia.midi import read_midi
from tests.conftest import DATA

SOURCE = DATA / "freedoom" / "doom1_D_E1M1.mid"


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """Flip, insert or delete a few bytes, or truncate the file."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        kind, at = int(rng.integers(4)), int(rng.integers(len(buf)))
        if kind == 0:
            buf[at] = int(rng.integers(256))
        elif kind == 1:
            buf[at:at] = bytes(rng.integers(256, size=int(rng.integers(1, 5)), dtype=np.uint8))
        elif kind == 2:
            del buf[at : at + int(rng.integers(1, 5))]
        else:
            del buf[max(at, 14):]
    return bytes(buf)


def test_mutated_files_read_and_encode_or_raise_melodia_errors():
    rng = np.random.default_rng(20261126)
    data = SOURCE.read_bytes()
    encodings = [get_encoding("piano"), get_encoding("band")]
    outcomes = {"ok": 0, "refused": 0}
    for i in range(200):
        mutant = mutate(data, rng)
        began = time.perf_counter()
        try:
            score = read_midi(mutant)
            for encoding in encodings:
                encoding.encode(score)
            outcomes["ok"] += 1
        except MelodiaError as err:
            assert "\n" not in str(err), f"mutant {i}: {err}"
            outcomes["refused"] += 1
        except Exception as err:  # pragma: no cover - the failure message is the point
            pytest.fail(f"mutant {i} raised {type(err).__name__}: {err}")
        assert time.perf_counter() - began < 2.0, f"mutant {i} took too long"
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0
