import keras
import numpy as np
import pytest

from tfpretrain.layers import MultiHeadSelfAttention, TokenAndPositionEmbedding
from tfpretrain.layers._initializers import clone_initializer
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.gpt import GPTConfig, build_gpt
from tfpretrain.models.t5 import Seq2SeqConfig, build_seq2seq


def repeated_weights(model) -> list[tuple[str, str]]:
    """Pairs of randomly initialised weights that start with the same values."""
    seen: dict[bytes, str] = {}
    pairs = []
    for weight in model.weights:
        values = np.asarray(weight.numpy(), np.float32).ravel()
        if values.std() == 0:  # zeros, ones: equal by design
            continue
        key = values[:64].tobytes()
        if key in seen:
            pairs.append((seen[key], weight.path))
        seen.setdefault(key, weight.path)
    return pairs


@pytest.mark.parametrize("family", ["gpt", "bert", "t5"])
def test_every_random_weight_gets_its_own_draw(family):
    # Keras 3 fixes an unseeded initializer's seed when it is created: one instance shared by
    # the query, key and value kernels (or the token and position tables) made them equal.
    keras.utils.set_random_seed(0)
    if family == "gpt":
        model = build_gpt(
            GPTConfig(
                vocabulary_size=40, sequence_length=16, num_layers=2, num_heads=2, hidden_dim=16
            )
        )
    elif family == "bert":
        model = BertEncoder(BertConfig.preset("tiny", vocabulary_size=50, max_sequence_length=32))
    else:
        model = build_seq2seq(
            Seq2SeqConfig(
                vocabulary_size=40,
                hidden_dim=32,
                num_heads=4,
                intermediate_dim=64,
                num_encoder_layers=2,
                num_decoder_layers=2,
                num_sentinels=4,
                encoder_length=16,
                decoder_length=16,
            )
        )
    assert repeated_weights(model) == []


def test_layers_with_one_initializer_for_several_weights():
    init = keras.initializers.RandomNormal(stddev=0.02)
    attention = MultiHeadSelfAttention(num_heads=2, key_dim=8, kernel_initializer=init)
    attention.build((None, 4, 16))
    kernels = [attention.query_kernel, attention.key_kernel, attention.value_kernel]
    assert len({np.asarray(k).tobytes() for k in kernels}) == 3
    embedding = TokenAndPositionEmbedding(20, 10, 8, embeddings_initializer=init)
    embedding.build()
    assert not np.allclose(
        embedding.token_embedding.embeddings[:10], embedding.position_embedding.embeddings
    )
    # A seeded initializer stays reproducible through its copies.
    seeded = keras.initializers.RandomNormal(seed=3)
    assert np.array_equal(clone_initializer(seeded)((4, 4)), clone_initializer(seeded)((4, 4)))
    assert isinstance(clone_initializer("glorot_uniform"), keras.initializers.GlorotUniform)
