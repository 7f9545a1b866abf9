"""Registered, serializable Keras layers shared by every tfpretrain model."""

from tfpretrain.layers.attention import MultiHeadSelfAttention, combine_masks
from tfpretrain.layers.autoencoder import Autoencoder
from tfpretrain.layers.embedding import TokenAndPositionEmbedding
from tfpretrain.layers.transformer import TransformerBlock

__all__ = [
    "Autoencoder",
    "MultiHeadSelfAttention",
    "TokenAndPositionEmbedding",
    "TransformerBlock",
    "combine_masks",
]
