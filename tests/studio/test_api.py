"""The studio's API against a real server: jobs checked as the command line checks them, bad
requests refused in one line, nothing written outside --out, files only by job id."""

from __future__ import annotations

import io
import time

import pretty_midi

from tests.conftest import DATA

CHORALE = DATA / "chorales" / "bach__bwv10.7.mxl.mid"


def test_a_job_writes_midi_and_audio_under_out_with_a_replayable_line(server):
    code, job = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                          "settings": {"seconds": "4", "seed": 11}})
    assert code == 200 and job["state"] in ("queued", "running")
    assert job["line"] == "melodia generate --model piano --seconds 4 --seed 11 -o " \
                          f"{job['id']}.mid"
    done = server.wait(job["id"])
    assert done["state"] == "done" and done["events"] > 0, done
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"])))
    assert 3.5 < midi.get_end_time() <= 4.6
    assert server.fetch(done["audio"])[:4] == b"RIFF"
    assert (server.out / f"{job['id']}.mid").is_file()
    code, roll = server.call(f"/api/jobs/{job['id']}/roll")
    assert code == 200 and roll["tracks"] and roll["tracks"][0]["notes"]
    code, again = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                            "settings": {"seconds": "4", "seed": 11}})
    again = server.wait(again["id"])
    assert server.fetch(again["midi"]) == server.fetch(done["midi"])  # the line replays it


def test_bad_requests_are_one_line_and_write_nothing_outside_out(server):
    before = sorted(p.name for p in server.root.iterdir())
    cases = [
        ({"command": "generate", "model": "piano", "settings": {"seconds": "-3"}},
         "Seconds: needs a number above 0"),
        ({"command": "generate", "model": "../../etc/passwd"}, "unknown model"),
        ({"command": "rm", "model": "piano"}, "unknown command"),
        ({"command": "generate", "model": "piano", "settings": {"output": "/tmp/x.mid"}},
         "does not take 'output'"),
        ({"command": "generate", "model": "piano", "settings": {"seconds": "1e9"}}, "Seconds:"),
        ({"command": "generate", "model": "piano", "settings": {"seconds": [1]}},
         "takes a number"),
        ({"command": "accompany", "model": "band"}, "needs a MIDI file"),
        ({"command": "restyle", "model": "band", "settings": {"style": "swing"}},
         "needs a MIDI file"),
        # refused before a job is queued, in the page's words
        ({"command": "generate", "model": "piano", "settings": {"style": "metal"}},
         "Style: the piano model plays no band"),
        ({"command": "generate", "model": "band", "settings": {"style": "metl"}},
         "did you mean metal?"),
        ({"command": "generate", "model": "piano", "settings": {"key": "H major"}},
         "Key: cannot read the key"),
        ({"command": "generate", "model": "band", "settings": {"lineup": "drums,kazoo"}},
         "Line-up: "),
        ({"command": "generate", "model": "piano", "settings": {"form": "A-B"}},
         "Form: --form takes section letters"),
        ({"command": "infill", "model": "band", "settings": {"span": "8-2"}},
         "needs a MIDI file"),
    ]
    jobs_before = len(server.call("/api/history")[1])
    for body, words in cases:
        code, answer = server.call("/api/jobs", body)
        assert code == 400 and words in answer["error"], (body, answer)
        assert "Traceback" not in answer["error"] and "\n" not in answer["error"]
        assert "argument --" not in answer["error"]
    assert len(server.call("/api/history")[1]) == jobs_before  # none of them was queued
    for raw in (b"not json", b"[1, 2]", b"{" * 70000):
        code, answer = server.call("/api/jobs", raw=raw)
        assert code in (400, 413) and "error" in answer
    for path in ("/files/..%2F..%2Fetc%2Fpasswd.mid", "/files/0001-generate.exe",
                 "/static/..%2Fjobs.py", "/api/jobs/..%2F..", "/api/jobs/9999-generate"):
        code, answer = server.call(path)
        assert code == 404, path
    code, answer = server.call("/api/upload", raw=b"MThd" + b"\0" * 10, headers={
        "X-Filename": "..%2F..%2Fevil.mid", "Content-Type": "application/octet-stream"})
    assert code == 400 and "error" in answer
    code, answer = server.call("/api/upload", raw=b"x" * (4 * 2**20 + 1),
                               headers={"Content-Type": "audio/midi"})
    assert code == 413 and "MiB" in answer["error"]
    assert sorted(p.name for p in server.root.iterdir()) == before  # nothing new beside out/


