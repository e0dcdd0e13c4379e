"""Corpus sources: which pieces a list of files, folders and ``music21:`` references holds, the
split each goes to and its style label. No torch, no encoding here.

Splits: a source folder holding ``maestro-v*.csv`` or ``maestro-v*.json`` uses MAESTRO's own
``split`` column (train/validation/test); a ``splits.csv`` (``midi_filename,split``) does the same
for any corpus (:func:`maestro_splits`). Every other file is assigned from the SHA-1 of its bytes
(:func:`hash_split`), so a file keeps its split whatever else is added to the corpus. A piece's
style label is its top folder below the source folder (:func:`folder_label`). Encoding the pieces
into a dataset is :func:`melodia.corpus.preparation.prepare`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable

from melodia.corpus.items import SCORE_SUFFIXES, ScoreItem, find_score_items, is_music21_ref
from melodia.errors import DatasetError, MelodiaError

MIDI_SUFFIXES = {".mid", ".midi", ".smf", ".kar"}


def find_midi_files(sources: Iterable[str | Path]) -> list[tuple[Path, str | None]]:
    """Every MIDI file under ``sources`` (sorted), each with its MAESTRO split if it has one."""
    found: list[tuple[Path, str | None]] = []
    for source in map(Path, sources):
        if source.is_file():
            found.append((source, None))
        elif source.is_dir():
            splits = maestro_splits(source)
            for path in sorted(source.rglob("*")):
                if path.suffix.lower() in MIDI_SUFFIXES and path.is_file():
                    found.append((path, splits.get(path.relative_to(source).as_posix())))
        else:
            raise DatasetError(f"no such file or folder: {source}")
    return found


#: One piece to encode: its name in the manifest, its score item (``None`` for MIDI), its split
#: from a split table (``None`` = by hash).
Piece = tuple[str, ScoreItem | None, str | None]


def find_pieces(sources: Iterable[str | Path]) -> list[Piece]:
    """Every MIDI file, score piece and ``music21:`` corpus piece of ``sources``, in order."""
    found: list[Piece] = []
    for source in sources:
        if is_music21_ref(source):
            try:
                found += [(item.path, item, None) for item in find_score_items(str(source))]
            except MelodiaError as err:
                raise DatasetError(str(err)) from None
            continue
        source = Path(source)
        if source.is_file():
            found += _pieces_of(source, None)
        elif source.is_dir():
            splits = maestro_splits(source)
            for path in sorted(source.rglob("*")):
                suffix = path.suffix.lower()
                if (suffix in MIDI_SUFFIXES or suffix in SCORE_SUFFIXES) and path.is_file():
                    found += _pieces_of(path, splits.get(path.relative_to(source).as_posix()))
        else:
            raise DatasetError(f"no such file or folder: {source}")
    return found


def _pieces_of(path: Path, split: str | None) -> list[Piece]:
    if path.suffix.lower() in SCORE_SUFFIXES:
        return [(item.path, item, split) for item in find_score_items(path)]
    return [(str(path), None, split)]


def maestro_splits(folder: Path) -> dict[str, str]:
    """``{midi_filename: split}`` from a split table in ``folder``, else ``{}``.

    Recognised: MAESTRO's ``maestro-v*.csv`` / ``.json``, and a plain ``splits.csv`` with columns
    ``midi_filename,split`` (paths relative to the folder) for corpora too small for hash splits.
    """
    for meta in sorted(folder.glob("maestro-v*.csv")) + sorted(folder.glob("splits.csv")):
        with meta.open(newline="") as f:
            return {row["midi_filename"]: row["split"] for row in csv.DictReader(f)}
    for meta in sorted(folder.glob("maestro-v*.json")):
        data = json.loads(meta.read_text())
        if isinstance(data, dict):  # v3: column-oriented {"midi_filename": {"0": ...}, ...}
            return {data["midi_filename"][k]: data["split"][k] for k in data["midi_filename"]}
        return {row["midi_filename"]: row["split"] for row in data}  # v1/v2: list of records
    return {}


def folder_label(file: str | Path, folders: Iterable[Path]) -> str | None:
    """``file``'s top folder below the first of ``folders`` holding it.

    ``None`` if no folder holds it or it lies directly in one: ``folder_label("c/metal/x/a.mid",
    [Path("c")]) == "metal"``, ``folder_label("c/a.mid", [Path("c")]) is None``.
    """
    file = Path(file)
    for folder in folders:
        try:
            parts = file.relative_to(folder).parts
        except ValueError:
            continue
        return parts[0] if len(parts) > 1 else None
    return None


def hash_split(sha1: str, valid_fraction: float, test_fraction: float) -> str:
    """Deterministic split from a content hash: the same bytes always land in the same split."""
    u = int(sha1[:12], 16) / float(1 << 48)
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "validation"
    return "train"


__all__ = ["MIDI_SUFFIXES", "Piece", "find_midi_files", "find_pieces", "folder_label",
           "hash_split", "maestro_splits"]
