"""From folders of MIDI and scores to token shards: sources, score input (music21), the score
cache, shards and ``melodia prepare``.

::

    from melodia.corpus import PrepareConfig, TokenDataset, prepare
    report = prepare(["data/midi/chorales"], "runs/chorales", config=PrepareConfig(workers=1))
    train = TokenDataset("runs/chorales", "train")
"""

from melodia.corpus.preparation import PrepareConfig, PrepareReport, prepare
from melodia.corpus.scores import ScoreConfig, read_score
from melodia.corpus.shards import TokenDataset, read_manifest

__all__ = ["PrepareConfig", "PrepareReport", "ScoreConfig", "TokenDataset", "prepare",
           "read_manifest", "read_score"]
