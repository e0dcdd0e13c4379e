"""What a person hears and sees: FluidSynth audio with a General MIDI SoundFont, piano rolls.
No torch; FluidSynth and matplotlib are imported when first used."""

from melodia.output.audio import render, render_stems
from melodia.output.plot import plot_piano_roll
from melodia.output.synth import find_soundfont

__all__ = ["find_soundfont", "plot_piano_roll", "render", "render_stems"]
