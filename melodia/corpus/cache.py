"""A disk cache of converted scores, so music21 (0.1-2 s a score) parses each piece once.

One small ``.npz`` per piece under ``$XDG_CACHE_HOME/melodia/scores`` (``~/.cache/melodia/scores``
when unset), or ``ScoreConfig.cache_dir``. The key is the piece's content hash (file bytes, plus
the tune index for one tune of many), the tempo used for unmarked scores, melodia's version and
:data:`CONVERTER_VERSION`. The cache holds the score *before* humanisation, which is cheap and
seeded, so changing ``--humanize`` reuses it. Files are written atomically; an unreadable entry
is converted again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from melodia import __version__
from melodia.corpus.items import ScoreItem
from melodia.corpus.scores import ScoreConfig, convert_item, humanize
from melodia.midi import Score, Track
from melodia.util.atomic import atomic_write

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1  # bump when melodia.corpus.scores converts differently


def cache_root(config: ScoreConfig) -> Path:
    """The folder of cached conversions for ``config``."""
    if config.cache_dir:
        return Path(config.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "melodia" / "scores"


def cache_path(config: ScoreConfig, sha1: str) -> Path:
    key = f"{sha1}:{config.default_qpm!r}:{__version__}:{CONVERTER_VERSION}"
    name = hashlib.sha1(key.encode()).hexdigest()
    return cache_root(config) / name[:2] / f"{name}.npz"


def save_score(path: Path, score: Score) -> None:
    """Write ``score`` as an ``.npz`` (no pickles) atomically."""
    arrays = {"tempos": score.tempos,
              "programs": np.array([t.program for t in score.tracks], dtype=np.int16),
              "drums": np.array([t.is_drum for t in score.tracks], dtype=bool),
              "names": np.array([t.name for t in score.tracks], dtype=str)}
    for i, track in enumerate(score.tracks):
        arrays[f"notes{i}"] = track.notes
        arrays[f"pedal{i}"] = track.pedal
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def load_score(path: Path) -> Score:
    with np.load(path, allow_pickle=False) as z:
        tracks = [Track(notes=z[f"notes{i}"], program=int(program), is_drum=bool(drum),
                        name=str(name), pedal=z[f"pedal{i}"])
                  for i, (program, drum, name) in enumerate(zip(z["programs"], z["drums"],
                                                                z["names"]))]
        return Score(tracks=tracks, tempos=z["tempos"])


def load_item(item: ScoreItem, data: bytes, config: ScoreConfig) -> tuple[Score, bool]:
    """The humanised :class:`Score` of ``item`` (whose file holds ``data``), from the cache
    when it is there; and whether it was.

    Raises
    ------
    ScoreReadError
        music21 cannot parse the item.
    """
    sha1 = item.sha1(data)
    path = cache_path(config, sha1) if config.cache else None
    score = None
    if path is not None and path.is_file():
        try:
            score = load_score(path)
        except (OSError, ValueError, KeyError) as err:
            log.info("cache entry %s unreadable (%s); converting again", path, err)
    cached = score is not None
    if score is None:
        score = convert_item(item, data, config)
        if path is not None:
            try:
                save_score(path, score)
            except OSError as err:
                log.warning("cannot write the score cache %s: %s", path, err)
    return humanize(score, config, sha1), cached
