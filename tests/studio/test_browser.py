"""The studio page in a real headless Chromium against a real server: knobs, generate, the
piano roll and the audio, the MIDI downloaded and read back, bad values and an oversized
upload, a keyboard alone, a 400 px window. The screenshot in README is made here."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pretty_midi
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

SHOT = Path(__file__).resolve().parents[2] / "examples" / "studio.png"


def _open(browser, server, width: int = 1100) -> None:
    browser.set_window_size(width, 1400)
    browser.get(server.url)
    WebDriverWait(browser, 30).until(lambda d: len(Select(d.find_element(By.ID, "model"))
                                                  .options) >= 2)


def _set(browser, field: str, value: str) -> None:
    element = browser.find_element(By.ID, field)
    element.clear()
    element.send_keys(value)


def _result(browser, server, timeout: float = 120) -> dict:
    """Wait for the page to show a result and start its audio; the job as the API has it."""
    WebDriverWait(browser, timeout).until(
        lambda d: d.find_element(By.ID, "go").is_enabled()
        and d.find_element(By.ID, "message").text != "")
    message = browser.find_element(By.ID, "message").text
    assert "done" in message, message
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const a = document.getElementById('audio'); return a.src && !a.paused && "
        "a.currentTime > 0;"))
    href = browser.find_element(By.ID, "download-mid").get_attribute("href")
    job_id = re.match(r"\d{4,}-[a-z]+", href.rsplit("/", 1)[1]).group(0)  # a variation's too
    return server.call(f"/api/jobs/{job_id}")[1]


def test_generate_piano_hear_see_and_download(browser, server):
    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("piano")
    _set(browser, "seconds", "6")
    _set(browser, "seed", "3")
    _set(browser, "temperature", "0.9")
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    assert job["line"].startswith("melodia generate --model piano --seconds 6 --seed 3 "
                                  "--temperature 0.9")
    assert browser.find_element(By.ID, "line").text == job["line"]
    lit = browser.execute_script(
        "const c = document.getElementById('roll'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 200) n++; return n;")
    assert lit > 500  # notes (and the play head) drawn
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(job["midi"])))
    assert 5.5 < midi.get_end_time() <= 6.6 and len(midi.instruments) == 1
    assert job["line"] in browser.find_element(By.ID, "history").text
    if os.environ.get("MELODIA_STUDIO_SCREENSHOT"):
        browser.save_screenshot(str(SHOT))


def test_a_band_with_tempo_and_lineup(browser, server):
    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("band")
    Select(browser.find_element(By.ID, "style")).select_by_value("rock")
    _set(browser, "bars", "4")
    _set(browser, "tempo", "100")
    _set(browser, "lineup", "drums,bass")
    _set(browser, "seed", "5")
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(job["midi"])))
    assert midi.get_tempo_changes()[1][0] == pytest.approx(100.0, abs=0.01)
    assert midi.get_end_time() == pytest.approx(4 * 2.4, abs=0.05)
    kinds = {"drums" if i.is_drum else i.program // 8 for i in midi.instruments if i.notes}
    assert kinds <= {"drums", 4} and "drums" in kinds
    legend = browser.find_element(By.ID, "legend").text
    assert "Drums" in legend


def test_bad_values_and_an_oversized_upload_get_a_message(browser, server, tmp_path):
    _open(browser, server)
    Select(browser.find_element(By.ID, "model")).select_by_value("piano")
    _set(browser, "seconds", "-3")
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "message").text)
    message = browser.find_element(By.ID, "message").text
    assert message.startswith("Seconds: ") and "Traceback" not in browser.page_source
    big = tmp_path / "huge.mid"
    big.write_bytes(b"MThd" + b"\0" * (5 * 2**20))
    browser.find_element(By.ID, "file").send_keys(str(big))
    WebDriverWait(browser, 10).until(lambda d: "MiB" in d.find_element(By.ID, "message").text)
    bad = tmp_path / "notes.mid"
    bad.write_text("these are not notes")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 10).until(
        lambda d: "not a MIDI file" in d.find_element(By.ID, "message").text)
    assert browser.find_element(By.ID, "file-info").text == "no file"


def test_keyboard_alone_and_a_narrow_window(browser, server):
    _open(browser, server, width=400)
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert width <= 400
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    for _ in range(40):  # Tab from the top of the page to the Generate button
        if browser.switch_to.active_element.get_attribute("id") == "go":
            break
        ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "go"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    job = _result(browser, server)
    assert job["state"] == "done"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width


def test_a_song_chosen_on_the_page_is_accompanied(browser, server):
    from tests.conftest import DATA

    chorale = DATA / "chorales" / "bach__bwv10.7.mxl.mid"
    _open(browser, server)
    Select(browser.find_element(By.ID, "command")).select_by_value("accompany")
    Select(browser.find_element(By.ID, "model")).select_by_value("band")
    assert browser.find_element(By.ID, "lineup").is_displayed()
    assert not browser.find_element(By.ID, "seconds").is_displayed()  # not an accompany knob
    browser.find_element(By.ID, "file").send_keys(str(chorale))
    WebDriverWait(browser, 20).until(
        lambda d: "notes" in d.find_element(By.ID, "file-info").text)
    _set(browser, "lineup", "drums,bass")
    _set(browser, "seed", "4")
    assert browser.find_element(By.ID, "go").text == "Accompany"
    browser.find_element(By.ID, "go").click()
    job = _result(browser, server)
    assert job["line"].startswith(f"melodia accompany {chorale.name} --model band")
    midi = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(job["midi"])))
    original = pretty_midi.PrettyMIDI(str(chorale))
    assert len(midi.instruments) > len(original.instruments)
    assert any(i.is_drum for i in midi.instruments)
