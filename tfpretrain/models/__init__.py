"""Pre-training families, each a functional Keras model built from `tfpretrain.layers`.

One module per family; its config dataclass, builder and (for the language models) generator:

* `autoencoder`: `AutoencoderConfig`, `build_autoencoder`
* `simclr`: `SimCLRConfig`, `build_simclr`, `SimCLR`
* `gan`: `GANConfig`, `build_gan`, `GAN`
* `bert`: `BertConfig`, `BertEncoder`, `BertMaskedLM`
* `classifier`: `TextClassifier` (a head on any encoder)
* `distill`: `Distiller` (teacher -> student)
* `gpt`: `GPTConfig`, `build_gpt`, `TextGenerator`, `generate`
* `t5`: `Seq2SeqConfig`, `build_seq2seq`, `Seq2SeqGenerator`
"""

from tfpretrain.models.autoencoder import AutoencoderConfig, autoencoder_layer, build_autoencoder
from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.models.distill import Distiller
from tfpretrain.models.gan import (
    GAN,
    GAN_PRESETS,
    GANConfig,
    build_discriminator,
    build_gan,
    build_generator,
    discriminator_features,
    gan_config,
)
from tfpretrain.models.gpt import GPTConfig, TextGenerator, build_gpt, generate
from tfpretrain.models.simclr import SimCLR, SimCLRConfig, build_simclr
from tfpretrain.models.t5 import Seq2SeqConfig, Seq2SeqGenerator, build_seq2seq

__all__ = [
    "GAN",
    "GAN_PRESETS",
    "AutoencoderConfig",
    "BertConfig",
    "BertEncoder",
    "BertMaskedLM",
    "Distiller",
    "GANConfig",
    "GPTConfig",
    "Seq2SeqConfig",
    "Seq2SeqGenerator",
    "SimCLR",
    "SimCLRConfig",
    "TextClassifier",
    "TextGenerator",
    "autoencoder_layer",
    "build_autoencoder",
    "build_discriminator",
    "build_gan",
    "build_generator",
    "build_gpt",
    "build_seq2seq",
    "build_simclr",
    "discriminator_features",
    "gan_config",
    "generate",
]
