import pytest

from melodia.encoding import EventRange, Vocabulary, get_encoding
from melodia.errors import EncodingError

# Magenta's PerformanceOneHotEncoding(num_velocity_bins=32) ids (note_seq's own tests pin these).
GOLDEN = [
    (("NOTE_ON", 0), 0), (("NOTE_ON", 60), 60), (("NOTE_ON", 127), 127),
    (("NOTE_OFF", 0), 128), (("NOTE_OFF", 72), 200), (("NOTE_OFF", 127), 255),
    (("TIME_SHIFT", 1), 256), (("TIME_SHIFT", 50), 305), (("TIME_SHIFT", 100), 355),
    (("VELOCITY", 1), 356), (("VELOCITY", 16), 371), (("VELOCITY", 32), 387),
]


@pytest.mark.parametrize("event,index", GOLDEN)
def test_piano_golden_ids(event, index):
    vocab = get_encoding("piano").vocab
    assert vocab.encode_event(*event) == index
    decoded = vocab.decode_event(index)
    assert (decoded.type, decoded.value) == event


def test_piano_vocab_size_is_388():
    assert get_encoding("piano").vocab_size == 388


def test_band_table_extends_piano_ids():
    band = get_encoding("band").vocab
    assert band.table() == [("NOTE_ON", 0, 127, 0), ("NOTE_OFF", 0, 127, 128),
                            ("TIME_SHIFT", 1, 100, 256), ("VELOCITY", 1, 32, 356),
                            ("PROGRAM", 0, 128, 388), ("TEMPO", 0, 31, 517)]
    assert band.size == 549


def test_round_trip_over_whole_table():
    for name in ("piano", "band"):
        vocab = get_encoding(name).vocab
        for index in range(vocab.size):
            event = vocab.decode_event(index)
            assert vocab.encode_event(event.type, event.value) == index


def test_out_of_range_events_raise():
    vocab = get_encoding("piano").vocab
    with pytest.raises(EncodingError, match="outside"):
        vocab.encode_event("TIME_SHIFT", 0)
    with pytest.raises(EncodingError, match="unknown event type"):
        vocab.encode_event("PROGRAM", 3)
    with pytest.raises(EncodingError, match="outside the vocabulary"):
        vocab.decode_event(388)


def test_pitch_range_config_shrinks_note_ranges():
    enc = get_encoding("piano", min_pitch=21, max_pitch=108)
    assert enc.vocab_size == 88 * 2 + 100 + 32
    assert enc.vocab.encode_event("NOTE_ON", 21) == 0


def test_ranges_must_be_unique_and_ordered():
    with pytest.raises(ValueError):
        Vocabulary((EventRange("A", 0, 1), EventRange("A", 0, 1)))
    with pytest.raises(ValueError):
        EventRange("B", 3, 2)
