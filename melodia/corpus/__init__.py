"""From folders of MIDI and scores to token shards: sources, score input (music21), the score
cache, shards and ``melodia prepare``.

::

    from melodia.corpus import PrepareConfig, prepare, TokenDataset
    report = prepare(PrepareConfig(source="data/midi/chorales", out="runs/chorales"))
"""

from melodia.corpus.prepare import PrepareConfig, PrepareReport, prepare
from melodia.corpus.scores import ScoreConfig, read_score
from melodia.corpus.shards import TokenDataset, read_manifest

__all__ = ["PrepareConfig", "PrepareReport", "ScoreConfig", "TokenDataset", "prepare",
           "read_manifest", "read_score"]
