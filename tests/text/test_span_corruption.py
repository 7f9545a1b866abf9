import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.text.span_corruption import corrupted_lengths, span_corruption

SENTINEL = 1000
EOS = 1


def reconstruct(inputs, targets):
    """Puts the dropped spans of `targets` back in place of the sentinels of `inputs`."""
    spans, current = {}, None
    for t in targets[:-1]:
        if t >= SENTINEL:
            current = t
            spans[current] = []
        else:
            spans[current].append(t)
    out = []
    for t in inputs[:-1]:
        out.extend(spans[t] if t >= SENTINEL else [t])
    return out


def chunks(n=64, length=100):
    ids = np.arange(n * length, dtype=np.int32) % 900 + 3
    return tf.data.Dataset.from_tensor_slices(ids.reshape(n, length)), ids.reshape(n, length)


def test_inputs_and_targets_partition_the_text():
    data, originals = chunks()
    noise, spans = [], []
    for pair, original in zip(
        span_corruption(data, sentinel_start=SENTINEL, eos_id=EOS, seed=1), originals, strict=True
    ):
        inputs, targets = pair["inputs"].numpy(), pair["targets"].numpy()
        assert inputs[-1] == EOS and targets[-1] == EOS
        assert (len(inputs), len(targets)) == corrupted_lengths(100)
        assert reconstruct(inputs, targets) == original.tolist()
        input_sentinels = inputs[inputs >= SENTINEL]
        np.testing.assert_array_equal(input_sentinels, SENTINEL + np.arange(len(input_sentinels)))
        noise.append(sum(1 for t in targets[:-1] if t < SENTINEL))
        spans.append(len(input_sentinels))
    assert set(noise) == {15}  # 15% of 100 tokens
    assert abs(np.sum(noise) / np.sum(spans) - 3.0) < 0.1  # mean span length 3


def test_full_targets_are_the_text_and_the_inputs_are_unchanged():
    data, originals = chunks(8)
    kwargs = dict(sentinel_start=SENTINEL, eos_id=EOS, seed=2, rerandomize_each_iteration=False)
    spans = list(span_corruption(data, **kwargs))
    full = list(span_corruption(data, full_targets=True, **kwargs))
    assert corrupted_lengths(100, full_targets=True) == (corrupted_lengths(100)[0], 101)
    for a, b, original in zip(spans, full, originals, strict=True):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])  # the same corruption
        assert b["targets"].numpy().tolist() == original.tolist() + [EOS]
        assert reconstruct(b["inputs"].numpy(), a["targets"].numpy()) == original.tolist()


def test_spans_are_drawn_anew_each_epoch_and_fixed_on_request():
    data, _ = chunks(4)
    fresh = span_corruption(data, sentinel_start=SENTINEL, eos_id=EOS, seed=0)
    first = [p["inputs"].numpy().tolist() for p in fresh]
    second = [p["inputs"].numpy().tolist() for p in fresh]
    assert first != second
    fixed = span_corruption(
        data, sentinel_start=SENTINEL, eos_id=EOS, seed=0, rerandomize_each_iteration=False
    )
    assert [p["inputs"].numpy().tolist() for p in fixed] == [
        p["inputs"].numpy().tolist() for p in fixed
    ]


def test_sentinel_clash_and_bad_settings():
    clash = tf.data.Dataset.from_tensor_slices(np.full((2, 20), SENTINEL + 3, np.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sentinel"):
        list(span_corruption(clash, sentinel_start=SENTINEL, eos_id=EOS))
    data, _ = chunks(2)
    with pytest.raises(ValueError, match="noise_density"):
        span_corruption(data, sentinel_start=SENTINEL, eos_id=EOS, noise_density=1.5)
    with pytest.raises(ValueError, match="eos_id"):
        span_corruption(data, sentinel_start=SENTINEL, eos_id=SENTINEL)


def test_descending_sentinels_count_down_from_the_top_as_t5s():
    ids = tf.data.Dataset.from_tensor_slices(np.arange(2, 66, dtype=np.int32)).batch(
        64, drop_remainder=True
    )
    kwargs = dict(sentinel_start=100, eos_id=1, num_sentinels=10, seed=3)
    up = next(iter(span_corruption(ids, **kwargs)))
    down = next(iter(span_corruption(ids, descending_sentinels=True, **kwargs)))
    for key in ("inputs", "targets"):
        a, b = up[key].numpy(), down[key].numpy()
        sentinels = a >= 100
        assert sentinels.sum() >= 2
        np.testing.assert_array_equal(b[sentinels], 100 + 10 - 1 - (a[sentinels] - 100))
        np.testing.assert_array_equal(a[~sentinels], b[~sentinels])
