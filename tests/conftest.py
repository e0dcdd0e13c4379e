"""Shared fixtures: real MIDI files from data/ (and ../shared/corpus when it is beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from melodia.midi import PEDAL_DTYPE, Score, Track, make_notes, write_midi

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "midi"
MALFORMED = Path(__file__).parent / "data" / "malformed"
SHARED = ROOT.parent / "shared" / "corpus"  # developers' extra corpus (MAESTRO piano); not in CI


def real_midi_files(limit_per_folder: int | None = None) -> list[Path]:
    """The committed demo corpus, plus the developers' shared corpus when present."""
    folders = [DATA / "freedoom", DATA / "chorales"]
    if SHARED.is_dir():
        folders += [SHARED / "piano", SHARED / "band" / "mma"]
    files = []
    for folder in folders:
        found = sorted(folder.glob("*.mid"))
        files += found[:limit_per_folder] if limit_per_folder else found
    return files


def pedal_track(notes: list[tuple[float, float, int, int]],
                pedal: list[tuple[float, int]] = ()) -> Track:
    start, end, pitch, vel = zip(*notes) if notes else ([], [], [], [])
    return Track(notes=make_notes(start, end, pitch, vel),
                 pedal=np.array(list(pedal), dtype=PEDAL_DTYPE))


@pytest.fixture
def piano_with_pedal(tmp_path: Path) -> Path:
    """A real MIDI file with sustain pedal: a performance-like phrase written to disk."""
    rng = np.random.default_rng(0)
    starts = np.cumsum(rng.uniform(0.05, 0.4, 200))
    ends = starts + rng.uniform(0.05, 1.0, 200)
    pitches = rng.integers(40, 90, 200)
    vels = rng.integers(20, 120, 200)
    pedal = []
    for t in np.arange(0.0, starts[-1], 2.0):
        pedal += [(t + 0.1, 100), (t + 1.6, 0)]
    track = pedal_track(list(zip(starts, ends, pitches, vels)), pedal)
    return write_midi(Score(tracks=[track]), tmp_path / "pedal.mid")


@pytest.fixture
def one_thread():
    """Torch on one thread: small per-event ops are fastest so (and far slower on a busy CPU)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Converted scores are cached in a temporary folder, never in the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
