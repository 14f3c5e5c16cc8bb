"""Hypernetworks that generate or modulate the weights of the cells in ``search_spaces.cells``.

Modes (per layer; see ``docs/search_spaces.md``): ``none``, ``static``, ``dynamic`` (recurrent
cells only), ``rnn_chunks``; each non-``none`` mode may carry the ``mip`` flag.
"""

from search_spaces._names import HYPERNETS
from search_spaces.hyper._dynamic import DynamicScaler
from search_spaces.hyper._mip import mip_encode
from search_spaces.hyper._weights import ChunkLayout, ChunkRNNHypernet, StaticHypernet, target_names

__all__ = [
           "HYPERNETS",
           "ChunkLayout",
           "ChunkRNNHypernet",
           "DynamicScaler",
           "StaticHypernet",
           "mip_encode",
           "target_names",
]
