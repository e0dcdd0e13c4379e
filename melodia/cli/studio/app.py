"""The studio's web server: one page and a small JSON API, on Starlette (served by uvicorn).

Routes (every answer JSON unless it is the page, its two files or a result file):

- ``GET /``, ``GET /static/studio.js|studio.css``: the page (shipped in the package: no CDN);
- ``GET /api/options``: the models, the band's styles, the knobs' limits;
- ``POST /api/upload`` (the file's bytes; ``X-Filename``): a primer or a song, at most
  :data:`MAX_UPLOAD` bytes, read as ``encode`` reads files;
- ``POST /api/jobs`` (``{"command", "model", "settings", "upload"}``): queue a generation;
- ``GET /api/jobs/ID``, ``POST /api/jobs/ID/cancel``, ``GET /api/jobs/ID/roll``: its progress,
  its cancel, its notes for the piano roll; ``GET /api/history``: every job so far;
- ``GET /files/ID.mid|.wav`` (``ID-K.mid``: variation K): a result, by the job's id alone (no
  path from a request is used).

Only the musician's page gets this far: :mod:`melodia.cli.studio.door` checks every request's
Host, Origin and token first. JSON comes as ``application/json`` and files as
``application/octet-stream`` or ``audio/midi`` (what a browser sends from another site without
asking, ``text/plain`` or a form, is refused).

Every refusal is ``{"error": "one line"}`` with status 400 (404 for what is not there); an
unexpected failure is logged with its traceback and the page gets one line.
"""

from __future__ import annotations

import html
import json
import logging
import re
from importlib import resources
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from melodia.cli.studio.door import Door, Guard
from melodia.cli.studio.history import JOB_ID
from melodia.cli.studio.jobs import MAX_ROLL_NOTES, QueueFull, Studio, StudioError
from melodia.errors import MelodiaError
from melodia.midi import instrument_name, read_midi
from melodia.util.knobs import KNOBS

log = logging.getLogger(__name__)

MAX_UPLOAD = 4 * 2**20  # bytes of a dropped MIDI file (a long piano piece is ~100 KB)
MAX_JSON = 64 * 1024  # bytes of a request's JSON
TAKE = re.compile(r"^(\d{4,}-[a-z]+)(?:-(\d{1,2}))?$")  # a job's file, or one variation's
MAX_BARS = 4000  # bar lines sent to the roll
DRAIN = 64 * 2**20  # bytes of a refused body read (and dropped) before the answer
STATIC = {"studio.js": "text/javascript", "studio.css": "text/css"}
JSON_TYPES = ("application/json",)
FILE_TYPES = ("application/octet-stream", "audio/midi", "audio/mid", "audio/x-midi")
SECURITY = {"Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; "
            "img-src 'self' data:", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


def _page(name: str) -> bytes:
    return resources.files("melodia.cli.studio").joinpath("page", name).read_bytes()


def _refuse(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())[:500]}, status_code=status)


