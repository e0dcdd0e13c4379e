"""The studio's history on disk: nothing it made is lost to a restart.

Every job keeps a record, ``ID.json``, written atomically beside its results (``ID.mid``,
``ID.wav``) and its own copy of the file it was given (``ID-given.mid``), each time its state
changes. A studio reads the records of its output folder back when it starts, so the page shows
and plays everything made before; job ids go on from the highest number found there (never
repeating, past 9999 too: ``10000-generate``). One studio at a time owns a folder (a lock held
while it runs). Dropped files wait in ``uploads/`` until a job uses them: that folder is
bounded, the oldest dropped file going first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from melodia.errors import MelodiaError
from melodia.util.atomic import atomic_write

JOB_ID = re.compile(r"^(\d{4,})-([a-z]+)$")
_NUMBERED = re.compile(r"^(\d{4,})-[a-z]+")  # every file a job wrote starts with its id
MAX_UPLOADS = 32  # dropped files waiting for a job
MAX_UPLOAD_BYTES = 128 * 2**20  # ... and their bytes together
LOCK = ".melodia-studio.lock"
STATES = ("queued", "running", "done", "failed", "cancelled")
# what a record holds, with its type (a record with another type for a field is not read)
FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "command": str, "settings": dict, "line": str, "state": str, "message": str,
    "events": int, "seconds_done": (int, float), "elapsed": (int, float, type(None)),
    "seed": (int, type(None)), "partial": bool, "created": (int, float),
    "midi": bool, "audio": bool, "given": (str, type(None)), "takes": int,
}


class FolderInUse(MelodiaError):
    """Another studio writes into this output folder."""


def lock_folder(out: Path):
    """Hold ``out``'s lock for as long as the returned file stays open (the studio's life);
    a second studio on the same folder is refused in one line."""
    import fcntl  # deferred: POSIX only; the studio runs where its lock works

    handle = open(out / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise FolderInUse(f"another melodia studio is using {out}: stop it, or give this one "
                          "another --out") from None
    return handle


def highest_number(out: Path) -> int:
    """The highest job number of any file in ``out`` (0 for none): the next job goes on from it."""
    numbers = (int(m.group(1)) for p in out.iterdir() if (m := _NUMBERED.match(p.name)))
    return max(numbers, default=0)


def job_id(number: int, command: str) -> str:
    return f"{number:04d}-{command}"


def job_number(job: str) -> int:
    match = JOB_ID.match(job)
    if match is None:
        raise ValueError(f"not a job id: {job!r}")
    return int(match.group(1))


def save_record(out: Path, record: dict[str, Any]) -> None:
    """Write a job's record atomically (a kill leaves the old record or the new, never half)."""
    data = json.dumps(record, indent=1, sort_keys=True).encode()
    atomic_write(out / f"{record['id']}.json", lambda f: f.write(data))


def read_records(out: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """The records in ``out``, oldest job first; a record that cannot be read is skipped, with
    one line for it in ``skipped`` (the file and its results stay on disk, untouched)."""
    found = []
    for path in out.glob("*.json"):
        if JOB_ID.match(path.stem) is None:
            continue
        try:
            record = _checked(json.loads(path.read_text()), path.stem)
        except (OSError, ValueError) as err:
            if skipped is not None:
                skipped.append(f"{path.name} not read back: {' '.join(str(err).split())}")
            continue
        found.append(record)
    return sorted(found, key=lambda r: job_number(r["id"]))


def _checked(record: Any, stem: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for name, kind in FIELDS.items():
        value = record.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ValueError(f"its {name!r} is missing or of the wrong type")
    if record["id"] != stem or record["state"] not in STATES:
        raise ValueError("its id or state does not match")
    return record


def keep_given(upload: Path, out: Path, job: str) -> Path:
    """The job's own copy of the file it was given (a hard link where the disk allows)."""
    given = out / f"{job}-given.mid"
    try:
        os.link(upload, given)
    except OSError:
        shutil.copyfile(upload, given)
    return given


def bound_uploads(folder: Path, keep: int = MAX_UPLOADS, max_bytes: int = MAX_UPLOAD_BYTES
                  ) -> list[str]:
    """Remove the oldest dropped files until at most ``keep`` files of ``max_bytes`` in all
    are left; the names (upload ids) removed."""
    files = sorted(folder.glob("*.mid"), key=lambda p: (p.stat().st_mtime, p.name))
    sizes = [p.stat().st_size for p in files]
    removed = []
    while files and (len(files) > keep or sum(sizes) > max_bytes):
        oldest = files.pop(0)
        sizes.pop(0)
        oldest.unlink(missing_ok=True)
        removed.append(oldest.stem)
    return removed


__all__ = ["FIELDS", "FolderInUse", "JOB_ID", "MAX_UPLOADS", "MAX_UPLOAD_BYTES", "bound_uploads",
           "highest_number", "job_id", "job_number", "keep_given", "lock_folder", "read_records",
           "save_record"]
