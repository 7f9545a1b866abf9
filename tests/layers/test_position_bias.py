import math

import numpy as np
import pytest
import tensorflow as tf

from tests.checks import check_config_roundtrip, check_xla
from tfpretrain.layers.position_bias import RelativePositionBias, relative_position_buckets


def bucket_reference(rel: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """T5's bucketing written out for one relative position (key - query), in plain Python."""
    offset = 0
    if bidirectional:
        num_buckets //= 2
        if rel > 0:
            offset = num_buckets
        n = abs(rel)
    else:
        n = max(-rel, 0)
    exact = num_buckets // 2
    if n < exact:
        return offset + n
    far = exact + int(math.log(n / exact) / math.log(max_distance / exact) * (num_buckets - exact))
    return offset + min(far, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("buckets,distance", [(32, 128), (8, 20)])
def test_buckets_match_reference(bidirectional, buckets, distance):
    rel = np.arange(-300, 301)
    got = np.asarray(relative_position_buckets(rel, bidirectional, buckets, distance))
    want = [bucket_reference(int(r), bidirectional, buckets, distance) for r in rel]
    np.testing.assert_array_equal(got, want)
    assert got.min() >= 0 and got.max() == buckets - 1


def test_known_t5_buckets():
    def b(r, bidi):
        return int(relative_position_buckets(np.array([r]), bidi, 32, 128)[0])

    # Encoder: keys before the query use buckets 0-15, keys after it 16-31.
    assert [
        b(0, True),
        b(-1, True),
        b(1, True),
        b(-7, True),
        b(-8, True),
        b(-500, True),
        b(500, True),
    ] == [0, 1, 17, 7, 8, 15, 31]
    # Decoder: future keys share bucket 0 (they are masked), the past uses all 32.
    assert [b(5, False), b(-1, False), b(-15, False), b(-16, False), b(-500, False)] == [
        0,
        1,
        15,
        16,
        31,
    ]


def test_bias_gathers_table_per_head_with_offset():
    layer = RelativePositionBias(num_heads=3, num_buckets=8, max_distance=20, bidirectional=False)
    x = np.zeros((2, 4, 5), "float32")
    bias = np.asarray(layer(x, key_length=9, query_offset=3))
    assert bias.shape == (1, 3, 4, 9)
    table = np.asarray(layer.embeddings)
    for i in range(4):
        for j in range(9):
            bucket = bucket_reference(j - (i + 3), False, 8, 20)
            np.testing.assert_allclose(bias[0, :, i, j], table[bucket], rtol=1e-6)


def test_config_roundtrip_and_xla():
    layer = RelativePositionBias(num_heads=2, num_buckets=16, max_distance=64)
    x = np.zeros((1, 6, 4), "float32")
    check_config_roundtrip(layer, x)
    check_xla(lambda v: layer(v), tf.constant(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_distance"):
        RelativePositionBias(num_heads=2, num_buckets=32, max_distance=4)
    with pytest.raises(ValueError, match="num_heads"):
        RelativePositionBias(num_heads=0)
