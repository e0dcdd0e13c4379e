"""Live MIDI: ports, decoding and scheduling of a generated stream as it is played."""