def test_upload_then_accompany_and_infill(server):
    code, up = server.call("/api/upload", raw=CHORALE.read_bytes(), headers={
        "X-Filename": "chorale.mid", "Content-Type": "application/octet-stream"})
    assert code == 200 and up["notes"] > 50
    assert [p.parent for p in server.out.rglob("*.mid") if p.name.startswith(up["id"])] == [
        server.out / "uploads"]
    code, job = server.call("/api/jobs", {"command": "accompany", "model": "band",
                                          "upload": up["id"],
                                          "settings": {"lineup": "drums,bass", "seed": 2}})
    assert code == 200 and "melodia accompany chorale.mid --model band" in job["line"]
    done = server.wait(job["id"])
    assert done["state"] == "done", done
    tracks = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"]))).instruments
    assert any(t.is_drum for t in tracks) and len(tracks) >= 5
    code, job = server.call("/api/jobs", {"command": "infill", "model": "band",
                                          "upload": up["id"], "settings": {"span": "2-3"}})
    assert code == 200
    assert server.wait(job["id"])["state"] == "done"
    code, job = server.call("/api/jobs", {"command": "infill", "model": "band",
                                          "upload": up["id"], "settings": {"span": "200-201"}})
    assert code == 200
    failed = server.wait(job["id"])
    assert failed["state"] == "failed" and "past the end" in failed["message"]


def test_upload_then_restyle(server):
    code, up = server.call("/api/upload", raw=CHORALE.read_bytes(), headers={
        "X-Filename": "chorale.mid", "Content-Type": "application/octet-stream"})
    assert code == 200
    for settings, said in (({}, "Style: restyle needs one"),
                           ({"style": "swing", "feel": "shuffle"}, "Feel: invalid choice"),
                           ({"style": "swing", "lineup": "drums,kazoo"}, "Line-up: ")):
        code, answer = server.call("/api/jobs", {"command": "restyle", "model": "band",
                                                 "upload": up["id"], "settings": settings})
        assert code == 400 and said in answer["error"], answer
    code, job = server.call("/api/jobs", {"command": "restyle", "model": "band",
                                          "upload": up["id"], "settings": {
                                              "style": "swing", "lineup": "drums,bass",
                                              "lead": "auto", "seed": 5}})
    assert code == 200 and job["line"].startswith(
        "melodia restyle chorale.mid --model band --style swing --lineup drums,bass --lead auto")
    done = server.wait(job["id"])
    assert done["state"] == "done", done
    assert done["info"]["restyle"]["melody"] == ["Soprano (Acoustic Grand Piano)"]
    tracks = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"]))).instruments
    assert [t.program for t in tracks if not t.is_drum][0] == 65  # the melody, on alto sax
    assert len(tracks) == 3 and any(t.is_drum for t in tracks)  # the chorale's voices are gone


def _running(server, job_id: str, seconds: float = 0.0) -> dict:
    """Wait until the job runs and has made ``seconds`` of music."""
    deadline = time.time() + 60
    while time.time() < deadline:
        job = server.call(f"/api/jobs/{job_id}")[1]
        if job["state"] == "running" and job["seconds_done"] >= seconds:
            return job
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never ran")


