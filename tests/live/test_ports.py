"""melodia.live.ports and `melodia ports` on a real JACK server (see conftest.jack_server)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from melodia.cli import main
from melodia.live.ports import ALSA_SEQ, PortError, list_ports, open_input, open_output

RECEIVER = Path(__file__).with_name("receiver.py")

pytestmark = pytest.mark.usefixtures("jack_server")


def test_list_ports_shows_a_virtual_output_we_open():
    with open_output(virtual="melodia-list", api="jack"):
        found = list_ports("jack")
        assert found["api"] == "jack"
        # Our output is a source other programs (and melodia inputs) can read from.
        assert any(name.endswith(":melodia-list") for name in found["inputs"])
    assert not any("melodia-list" in name for name in list_ports("jack")["inputs"])


def test_list_ports_shows_a_virtual_input_as_an_output():
    with open_input(virtual="melodia-sink", api="jack"):
        assert any(name.endswith(":melodia-sink") for name in list_ports("jack")["outputs"])


def test_fifty_notes_reach_a_receiver_in_order(tmp_path):
    out = tmp_path / "received.json"
    notes = [(60 + i % 24, 1 + i) for i in range(50)]
    expected = []
    for note, velocity in notes:
        expected += [[0x90, note, velocity], [0x80, note, 0]]
    with open_output(virtual="melodia-test", api="jack") as port:
        receiver = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--port", "melodia-test", "--out", str(out),
             "--count", str(len(expected)), "--seconds", "20"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert receiver.stdout.readline().strip() == "ready"
            for note, velocity in notes:
                port.send(mido.Message("note_on", note=note, velocity=velocity))
                port.send(mido.Message("note_off", note=note, velocity=0))
                time.sleep(0.002)
            assert receiver.wait(timeout=30) == 0
        finally:
            receiver.kill()
    got = json.loads(out.read_text())
    assert got["port"].endswith(":melodia-test")
    assert [m["bytes"] for m in got["messages"]] == expected
    times = [m["time_s"] for m in got["messages"]]
    assert times == sorted(times)


def test_output_to_an_existing_port_by_part_of_its_name():
    received = []
    with open_input(virtual="melodia-synth", api="jack", callback=received.append):
        with open_output(port="MELODIA-SYNTH", api="jack") as port:
            assert port.name.endswith(":melodia-synth")
            port.send(mido.Message("note_on", note=64))
            deadline = time.perf_counter() + 5
            while not received and time.perf_counter() < deadline:
                time.sleep(0.01)
    assert [m.bytes() for m in received] == [[0x90, 64, 64]]


def test_unknown_port_lists_the_existing_ones():
    with open_input(virtual="melodia-there", api="jack"):
        with pytest.raises(PortError, match=r"no MIDI output matching 'no-such' \(jack\); outputs: .*melodia-there") as err:
            open_output(port="no-such", api="jack")
    assert "\n" not in str(err.value)


def test_same_virtual_name_twice_opens_two_ports():
    """JACK renames the second client: 'RtMidiOut Client:NAME' and 'RtMidiOut Client-01:NAME'."""
    with open_output(virtual="melodia-twice", api="jack"), \
            open_output(virtual="melodia-twice", api="jack"):
        names = [n for n in list_ports("jack")["inputs"] if n.endswith(":melodia-twice")]
    assert len(names) == 2 and len(set(names)) == 2


def test_virtual_and_port_together_is_an_error():
    with pytest.raises(PortError, match="not both"):
        open_output(virtual="a", port="b", api="jack")


def test_unknown_api():
    with pytest.raises(PortError, match="unknown MIDI API 'nope': choose one of alsa, jack"):
        list_ports("nope")


def test_windows_virtual_port_says_loopmidi():
    with pytest.raises(PortError, match="loopMIDI"):
        open_output(virtual="melodia", api="windows_mm")


def test_jack_without_server_says_how_to_start_one(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "melodia-no-such-server")
    with pytest.raises(PortError, match=r"no JACK server is running: start one \(jackd -d dummy"):
        list_ports("jack")


@pytest.mark.skipif(ALSA_SEQ.exists(), reason="the ALSA sequencer works here")
def test_alsa_without_sequencer_says_modprobe():
    with pytest.raises(PortError, match="modprobe snd-seq, or use --api jack"):
        open_output(api="alsa")


def test_cli_ports_jack_prints_the_ports(capsys):
    with open_output(virtual="melodia-cli", api="jack"):
        assert main(["ports", "--api", "jack"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("api: jack\ninputs:")
    assert ":melodia-cli" in out and "outputs:" in out


def test_cli_ports_unknown_api_is_one_line(capsys):
    assert main(["ports", "--api", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "melodia ports: error: unknown MIDI API 'nope': choose one of alsa, jack, coremidi, windows_mm\n"
