"""The studio's work: settings from the page turned into the command line they mean, run one at a
time in a worker thread with progress, a cancel and a time limit, kept in a history.

Settings are checked exactly as the command line checks them: each field of the page is one
option of ``melodia generate`` / ``accompany`` / ``infill`` (:mod:`~melodia.cli.studio.settings`), the argument list
is parsed by melodia's own parser, and the command's own code runs it. So a bad value gets the
command line's one-line message, and every result can be made again from the ``melodia ...``
line shown beside it. Files are written only under the studio's output folder, under names the
studio makes; nothing a request says is ever used as a path.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shlex
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from melodia.cli.common import collecting
from melodia.cli.studio import history
from melodia.cli.studio.settings import (COMMANDS, MAX_TEXT, Upload, length, plain, precheck,
                                         to_argv)
from melodia.errors import MelodiaError, RenderError
from melodia.midi import read_midi

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 300.0
MAX_ROLL_NOTES = 50_000  # notes sent to the page's piano roll
MAX_WAITING = 8  # jobs queued behind the one running; more are refused


class StudioError(MelodiaError):
    """A request the studio refuses: one line for the page."""


class QueueFull(StudioError):
    """The queue holds :data:`MAX_WAITING` jobs already."""


class Refusing(argparse.ArgumentParser):
    """A parser that refuses bad options with a :class:`StudioError` instead of exiting (the
    studio builds melodia's own parser with it)."""

    def error(self, message: str):
        raise StudioError(message)


@dataclass
class Job:
    """One generation: its settings, the command line they mean, its state and files."""

    id: str
    command: str
    settings: dict[str, Any]
    argv: list[str]
    line: str
    state: str = "queued"  # queued, running, done, failed, cancelled
    message: str = ""
    events: int = 0
    seconds_done: float = 0.0
    started: float | None = None
    elapsed: float | None = None
    midi: Path | None = None
    audio: Path | None = None
    seed: int | None = None
    partial: bool = False  # cancelled or timed out: the files hold what was made until then
    created: float = field(default_factory=time.time)
    given: str | None = None  # the name of the file it was given, as the page showed it
    info: dict[str, Any] = field(default_factory=dict)  # what the command told (see tell)
    takes: int = 1  # variations made at once (generate --num): ID-1.mid, ID-2.mid, ...
    total_s: float | None = None  # the music's length where it is known before (progress)
    bars_total: int | None = None  # ... or its bars, timed once the tempo is told
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    stopped: str = ""  # why the watch stopped it, set by the watch

    def public(self) -> dict[str, Any]:
        """What the page sees (no paths)."""
        return {"id": self.id, "command": self.command, "settings": self.settings,
                "line": self.line, "state": self.state, "message": self.message,
                "events": self.events, "seconds_done": round(self.seconds_done, 2),
                "elapsed": None if self.elapsed is None else round(self.elapsed, 2),
                "midi": f"/files/{self.id}.mid" if self.midi else None,
                "audio": f"/files/{self.id}.wav" if self.audio else None, "seed": self.seed,
                "partial": self.partial, "created": round(self.created, 3),
                "given": self.given, "info": dict(self.info), "progress": self._progress(),
                "takes": [{"midi": f"/files/{self.id}-{k}.mid" if self.midi else None,
                           "audio": f"/files/{self.id}-{k}.wav" if self.audio else None}
                          for k in range(1, self.takes + 1)] if self.takes > 1 else []}

    def file(self, kind: str, take: int | None = None) -> Path | None:
        """The job's ``mid`` or ``wav`` file (of variation ``take``, counted from 1)."""
        first = {"mid": self.midi, "wav": self.audio}.get(kind)
        if first is None or take is not None and not 1 <= take <= self.takes:
            return None
        return first if take in (None, 1) else first.with_name(f"{self.id}-{take}.{kind}")

    def _progress(self) -> float | None:
        """0..1 where the music's length is known (None: it is not)."""
        if self.state == "done":
            return 1.0
        total = self.total_s
        qpm = (self.info.get("band") or {}).get("qpm")
        if total is None and self.bars_total and qpm:  # 4/4 bars at the tempo drawn
            total = self.bars_total * 4 * 60.0 / float(qpm)
        if not total:
            return None
        return round(min(self.seconds_done / total, 1.0), 3)

    def record(self) -> dict[str, Any]:
        """What is kept on disk (see :mod:`melodia.cli.studio.history`)."""
        record = {**self.public(), "midi": self.midi is not None,
                  "audio": self.audio is not None, "seconds_done": round(self.seconds_done, 3),
                  "takes": self.takes}
        del record["progress"]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], out: Path) -> "Job":
        """A job of an earlier run, read back; its files only where they are still on disk,
        and a job that was cut off by the studio's end marked so."""
        stem = record["id"] if record["takes"] == 1 else f"{record['id']}-1"
        midi, audio = out / f"{stem}.mid", out / f"{stem}.wav"
        job = cls(record["id"], record["command"], record["settings"], [], record["line"],
                  record["state"], record["message"], record["events"],
                  float(record["seconds_done"]), None, record["elapsed"],
                  midi if record["midi"] and midi.is_file() else None,
                  audio if record["audio"] and audio.is_file() else None, record["seed"],
                  record["partial"], float(record["created"]), record["given"],
                  record.get("info") if isinstance(record.get("info"), dict) else {},
                  record["takes"])
        if job.state in ("queued", "running"):
            job.state, job.message = "failed", "the studio stopped before this job finished"
        return job


