"""What the studio page shows of a result, in a real headless Chromium against a real server:
bars and beats on the roll's time axis, drum lanes by kit piece, a form's sections and the bars
an infill replaced marked, what was drawn, zoom and scroll; the knobs each command uses; no
stale primer; a queued job cancelled; refusals in the musician's words."""

from __future__ import annotations

import os
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import DATA
from tests.studio.test_browser import _open, _result, _set

CHORALE = DATA / "chorales" / "bach__bwv10.7.mxl.mid"
SHOTS = Path(__file__).resolve().parents[2] / "examples"
LAYOUT = "return (() => { const L = layout(); return {drums: L.drums, width: L.width, " \
         "height: L.height, pitched: L.pitchedHeight}; })();"


def _visible(browser, field: str) -> bool:
    return browser.find_element(By.ID, field).is_displayed()


def test_a_band_form_on_bars_with_drum_lanes_and_sections(browser, server):
    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("band")
    assert _visible(browser, "seconds")
    _set(browser, "form", "ABA")
    assert not _visible(browser, "seconds")  # bars rule the length now
    _set(browser, "bars", "2")
    _set(browser, "tempo", "120")
    _set(browser, "lineup", "drums,bass,guitar")
    _set(browser, "seed", "3")
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    assert [s["letter"] for s in job["info"]["sections"]] == ["A", "B", "A"]
    assert job["info"]["band"]["qpm"] == 120 and "Drums" in job["info"]["band"]["lineup"]
    info = browser.find_element(By.ID, "info").text
    assert "Band: " in info and "120 BPM" in info and "Section B: bars 3-4, new" in info
    assert "Section A: bars 5-6, A again" in info
    drawn = browser.execute_script(LAYOUT)
    kit = {p for t in server.call(f"/api/jobs/{job['id']}/roll")[1]["tracks"] if t["drum"]
           for p in {n[2] for n in t["notes"]}}
    assert sorted(drawn["drums"]) == sorted(kit) and kit  # one lane per kit piece played
    assert drawn["height"] == 34 + drawn["pitched"] + 13 * len(kit)
    assert browser.execute_script("return view.metered") is True
    bars = browser.execute_script("return roll.bars")
    assert [round(t, 2) for t in bars[:7]] == [2.0 * i for i in range(7)]  # 4/4 at 120 BPM
    width = drawn["width"]
    browser.find_element(By.ID, "zoom-in").click()
    browser.find_element(By.ID, "zoom-in").click()
    assert browser.execute_script(LAYOUT)["width"] == 4 * width
    box = browser.find_element(By.ID, "roll-box")
    assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth",
                                  box)
    if os.environ.get("MELODIA_STUDIO_SCREENSHOT"):
        browser.find_element(By.ID, "zoom-fit").click()
        browser.save_screenshot(str(SHOTS / "studio-form.png"))


def test_accompany_takes_a_band_and_a_song_is_no_stale_primer(browser, server):
    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("piano")
    Select(browser.find_element(By.ID, "command")).select_by_value("accompany")
    assert Select(browser.find_element(By.ID, "model")).first_selected_option.text == "band"
    assert _visible(browser, "harmony") and _visible(browser, "style")
    assert not _visible(browser, "seconds") and not _visible(browser, "key")
    Select(browser.find_element(By.ID, "command")).select_by_value("restyle")  # its own knobs
    assert all(_visible(browser, k) for k in ("keep", "feel", "lead", "style", "lineup", "harmony"))
    assert not _visible(browser, "tempo") and not _visible(browser, "seconds")
    assert browser.find_element(By.ID, "go").text == "Restyle"
    Select(browser.find_element(By.ID, "command")).select_by_value("accompany")
    assert not _visible(browser, "keep") and _visible(browser, "tempo")
    browser.find_element(By.ID, "file").send_keys(str(CHORALE))
    WebDriverWait(browser, 20).until(
        lambda d: "notes" in d.find_element(By.ID, "file-info").text)
    Select(browser.find_element(By.ID, "command")).select_by_value("generate")
    assert "notes" not in browser.find_element(By.ID, "file-info").text
    assert not _visible(browser, "harmony")
    Select(browser.find_element(By.ID, "model")).select_by_value("piano")
    _set(browser, "seconds", "2")
    _set(browser, "seed", "1")
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    assert "--primer" not in job["line"] and CHORALE.name not in job["line"]


def test_infill_marks_the_bars_it_replaced(browser, server):
    _open(browser, server)
    Select(browser.find_element(By.ID, "command")).select_by_value("infill")
    Select(browser.find_element(By.ID, "model")).select_by_value("band")
    browser.find_element(By.ID, "file").send_keys(str(CHORALE))
    WebDriverWait(browser, 20).until(
        lambda d: "notes" in d.find_element(By.ID, "file-info").text)
    _set(browser, "span", "3-4")
    _set(browser, "candidates", "2")
    _set(browser, "seed", "2")
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    filled = job["info"]["infill"]
    assert filled["bars"] == "3-4" and filled["candidates"] == 2
    assert 1 <= filled["chosen"] <= 2 and filled["start_s"] < filled["end_s"]
    assert f"candidate {filled['chosen']} of 2" in browser.find_element(By.ID, "info").text
    assert job["progress"] == 1.0