def test_cancel_keeps_what_was_made_as_a_partial_result(server):
    code, job = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                          "settings": {"seconds": "3000", "seed": 4}})
    assert code == 200
    code, waiting = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                              "settings": {"seconds": "5"}})
    assert server.call(f"/api/jobs/{waiting['id']}")[1]["ahead"] == 0  # it runs next
    _running(server, job["id"], seconds=3.0)
    code, gone = server.call(f"/api/jobs/{waiting['id']}/cancel", method="POST", raw=b"")
    assert code == 200 and gone["state"] == "cancelled"  # at once: it never starts
    server.call(f"/api/jobs/{job['id']}/cancel", method="POST", raw=b"")
    done = server.wait(job["id"], timeout=30)
    assert done["state"] == "cancelled" and done["partial"] and "kept the" in done["message"]
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"])))
    assert 3.0 <= midi.get_end_time() < 3000 and sum(len(i.notes) for i in midi.instruments)
    assert abs(done["seconds_done"] - midi.get_end_time()) < 0.5
    assert server.fetch(done["audio"])[:4] == b"RIFF"
    assert server.wait(waiting["id"])["midi"] is None
    assert not (server.out / f"{waiting['id']}.mid").exists()


def test_song_form_through_the_page_fields(server):
    code, job = server.call("/api/jobs", {"command": "generate", "model": "band", "settings": {
        "form": "ABA", "bars": "1", "tempo": "120", "lineup": "drums,bass", "randomness": "0"}})
    assert code == 200 and "--form ABA --bars 1" in job["line"]
    done = server.wait(job["id"])
    assert done["state"] == "done", done
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"])))
    assert abs(midi.get_end_time() - 3 * 2.0) < 0.05  # three one-bar sections at 120 BPM


def test_models_found_in_a_folder(tmp_path):
    from melodia.cli.studio import found_models
    from melodia.model.export import export_model
    from tests.studio.conftest import Server

    export_model("piano", tmp_path / "models" / "my-piano", "float16", False)
    assert found_models(tmp_path / "models") == {
        "piano": "piano", "band": "band", "my-piano": str((tmp_path / "models/my-piano").resolve())}
    server = Server(tmp_path, "--models", str(tmp_path / "models"))
    try:
        assert "my-piano" in server.call("/api/options")[1]["models"]
        code, job = server.call("/api/jobs", {"command": "generate", "model": "my-piano",
                                              "settings": {"seconds": "2", "seed": 1}})
        assert code == 200 and f"--model {tmp_path / 'models' / 'my-piano'}" in job["line"]
        assert server.wait(job["id"])["state"] == "done"
    finally:
        assert "Traceback" not in server.stop()


def test_a_generation_stops_at_the_time_limit(tmp_path):
    from tests.studio.conftest import Server

    server = Server(tmp_path, "--time-limit", "1")
    try:
        code, job = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                              "settings": {"seconds": "3000"}})
        done = server.wait(job["id"], timeout=30)
        assert done["state"] == "cancelled" and "time limit of 1 s" in done["message"], done
        assert done["elapsed"] < 5 and done["partial"]
        midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"])))
        assert 0 < midi.get_end_time() < 3000  # what the second made is kept
    finally:
        assert "Traceback" not in server.stop()


def test_memory_is_offered_to_every_command_in_the_musicians_words():
    from melodia.cli.studio.settings import plain, to_argv

    argv, _ = to_argv("generate", {"memory": "0.6", "seconds": 5}, "piano", None)
    assert argv[argv.index("--memory") + 1] == "0.6"
    from melodia.cli import build_parser

    for command in ("generate", "accompany", "infill"):  # the parser of each takes it
        extra = {"generate": [], "accompany": ["song.mid"],
                 "infill": ["song.mid", "--bars", "2-3"]}[command]
        args = build_parser().parse_args([command, *extra, "--memory", "0.6"])
        assert args.memory == 0.6
    assert plain("argument --memory: must be from 0 to 1") == "Memory: must be from 0 to 1"