Parse = Callable[[list[str]], argparse.Namespace]
Run = Callable[[argparse.Namespace], int]


class Studio:
    """The jobs of one studio, run one at a time in a worker thread: ``parse`` checks an
    argument list as the command line does (raising :class:`StudioError`), ``run`` holds each
    command's own code (``melodia.cli``'s ``_run_<command>``). The history is read back from
    ``out`` and every job's record kept there (:mod:`melodia.cli.studio.history`)."""

    def __init__(self, out: Path, models: dict[str, str], parse: Parse, run: dict[str, Run],
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
        self.parse, self.run = parse, run
        self.out = out.resolve()
        (self.out / "uploads").mkdir(parents=True, exist_ok=True)
        self._lock_file = history.lock_folder(self.out)
        history.bound_uploads(self.out / "uploads", keep=0)  # an earlier run's: no job has them
        self.models, self.time_limit_s = models, time_limit_s
        self.jobs: dict[str, Job] = {}
        self.skipped: list[str] = []  # records not read back, a line each
        for record in history.read_records(self.out, self.skipped):
            job = Job.from_record(record, self.out)
            self.jobs[job.id] = job
            if job.state != record["state"]:
                history.save_record(self.out, job.record())
        self.uploads: dict[str, Upload] = {}
        self._number = history.highest_number(self.out)
        self._lock = threading.Lock()
        self._queue: list[Job] = []
        self._wake = threading.Condition(self._lock)
        self._worker = threading.Thread(target=self._work, name="melodia-studio", daemon=True)
        self._worker.start()

    # ---------------------------------------------------------------------------- uploads

    def upload(self, data: bytes, name: str) -> Upload:
        """Keep a dropped MIDI file (checked as ``encode`` reads files) in ``uploads/`` until a
        job takes its own copy; the folder keeps the newest :data:`history.MAX_UPLOADS`."""
        shown = Path(name or "upload.mid").name[:MAX_TEXT] or "upload.mid"
        score = read_midi(data, name=shown)  # one clear line for what is not MIDI
        upload_id = uuid.uuid4().hex
        path = self.out / "uploads" / f"{upload_id}.mid"
        path.write_bytes(data)
        upload = Upload(upload_id, shown, path, round(score.end_s, 2), score.note_count)
        with self._lock:
            self.uploads[upload_id] = upload
            for gone in history.bound_uploads(self.out / "uploads"):
                self.uploads.pop(gone, None)
        return upload

    # ------------------------------------------------------------------------------- jobs

    def submit(self, request: dict[str, Any]) -> Job:
        """A job for the page's ``request`` (``command``, ``model``, ``settings``, ``upload``),
        checked as the command line checks it, queued (refused when :data:`MAX_WAITING` wait)."""
        command = str(request.get("command") or "generate")
        model = str(request.get("model") or "piano")
        if model not in self.models:
            raise StudioError(f"unknown model {model!r}: choose {', '.join(self.models)}")
        settings = request.get("settings") or {}
        if not isinstance(settings, dict):
            raise StudioError("settings must be an object of fields")
        upload = None
        if request.get("upload"):
            with self._lock:
                upload = self.uploads.get(str(request["upload"]))
            if upload is None or not upload.path.is_file():
                raise StudioError("that file is no longer here: drop it again")
        if command in COMMANDS and settings.get("seed") in (None, ""):
            settings = {**settings, "seed": secrets.randbelow(2**31)}  # so the line replays it
        argv, shown = to_argv(command, settings, self.models[model], upload)
        try:
            args = self.parse(argv)  # every value checked now, before the job is queued
            precheck(settings, *self._model_facts(model))
        except (StudioError, ValueError) as err:
            raise StudioError(plain(str(err), command)) from None
        with self._wake:
            waiting = len(self._queue)
            if waiting >= MAX_WAITING:
                raise QueueFull(f"{waiting} jobs are waiting already: let one finish or "
                                "cancel one first")
            self._number += 1
            job_id = history.job_id(self._number, command)
            if upload is not None:  # the job's own copy: the upload may go, the job keeps it
                given = str(history.keep_given(upload.path, self.out, job_id))
                argv = [given if arg == str(upload.path) else arg for arg in argv]
            job = Job(job_id, command, {"model": model, **settings}, argv,
                      "melodia " + shlex.join([*shown, "-o", f"{job_id}.mid"]), seed=args.seed,
                      given=None if upload is None else upload.name)
            job.total_s, job.bars_total = length(command, args, upload)
            history.save_record(self.out, job.record())
            self.jobs[job_id] = job
            self._queue.append(job)
            self._wake.notify()
        return job

    def _model_facts(self, model: str) -> tuple[bool, Callable[[], list[str]]]:
        """Whether ``model`` plays a band, and how to read its styles (for :func:`precheck`)."""
        from melodia.generation.session import band_styles  # deferred: torch
        from melodia.model.registry import load_model

        checkpoint = load_model(self.models[model])  # cached: the job loads it again for free
        return checkpoint.encoding.name == "band", lambda: band_styles(checkpoint)

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a waiting one leaves the queue at once; a running one stops at its
        next progress report and keeps what it made where its command can (generate)."""
        job = self.get(job_id)
        job.cancel.set()
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                job.state, job.message = "cancelled", "cancelled before it started"
                history.save_record(self.out, job.record())
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise StudioError(f"no job {job_id!r}")
        return job

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return [job.public() for job in reversed(list(self.jobs.values()))]

    def waiting(self, job: Job) -> int:
        """How many jobs are ahead of ``job`` in the queue (0: it runs next, or is not queued)."""
        with self._lock:
            return self._queue.index(job) if job in self._queue else 0

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                job = self._queue.pop(0)
                job.state, job.started = "running", time.perf_counter()
            history.save_record(self.out, job.record())
            self._run(job)
            history.save_record(self.out, job.record())

    def _run(self, job: Job) -> None:
        from melodia.generation.decoding import Stopped, watched  # deferred: torch, worker only

        if job.cancel.is_set():  # cancelled as the worker took it from the queue
            job.state, job.message, job.elapsed = "cancelled", "cancelled before it started", 0.0
            return
        deadline = job.started + self.time_limit_s

        def report(events: int, seconds: float) -> None:
            job.events, job.seconds_done = events, seconds
            if job.cancel.is_set():
                job.stopped = "cancelled"
            elif time.perf_counter() > deadline:
                job.stopped = f"stopped at the time limit of {self.time_limit_s:g} s"
            if job.stopped:
                raise Stopped(job.stopped)

        try:
            with watched(report), collecting() as told:
                job.info = told  # filled as the command tells (public() reads a copy)
                self._make(job)
            job.state = "cancelled" if job.stopped else "done"
            if job.stopped:  # the command kept what was made: a partial result
                job.partial = True
                job.message = (f"{job.stopped}: kept the {job.seconds_done:.1f} s made so far"
                               + (f"; {job.message}" if job.message else ""))
        except Stopped as stop:
            job.state, job.message = "cancelled", str(stop)
        except (MelodiaError, OSError, ValueError) as err:
            job.state, job.message = "failed", " ".join(str(err).split())[:500]
        except Exception as err:  # noqa: BLE001 - the page gets a line, the log the traceback
            log.exception("studio job %s failed", job.id)
            job.state, job.message = "failed", f"internal error ({type(err).__name__}); see the log"
        finally:
            job.elapsed = time.perf_counter() - job.started

    def _make(self, job: Job) -> None:
        """Run the job's command with its outputs in the studio's folder; then its audio."""
        args = self.parse(job.argv)
        takes = getattr(args, "num", 1) or 1  # generate --num K writes ID-1.mid .. ID-K.mid
        args.output, args.audio, args.force, args.plot = (self.out / f"{job.id}.mid", None,
                                                          False, None)
        self.run[job.command](args)
        job.takes = takes
        job.midi = self.out / (f"{job.id}.mid" if takes == 1 else f"{job.id}-1.mid")
        if job.stopped:  # the stream time of the last report: the file's own length is truer
            job.seconds_done = read_midi(job.midi).end_s
        self._render(job)

    def _render(self, job: Job) -> None:
        from melodia.output.audio import render  # deferred: FluidSynth, in the worker only

        try:
            for take in range(1, job.takes + 1):
                midi = job.file("mid", take)
                render(midi, midi.with_suffix(".wav"))
            job.audio = job.midi.with_suffix(".wav")
        except (RenderError, ImportError) as err:
            job.message = f"no audio: {' '.join(str(err).split())[:300]}"


__all__ = ["Job", "MAX_WAITING", "QueueFull", "Refusing", "Studio", "StudioError"]
