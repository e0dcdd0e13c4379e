"""A prepared dataset on disk: its manifest, the token shards, and reading them back. No torch.

A dataset directory holds::

    manifest.json       encoding, shard list, one record per file, skipped files with reasons
    shard-00000.npy     all files' ids back to back (uint16, memory-mappable with np.load)

``ids = np.load(shard, mmap_mode="r")[offset : offset + events]`` for a file record; the
record's fields are described in :mod:`melodia.corpus.preparation`, which writes datasets
(:func:`melodia.corpus.preparation.prepare`). :class:`TokenDataset` reads one; the training dataset with crops
and augmentation lives in ``melodia.training.crops``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from melodia.encoding import PerformanceEncoding, encoding_from_dict
from melodia.errors import DatasetError, EncodingError
from melodia.util.atomic import atomic_write

MANIFEST = "manifest.json"
SPLITS = ("train", "validation", "test")


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root} is not a melodia dataset (no {MANIFEST}); "
                           f"create one with `melodia prepare SRC -o {root}`")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from None
    missing = [k for k in ("encoding", "files")
               if not isinstance(manifest, dict) or k not in manifest]
    if missing or not isinstance(manifest["files"], list):
        raise DatasetError(f"{path} is damaged: no {' or '.join(missing) or 'list of files'}; "
                           f"re-run `melodia prepare`")
    return manifest


def _new_manifest(encoding: PerformanceEncoding) -> dict[str, Any]:
    return {"format": "melodia-dataset", "version": 1, "encoding": encoding.to_dict(),
            "vocab_size": encoding.vocab_size, "dtype": "uint16", "shards": [], "files": [],
            "skipped": []}


class _ShardWriter:
    """Buffers ids and writes full shards, saving the manifest after each (resume point)."""

    def __init__(self, root: Path, manifest: dict[str, Any], shard_events: int) -> None:
        self.root, self.manifest, self.shard_events = root, manifest, shard_events
        self.pending: list[tuple[dict[str, Any], np.ndarray]] = []
        self.size = 0
        self.saved_at = -float("inf")

    def save_soon(self, every_s: float = 1.0) -> None:
        """Save the manifest (skipped files, duplicates) unless saved under ``every_s`` ago."""
        if time.monotonic() - self.saved_at >= every_s:
            self._save()

    def add(self, record: dict[str, Any], ids: np.ndarray) -> None:
        self.pending.append((record, ids))
        self.size += len(ids)
        if self.size >= self.shard_events:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            name = f"shard-{len(self.manifest['shards']):05d}.npy"
            offset = 0
            for record, ids in self.pending:
                record.update(shard=name, offset=offset, events=int(len(ids)))
                offset += len(ids)
            ids = np.concatenate([ids for _, ids in self.pending])
            atomic_write(self.root / name, lambda f: np.save(f, ids))
            self.manifest["shards"].append(name)
            self.manifest["files"].extend(record for record, _ in self.pending)
            self.pending, self.size = [], 0
        self._save()

    def _save(self) -> None:
        self.manifest["styles"] = sorted({f["style"] for f in self.manifest["files"]
                                          if f.get("style") is not None})
        data = json.dumps(self.manifest, indent=1).encode()
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / MANIFEST, lambda f: f.write(data))
        self.saved_at = time.monotonic()


# --------------------------------------------------------------------------------- reading


class TokenDataset:
    """A prepared dataset: its encoding and each file's ids (memory-mapped, no copy)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        try:
            self.encoding = encoding_from_dict(self.manifest["encoding"])
        except EncodingError as err:
            raise DatasetError(f"{self.root / MANIFEST}: {err}") from None
        self._shards: dict[str, np.ndarray] = {}

    def files(self, split: str | None = None) -> list[dict[str, Any]]:
        if split is not None and split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; choose one of {SPLITS}")
        return [f for f in self.manifest["files"] if split is None or f["split"] == split]

    def _shard(self, name: str) -> np.ndarray:
        if name not in self._shards:
            path = self.root / name
            if not path.is_file():
                raise DatasetError(f"{path} is missing; re-run `melodia prepare`")
            try:  # a torn header raises anything from ValueError to tokenize.TokenError
                shard = np.load(path, mmap_mode="r", allow_pickle=False)
            except Exception as err:
                raise DatasetError(f"{path} is damaged ({type(err).__name__}: "
                                   f"{str(err)[:120]}); re-run `melodia prepare`") from None
            if shard.ndim != 1 or shard.dtype.kind not in "ui":
                raise DatasetError(f"{path} is damaged: not a flat array of event ids; re-run "
                                   f"`melodia prepare`")
            self._shards[name] = shard
        return self._shards[name]

    def ids(self, record: dict[str, Any]) -> np.ndarray:
        try:
            shard, offset, events = record["shard"], int(record["offset"]), int(record["events"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{self.root / MANIFEST} is damaged: a file record lacks its "
                               f"shard, offset or events ({str(record)[:80]})") from None
        ids = self._shard(shard)[offset : offset + events]
        if offset < 0 or len(ids) != events:
            raise DatasetError(f"{self.root / shard} is shorter than {MANIFEST} says (a file at "
                               f"{offset} with {events} events); re-run `melodia prepare`")
        return ids

    def sequences(self, split: str | None = None) -> list[np.ndarray]:
        """One id array per file of ``split`` (all files if ``None``)."""
        return [self.ids(f) for f in self.files(split)]

    def styles(self) -> list[str]:
        """Every style label in the dataset, sorted; ``[]`` if it was prepared without labels."""
        return sorted({f["style"] for f in self.manifest["files"] if f.get("style") is not None})

    def sequences_with_styles(
        self, split: str | None = None
    ) -> list[tuple[np.ndarray, str | None]]:
        """``(ids, style)`` per file of ``split`` (all if ``None``); style ``None``: unlabelled."""
        return [(self.ids(f), f.get("style")) for f in self.files(split)]

    def __repr__(self) -> str:
        counts = {s: len(self.files(s)) for s in SPLITS}
        return f"TokenDataset({str(self.root)!r}, {self.encoding.name}, files={counts})"


__all__ = ["MANIFEST", "SPLITS", "TokenDataset", "read_manifest"]
