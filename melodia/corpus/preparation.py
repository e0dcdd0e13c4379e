"""Corpus preparation: MIDI files and scores -> token shards + manifest, resumable; and reading them.

A dataset directory holds::

    manifest.json       encoding, shard list, one record per file, skipped files with reasons
    shard-00000.npy     all files' ids back to back (uint16, memory-mappable with np.load)

Each file record is ``{"path", "sha1", "split", "shard", "offset", "events", "notes",
"duration_s", "format", "expressive", "source", "licence", "style"}``;
``ids = np.load(shard, mmap_mode="r")[offset : offset + events]``. ``format`` is ``midi``,
``musicxml``, ``abc`` or ``humdrum``. ``expressive`` is ``false`` for scores (played as written,
see :mod:`melodia.corpus.scores`) and ``null`` for MIDI: a MIDI file may be a human performance or a
sequenced score, which cannot be told in general. ``source`` is the ``music21:`` reference an item
came from and ``licence`` its licence/provenance (both ``null`` for the user's own files).
``style`` is the piece's style label (see below), ``null`` without one.

Style labels (``PrepareConfig.labels_from_folders``, ``melodia prepare --labels-from-folders``):
a piece's label is the name of its top folder below the source folder it was found in, so
``corpus/metal/a.mid`` and ``corpus/bossa/live/b.mid`` are ``metal`` and ``bossa`` when
``corpus`` is the source. A piece directly in the source folder, a file named on its own and a
``music21:`` piece get ``null`` (unlabelled, e.g. for an unconditioned model), and a warning.
The manifest's top-level ``styles`` lists every label, sorted. Re-running with the option
relabels pieces already in the dataset from where they are now, so labels follow the folders.

Sources are MIDI files, score files (MusicXML, ABC, kern), folders holding either (searched
recursively), and ``music21:`` corpus references. A multi-tune ABC file gives one record per tune,
``path`` ``file.abc#i``, hashed over the file's bytes plus the tune index.

Splits: a source folder holding ``maestro-v*.csv`` or ``maestro-v*.json`` uses MAESTRO's own
``split`` column (train/validation/test); a ``splits.csv`` (``midi_filename,split``) does the same
for any corpus. Every other file is assigned from the SHA-1 of its
bytes, so a file keeps its split whatever else is added to the corpus. This module imports no
torch; finding pieces, splits and labels is :mod:`melodia.corpus.sources`, the manifest, shards and
:class:`~melodia.corpus.shards.TokenDataset` are :mod:`melodia.corpus.shards`, and the training dataset with
crops and augmentation lives in ``melodia.training.crops``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from melodia.corpus.cache import load_item
from melodia.corpus.items import ScoreItem, is_music21_ref
from melodia.corpus.scores import ScoreConfig
from melodia.corpus.shards import MANIFEST, SPLITS, _new_manifest, _ShardWriter, read_manifest
from melodia.corpus.sources import Piece, find_pieces, folder_label, hash_split
from melodia.encoding import PerformanceEncoding, encoding_from_dict, get_encoding
from melodia.errors import DatasetError, MelodiaError
from melodia.midi import MAX_SECONDS, read_midi

log = logging.getLogger(__name__)

MAX_TEMPOS = 1024  # tempo changes kept per file record (the exact map: beat positions)


@dataclass
class PrepareConfig:
    """How ``prepare`` splits files and writes shards."""

    valid_fraction: float = 0.05  # share of hash-split files held out for validation
    test_fraction: float = 0.05  # share of hash-split files held out for test
    workers: int | None = None  # processes; None = all CPUs, 1 = in this process
    shard_events: int = 1 << 24  # ids per shard file before a new one starts (32 MiB of uint16)
    max_files: int | None = None  # encode at most this many pieces (the first, in sorted order)
    labels_from_folders: bool = False  # style label = top folder below the source folder
    max_seconds: float | None = MAX_SECONDS  # skip longer pieces (corrupt times); None = no limit
    scores: ScoreConfig = field(default_factory=ScoreConfig)  # reading MusicXML, ABC, kern

    def __post_init__(self) -> None:
        if not (0 <= self.valid_fraction and 0 <= self.test_fraction
                and self.valid_fraction + self.test_fraction < 1):
            raise ValueError("need 0 <= valid_fraction, test_fraction and their sum < 1")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.shard_events < 1:
            raise ValueError("shard_events must be >= 1")
        if self.max_files is not None and self.max_files < 1:
            raise ValueError("max_files must be >= 1")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError("max_seconds must be positive (or None for no limit)")


@dataclass
class PrepareReport:
    """What one ``prepare`` run did."""

    output: Path
    found: int = 0  # pieces found in the sources
    encoded: int = 0
    already: int = 0  # in the dataset before this run
    duplicates: list[str] = field(default_factory=list)  # same bytes as another file of this run
    skipped: list[dict[str, str]] = field(default_factory=list)
    events: int = 0
    duration_s: float = 0.0
    scores: int = 0  # score pieces read this run (music21 or the cache)
    scores_cached: int = 0  # of those, how many came from the conversion cache

    @property
    def failed(self) -> str | None:
        """Why the run produced no dataset (nothing encoded, nothing there before), else None."""
        if self.encoded or self.already:
            return None
        if not self.found:
            return f"nothing encoded into {self.output}: no MIDI or score files found"
        return (f"nothing encoded into {self.output}: none of the {self.found} piece(s) could be "
                f"encoded")

    def summary(self) -> str:
        lines = [f"{self.output}: encoded {self.encoded} file(s), {self.events:,} events, "
                 f"{self.duration_s / 3600:.2f} h of music; {self.already} already in the "
                 f"dataset; {len(self.duplicates)} duplicate(s); {len(self.skipped)} skipped"]
        if self.scores:
            lines.append(f"  scores read: {self.scores} ({self.scores_cached} from the cache)")
        lines += [f"  skipped {s['path']}: {s['reason']}" for s in self.skipped]
        return "\n".join(lines)


# -------------------------------------------------------------------------------- encoding


_MIDI_META = {"format": "midi", "expressive": None, "source": None, "licence": None}

#: Worker job: manifest name, score item (None = MIDI), encoding dict, ScoreConfig dict,
#: longest piece in seconds (None = no limit).
Job = tuple[str, ScoreItem | None, dict[str, Any], dict[str, Any], float | None]


def _encode_one(job: Job) -> dict[str, Any]:
    """Worker: read, hash and encode one piece; errors become a reason string, never a crash."""
    path, item, encoding_dict, score_dict, max_seconds = job
    try:
        data = Path(item.file if item else path).read_bytes()
    except OSError as err:
        return {"path": path, "error": err.strerror or str(err)}
    sha1 = item.sha1(data) if item else hashlib.sha1(data).hexdigest()
    meta, cached = _MIDI_META, None
    try:
        encoding = _worker_encoding(encoding_dict)
        if item is None:
            score = read_midi(data, max_seconds)
        else:
            score, cached = load_item(item, data, ScoreConfig.from_dict(score_dict))
            meta = {"format": item.format, "expressive": False, "source": item.source,
                    "licence": item.licence()}
        ids = encoding.encode(score, max_seconds)  # checks the length before quantizing
        q = encoding.quantize(score)
    except MelodiaError as err:
        reason = getattr(err, "reason", str(err))
        return {"path": path, "sha1": sha1, "error": reason}
    except Exception as err:  # a parser bug on a strange file must not end the run
        return {"path": path, "sha1": sha1, "error": f"{type(err).__name__}: {err}"}
    if len(q) == 0:
        return {"path": path, "sha1": sha1, "error": "no notes to encode"}
    duration = float(q["end"].max()) / encoding.config.steps_per_second
    tempos = [[round(float(t), 4), round(float(v), 4)]
              for t, v in score.tempos[:MAX_TEMPOS][["time_s", "qpm"]].tolist()]
    return {"path": path, "sha1": sha1, "ids": ids.astype(np.uint16), "notes": int(len(q)),
            "duration_s": round(duration, 3), "meta": {**meta, "tempos": tempos},
            "cached": cached}


_ENCODING_CACHE: dict[str, PerformanceEncoding] = {}


def _worker_encoding(encoding_dict: dict[str, Any]) -> PerformanceEncoding:
    key = json.dumps(encoding_dict, sort_keys=True)
    if key not in _ENCODING_CACHE:
        _ENCODING_CACHE[key] = encoding_from_dict(encoding_dict)
    return _ENCODING_CACHE[key]


def _results(jobs: list[Job], workers: int) -> Iterable[dict[str, Any]]:
    if workers == 1 or len(jobs) <= 1:
        yield from map(_encode_one, jobs)
        return
    with get_context("fork" if os.name == "posix" else "spawn").Pool(workers) as pool:
        yield from pool.imap(_encode_one, jobs, chunksize=4)


# --------------------------------------------------------------------------------- prepare


def prepare(
    sources: Iterable[str | Path],
    output: str | Path,
    encoding: PerformanceEncoding | None = None,
    config: PrepareConfig | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Encode every MIDI file and score piece of ``sources`` into token shards in ``output``.

    ``sources`` are files, folders and ``music21:`` references (see :func:`find_pieces`).
    Pieces already in ``output``'s manifest (same content hash) are not encoded again; corrupt
    files and pieces longer than ``config.max_seconds`` are skipped and listed with their reason
    (the manifest's ``skipped`` is saved as the run goes, so an interrupted run keeps it), and
    files with the same bytes as another are encoded once and listed in ``duplicates`` as
    ``{"path", "same_as"}``. A run that encodes nothing into a new ``output`` leaves no folder
    behind (``report.failed`` says why). Raises :class:`DatasetError` if ``output`` holds a
    dataset of another encoding.
    """
    encoding = encoding or get_encoding("piano")
    config = config or PrepareConfig()
    root = Path(output)
    created = not root.exists()
    if (root / MANIFEST).exists():
        manifest = read_manifest(root)
        if manifest.get("encoding") != encoding.to_dict():
            raise DatasetError(f"{root} holds a dataset with encoding {manifest.get('encoding')}, "
                               f"not {encoding.to_dict()}; use another output folder")
    else:
        manifest = _new_manifest(encoding)
    known = {f["sha1"]: f["path"] for f in manifest["files"]}
    before = {f["sha1"]: f for f in manifest["files"]}
    sources = list(sources)
    pieces = find_pieces(sources)[: config.max_files]
    styles = _styles(sources, pieces) if config.labels_from_folders else {}
    if manifest.get("styles") and not config.labels_from_folders:
        log.warning("%s has style labels; pieces new to it get none without "
                    "labels_from_folders (--labels-from-folders)", root)
    report = PrepareReport(output=root, found=len(pieces), already=0)
    seen_paths = {path for path, _, _ in pieces}
    skipped = {s["path"]: s for s in manifest["skipped"] if s["path"] not in seen_paths}
    duplicates = {d["path"]: d for d in manifest.get("duplicates", [])
                  if d["path"] not in seen_paths}
    maestro = {path: split for path, _, split in pieces}
    enc_dict, score_dict = encoding.to_dict(), config.scores.to_dict()
    jobs = [(path, item, enc_dict, score_dict, config.max_seconds) for path, item, _ in pieces]
    writer = _ShardWriter(root, manifest, config.shard_events)

    def note(table: dict[str, dict[str, str]], key: str, entry: dict[str, str]) -> None:
        table[key] = entry
        manifest["skipped"] = sorted(skipped.values(), key=lambda s: s["path"])
        manifest["duplicates"] = sorted(duplicates.values(), key=lambda d: d["path"])
        writer.save_soon()

    workers = config.workers or os.cpu_count() or 1
    bar = _progress(len(jobs), progress)
    try:
        for result in _results(jobs, workers):
            bar.update(1)
            path, sha1 = result["path"], result.get("sha1")
            if result.get("cached") is not None:
                report.scores += 1
                report.scores_cached += bool(result["cached"])
            if sha1 in before:
                report.already += 1
                record = before[sha1]
                if record["path"] != path and record["path"] in seen_paths:
                    report.duplicates.append(path)
                    note(duplicates, path, {"path": path, "same_as": record["path"]})
                if config.labels_from_folders and (record["path"] == path
                                                   or record["path"] not in styles):
                    _relabel(record, styles[path])  # the folder it is in now (it may have moved)
                continue
            if sha1 in known:
                report.duplicates.append(path)
                log.info("%s has the same content as %s: encoded once", path, known[sha1])
                note(duplicates, path, {"path": path, "same_as": known[sha1]})
                continue
            if "error" in result:
                note(skipped, path, {"path": path, "reason": result["error"]})
                log.warning("skipped %s: %s", path, result["error"])
                continue
            split = maestro[path] or hash_split(sha1, config.valid_fraction, config.test_fraction)
            if split not in SPLITS:
                split = {"valid": "validation", "val": "validation"}.get(split, "train")
            record = {"path": path, "sha1": sha1, "split": split, "notes": result["notes"],
                      "duration_s": result["duration_s"], **result["meta"],
                      "style": styles.get(path)}
            known[sha1] = path
            writer.add(record, result["ids"])
            report.encoded += 1
            report.events += len(result["ids"])
            report.duration_s += result["duration_s"]
    finally:
        bar.close()
        manifest["skipped"] = sorted(skipped.values(), key=lambda s: s["path"])
        manifest["duplicates"] = sorted(duplicates.values(), key=lambda d: d["path"])
        writer.flush()
    report.skipped = [s for s in manifest["skipped"] if s["path"] in seen_paths]
    if created and not manifest["files"]:  # nothing encoded: leave no dataset folder behind
        log.warning("nothing encoded: removing %s", root)
        shutil.rmtree(root, ignore_errors=True)
    return report


def _styles(sources: list[str | Path], pieces: list[Piece]) -> dict[str, str | None]:
    """Each piece's folder label (see :func:`folder_label`); warns about unlabelled pieces."""
    folders = [Path(s) for s in sources if not is_music21_ref(s) and Path(s).is_dir()]
    styles = {path: folder_label(item.file if item else path, folders)
              for path, item, _ in pieces}
    unlabelled = [path for path, style in styles.items() if style is None]
    if unlabelled:
        log.warning("%d piece(s) outside a style folder get no style label, e.g. %s",
                    len(unlabelled), unlabelled[0])
    return styles


def _relabel(record: dict[str, Any], style: str | None) -> None:
    if record.get("style") != style:
        log.info("%s: style %s -> %s", record["path"], record.get("style"), style)
        record["style"] = style


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="encoding", disable=not enabled, leave=False)



__all__ = ["PrepareConfig", "PrepareReport", "prepare"]
