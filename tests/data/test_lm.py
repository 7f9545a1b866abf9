import numpy as np
import pytest

from tfpretrain.data.lm import lm_eval_dataset, lm_train_dataset, split_tokens


def test_split_is_first_90_and_last_10_percent():
    tokens = np.arange(1000)
    train, val = split_tokens(tokens)
    np.testing.assert_array_equal(train, np.arange(900))
    np.testing.assert_array_equal(val, np.arange(900, 1000))
    with pytest.raises(ValueError):
        split_tokens(tokens, 1.0)


def test_training_windows_are_random_contiguous_slices_with_shifted_targets():
    tokens = np.arange(500, dtype=np.int32) * 3
    data = lm_train_dataset(tokens, seq_len=8, batch_size=4, seed=7)
    starts = []
    for x, y in data.take(50):
        x, y = x.numpy(), y.numpy()
        assert x.shape == y.shape == (4, 8) and x.dtype == np.int32
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
        for row_x, row_y in zip(x, y, strict=True):
            start = row_x[0] // 3
            np.testing.assert_array_equal(row_x, tokens[start : start + 8])
            assert row_y[-1] == tokens[start + 8]
            starts.append(start)
    # Offsets are spread over the whole stream, not a fixed grid.
    assert min(starts) < 50 and max(starts) > 440 and len(set(starts)) > 150
    # Same seed, same batches; another seed, other batches.
    first = [x.numpy() for x, _ in lm_train_dataset(tokens, 8, 4, seed=7).take(3)]
    again = [x.numpy() for x, _ in lm_train_dataset(tokens, 8, 4, seed=7).take(3)]
    other = [x.numpy() for x, _ in lm_train_dataset(tokens, 8, 4, seed=8).take(3)]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_validation_windows_are_fixed_and_non_overlapping():
    tokens = np.arange(101, dtype=np.int32)
    data = lm_eval_dataset(tokens, seq_len=10, batch_size=4)
    xs = np.concatenate([x.numpy() for x, _ in data])
    ys = np.concatenate([y.numpy() for _, y in data])
    np.testing.assert_array_equal(xs, np.arange(100).reshape(10, 10))
    np.testing.assert_array_equal(ys, np.arange(1, 101).reshape(10, 10))
    again = np.concatenate([x.numpy() for x, _ in data])
    np.testing.assert_array_equal(xs, again)


def test_streams_shorter_than_a_window_are_an_error():
    with pytest.raises(ValueError, match="seq-len"):
        lm_train_dataset(np.arange(8), seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="seq-len"):
        lm_eval_dataset(np.arange(5), seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        lm_train_dataset(np.arange(100), seq_len=8, batch_size=0)
