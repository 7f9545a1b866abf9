import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.data.lm import (
    lm_eval_dataset,
    lm_stream_eval,
    lm_stream_train,
    lm_train_dataset,
    split_tokens,
    text_sample,
    token_windows,
)
from tfpretrain.data.splits import holdout_stream
from tfpretrain.text import CharTokenizer


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


# Numbered lines (every 16 characters hold a number, so no two windows are alike), blank lines
# and indentation.
LINES = ["" if i % 7 == 3 else f"  {i}:" if i % 5 == 0 else f"{i} hear me {i}." for i in range(150)]
TEXT = "".join(line + "\n" for line in LINES)


def _lines():
    return tf.data.Dataset.from_tensor_slices(LINES)


def test_streamed_windows_are_the_text_with_its_line_breaks():
    tok = CharTokenizer.from_text(TEXT)
    windows = np.stack(list(token_windows(_lines(), tok.tf_encode, 15).as_numpy_iterator()))
    # Consecutive 16-token windows of the whole text, blank lines and indentation kept.
    assert windows.shape == (len(TEXT) // 16, 16)
    assert tok.decode(windows.ravel()) == TEXT[: windows.size]
    assert text_sample(_lines(), 5) == "  0:\n"
    assert text_sample(_lines(), 6) == "  0:\n1 hear me 1.\n"
    assert text_sample(_lines(), 10**6) == TEXT


def test_streamed_training_and_validation_batches():
    tok = CharTokenizer.from_text(TEXT)
    train, held = holdout_stream(token_windows(_lines(), tok.tf_encode, 15), 0.1)
    val, tokens = lm_stream_eval(held, 15, batch_size=4, max_tokens=64)
    xs, ys = (np.concatenate([pair[k].numpy() for pair in val]) for k in (0, 1))
    assert tokens == 64 and xs.shape == ys.shape == (4, 15)  # capped at 64 tokens
    np.testing.assert_array_equal(xs[:, 1:], ys[:, :-1])
    # The 10th, 20th, ... windows of the text.
    assert tok.decode(np.concatenate([xs[1], ys[1, -1:]])) == TEXT[19 * 16 : 20 * 16]
    seen = set()
    for x, y in lm_stream_train(train, 15, batch_size=8, seed=3).take(40):
        assert x.shape == y.shape == (8, 15) and x.dtype == tf.int32
        seen |= {tok.decode(row) for row in x.numpy()}
    assert not seen & {tok.decode(row) for row in xs}  # nothing held out trains
    assert len(seen) == len(TEXT) // 16 - len(TEXT) // 160  # every other window does
    first = [b[0].numpy() for b in lm_stream_train(train, 15, 8, seed=3).take(30)]
    again = [b[0].numpy() for b in lm_stream_train(train, 15, 8, seed=3).take(30)]
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="no window of seq_len \\+ 1 = 16 tokens.*--seq-len"):
        lm_stream_eval(held.take(0), 15, batch_size=4, max_tokens=64)
