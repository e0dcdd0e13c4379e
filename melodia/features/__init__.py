"""What a model is conditioned on besides the events: control signals (density, pitch classes,
a key), the note state, and band conditioning (meter, line-up, style, tempo). numpy only."""

from melodia.features.band import meter_features
from melodia.features.controls import CONTROL_DIM, NOTE_STATE_DIM, compute_controls, note_state
from melodia.features.keys import key_histogram
from melodia.features.plan import BandLayout, conditions

__all__ = ["BandLayout", "CONTROL_DIM", "NOTE_STATE_DIM", "compute_controls", "conditions",
           "key_histogram", "meter_features", "note_state"]
