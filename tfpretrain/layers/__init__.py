"""Registered, serializable Keras layers shared by every tfpretrain model."""

from tfpretrain.layers.attention import MultiHeadSelfAttention, combine_masks
from tfpretrain.layers.autoencoder import Autoencoder
from tfpretrain.layers.decoder import DecoderBlock
from tfpretrain.layers.dropout import Dropout
from tfpretrain.layers.embedding import TokenAndPositionEmbedding
from tfpretrain.layers.position_bias import RelativePositionBias
from tfpretrain.layers.transformer import TransformerBlock

__all__ = [
    "Autoencoder",
    "DecoderBlock",
    "Dropout",
    "MultiHeadSelfAttention",
    "RelativePositionBias",
    "TokenAndPositionEmbedding",
    "TransformerBlock",
    "combine_masks",
]
