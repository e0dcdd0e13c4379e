"""New music from a model: the config, the generator (``generate``, ``iter_events``), primers
and conditioning, the samplers (probability, embedding, beam) and grammar masks.

>>> from melodia.generation import GenerateConfig, generate_ids
>>> result = generate_ids("piano", GenerateConfig(seconds=2, seed=1))
>>> len(result.pieces), result.seed, result.encoding.name
(1, 1, 'piano')
"""

from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import Generated, generate, generate_ids, iter_events
from melodia.generation.grammar import GrammarConfig
from melodia.generation.session import band_styles, primer_events

__all__ = ["GenerateConfig", "Generated", "GrammarConfig", "SamplerConfig", "band_styles",
           "generate", "generate_ids", "iter_events", "primer_events"]