def test_a_queued_job_cancelled_frees_the_page(browser, server):
    code, long = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                           "settings": {"seconds": "3000"}})
    assert code == 200
    try:
        _open(browser, server)
        Select(browser.find_element(By.ID, "model")).select_by_value("piano")
        _set(browser, "seconds", "2")
        browser.find_element(By.ID, "go").click()
        WebDriverWait(browser, 20).until(
            lambda d: "queued: " in d.find_element(By.ID, "progress-text").text)
        assert "1 job ahead" in browser.find_element(By.ID, "progress-text").text \
            or "next" in browser.find_element(By.ID, "progress-text").text
        browser.find_element(By.ID, "cancel").click()
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "go").is_enabled())
        assert "cancelled before it started" in browser.find_element(By.ID, "message").text
        assert not browser.find_element(By.ID, "cancel").is_enabled()
    finally:
        server.call(f"/api/jobs/{long['id']}/cancel", method="POST", raw=b"")
        server.wait(long["id"])


def test_refusals_in_the_musicians_words_and_why_a_job_failed(browser, server):
    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("band")
    Select(browser.find_element(By.ID, "style")).select_by_index(0)
    _set(browser, "lineup", "drums,kazoo")
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "message").text)
    message = browser.find_element(By.ID, "message").text
    assert message.startswith("Line-up: ") and "argument" not in message
    code, job = server.call("/api/jobs", {"command": "infill", "model": "band", "upload": _up(
        server), "settings": {"span": "200-201"}})
    assert server.wait(job["id"])["state"] == "failed"
    browser.refresh()
    WebDriverWait(browser, 20).until(lambda d: any(
        "past the end" in li.text for li in d.find_elements(By.CSS_SELECTOR, "#history li")))


def _up(server) -> str:
    code, up = server.call("/api/upload", raw=CHORALE.read_bytes(), headers={
        "Content-Type": "application/octet-stream", "X-Filename": "chorale.mid"})
    assert code == 200
    return up["id"]


def test_variations_side_by_side_to_hear_compare_and_keep(browser, server):
    import io

    import pretty_midi

    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("piano")
    _set(browser, "seconds", "3")
    _set(browser, "num", "3")
    _set(browser, "seed", "8")
    _set(browser, "form", "AB")
    assert not _visible(browser, "num")  # a form is one song
    _set(browser, "form", "")
    assert _visible(browser, "num")
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    assert "--num 3" in job["line"] and len(job["takes"]) == 3
    files = [server.fetch(take["midi"]) for take in job["takes"]]
    assert len(set(files)) == 3  # three different pieces
    for data in files:
        assert 2.5 < pretty_midi.PrettyMIDI(io.BytesIO(data)).get_end_time() <= 3.6
    assert server.fetch(job["takes"][1]["audio"])[:4] == b"RIFF"
    assert server.call(f"/files/{job['id']}-4.mid")[0] == 404
    cards = browser.find_elements(By.CSS_SELECTOR, "#takes .take")
    assert len(cards) == 3 and "shown" in cards[0].get_attribute("class")
    cards[1].find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const a = document.getElementById('audio'); return a.src.endsWith("
        f"'/files/{job['id']}-2.wav') && !a.paused && a.currentTime > 0;"))
    assert "shown" in browser.find_elements(By.CSS_SELECTOR, "#takes .take")[1] \
        .get_attribute("class")
    keep = cards[1].find_element(By.TAG_NAME, "a").get_attribute("href")
    assert keep.endswith(f"/files/{job['id']}-2.mid")
    assert browser.find_element(By.ID, "download-mid").get_attribute("href") == keep
    code, answer = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                             "settings": {"num": "9"}})
    assert code == 400 and answer["error"].startswith("Variations: at most 4")


def test_the_band_groove_knobs(browser, server):
    import io

    import pretty_midi

    from melodia.generation.given import GRID_TOLERANCE_S

    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("band")
    assert _visible(browser, "repeat") and _visible(browser, "drum_grid")
    _set(browser, "seconds", "6")
    _set(browser, "tempo", "120")
    _set(browser, "lineup", "drums,bass")
    _set(browser, "repeat", "0.8")
    _set(browser, "seed", "2")
    browser.find_element(By.ID, "drum_grid").click()
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    assert "--repeat 0.8 --drum-grid" in job["line"] or \
        ("--repeat 0.8" in job["line"] and "--drum-grid" in job["line"])
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(job["midi"])))
    onsets = sorted({n.start for i in midi.instruments if i.is_drum for n in i.notes})
    near = GRID_TOLERANCE_S + 0.001  # the grid's humanisation, and a tick's rounding
    assert onsets and all(min(abs(t - round(t * 8) / 8), abs(t - round(t * 6) / 6)) <= near
                          for t in onsets)  # 16ths (1/8 s) or eighth triplets (1/6 s) at 120
    Select(browser.find_element(By.ID, "model")).select_by_value("piano")
    assert not _visible(browser, "repeat") and not _visible(browser, "drum_grid")