def _typed(request: Request, kinds: tuple[str, ...]) -> bool:
    """Whether the request's Content-Type is one of ``kinds`` (parameters aside)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower() in kinds


def _with_token(page: bytes, token: str) -> bytes:
    """The page with its token, for its own requests (it reaches no other page)."""
    meta = f'<meta name="melodia-token" content="{html.escape(token)}">'.encode()
    return page.replace(b"<head>", b"<head>\n" + meta, 1)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it passes ``limit`` bytes (the rest is read and
    dropped, up to :data:`DRAIN` bytes, so the client hears the refusal; nothing is kept)."""
    declared = request.headers.get("content-length")
    over = declared is not None and (not declared.isdigit() or int(declared) > limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN:
            break
        if over or size > limit:
            over, chunks = True, []
            continue
        chunks.append(chunk)
    return None if over else b"".join(chunks)


def options(studio: Studio) -> dict[str, Any]:
    """What the page offers: models, the band's styles, knob limits."""
    from melodia.generation.session import band_styles  # deferred: torch, on the first call

    styles: list[str] = []
    if "band" in studio.models:
        try:
            styles = band_styles(studio.models["band"])
        except MelodiaError:
            styles = []
    knobs = {k: {"low": KNOBS[k].low, "high": KNOBS[k].high, "whole": KNOBS[k].kind is int}
             for k in ("seconds", "bars", "seed", "temperature", "tempo", "density",
                       "randomness", "top_p", "top_k", "candidates")}
    return {"models": list(studio.models), "styles": styles, "knobs": knobs,
            "samplers": ["probability", "embedding"], "max_upload": MAX_UPLOAD,
            "time_limit_s": studio.time_limit_s}


def roll(path) -> dict[str, Any]:
    """A MIDI file's notes for the piano roll: per track its name and notes (start, end,
    pitch, velocity), at most :data:`MAX_ROLL_NOTES` in all."""
    score = read_midi(path)
    tracks, left = [], MAX_ROLL_NOTES
    for track in score.tracks:
        notes = track.notes[:left]
        left -= len(notes)
        tracks.append({"name": track.name or instrument_name(track.program, track.is_drum),
                       "drum": bool(track.is_drum), "program": int(track.program),
                       "notes": [[round(float(n["start_s"]), 4), round(float(n["end_s"]), 4),
                                  int(n["pitch"]), int(n["velocity"])] for n in notes]})
    return {"end_s": round(score.end_s, 3), "tracks": tracks,
            "tempo": float(score.tempos["qpm"][0]) if len(score.tempos) else 120.0,
            **bar_lines(score)}


def bar_lines(score) -> dict[str, list]:
    """Where the score's bars start (s) and how many beats each holds (its time signature's
    numerator), for the roll's time axis; at most :data:`MAX_BARS` bars."""
    import numpy as np  # deferred: the studio's import stays light

    from melodia.midi.bars import bar_starts

    starts = bar_starts(score, score.end_s)[:MAX_BARS]
    ts = np.sort(score.time_signatures, order="time_s", kind="stable")
    at = np.maximum(np.searchsorted(ts["time_s"], starts + 1e-6, "right") - 1, 0)
    beats = ts["numerator"][at] if len(ts) else np.full(len(starts), 4)
    return {"bars": [round(float(t), 4) for t in starts], "beats": [int(b) for b in beats]}


def create_app(studio: Studio, door: Door):
    """The studio's ASGI application over ``studio``'s jobs, behind ``door``."""

    async def page(request: Request) -> Response:
        return HTMLResponse(_with_token(_page("index.html"), door.token),
                            headers={**SECURITY, "Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _refuse("no such file", 404)
        return Response(_page(name), media_type=STATIC[name], headers=SECURITY)

    async def get_options(request: Request) -> Response:
        return JSONResponse(options(studio))

    async def upload(request: Request) -> Response:
        if not _typed(request, FILE_TYPES):
            await _body(request, 0)
            return _refuse("send the MIDI file's bytes as application/octet-stream", 415)
        data = await _body(request, MAX_UPLOAD)
        if data is None:
            return _refuse(f"that file is over {MAX_UPLOAD // 2**20} MiB: a MIDI file that "
                           "large is not one melodia reads", 413)
        try:
            name = unquote(request.headers.get("x-filename", "upload.mid"))
            up = studio.upload(data, name)
        except MelodiaError as err:
            return _refuse(str(err))
        return JSONResponse({"id": up.id, "name": up.name, "seconds": up.seconds,
                             "notes": up.notes})

    async def submit(request: Request) -> Response:
        if not _typed(request, JSON_TYPES):
            await _body(request, 0)
            return _refuse("send the job as JSON (Content-Type: application/json)", 415)
        data = await _body(request, MAX_JSON)
        if data is None:
            return _refuse("request too large", 413)
        try:
            body = json.loads(data or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return _refuse("the request must be a JSON object")
        try:
            return JSONResponse(studio.submit(body).public())
        except QueueFull as err:
            return _refuse(str(err), 429)
        except MelodiaError as err:
            return _refuse(str(err))

    def _job(request: Request):
        job_id = request.path_params["job"]
        if not JOB_ID.match(job_id):
            raise StudioError("no such job")
        return studio.get(job_id)

    async def status(request: Request) -> Response:
        try:
            job = _job(request)
        except StudioError as err:
            return _refuse(str(err), 404)
        return JSONResponse({**job.public(), "ahead": studio.waiting(job)})

    async def cancel(request: Request) -> Response:
        try:
            job = _job(request)
        except StudioError as err:
            return _refuse(str(err), 404)
        return JSONResponse(studio.cancel(job.id).public())

    async def get_roll(request: Request) -> Response:
        try:
            job = _job(request)
        except StudioError as err:
            return _refuse(str(err), 404)
        take = request.query_params.get("take", "1")
        midi = job.file("mid", int(take)) if take.isdigit() and len(take) < 4 else None
        if midi is None:
            return _refuse("nothing written yet", 404)
        return JSONResponse(roll(midi))

    async def history(request: Request) -> Response:
        return JSONResponse(studio.history())

    async def files(request: Request) -> Response:
        name, kind = request.path_params["job"], request.path_params["kind"]
        match = TAKE.match(name)
        try:
            job = studio.get(match.group(1)) if match else None
        except StudioError:
            job = None
        take = int(match.group(2)) if match and match.group(2) else None
        path = None if job is None else job.file(kind, take)
        if path is None or not path.is_file():
            return _refuse("no such file", 404)
        media = "audio/midi" if kind == "mid" else "audio/wav"
        return FileResponse(path, media_type=media, filename=f"melodia-{name}.{kind}")

    routes = [Route("/", page), Route("/static/{name}", static),
              Route("/api/options", get_options), Route("/api/upload", upload, methods=["POST"]),
              Route("/api/jobs", submit, methods=["POST"]),
              Route("/api/jobs/{job}", status), Route("/api/jobs/{job}/cancel", cancel,
                                                      methods=["POST"]),
              Route("/api/jobs/{job}/roll", get_roll), Route("/api/history", history),
              Route("/files/{job}.{kind}", files)]
    return Guard(Starlette(routes=routes, exception_handlers={Exception: _internal}), door)


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("studio: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _refuse("internal error; see the studio's log", 500)


__all__ = ["MAX_UPLOAD", "create_app", "options", "roll"]
