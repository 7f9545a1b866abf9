import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.text import SentencePieceTokenizer, load_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def corpus() -> str:
    import os
    from pathlib import Path

    return (Path(os.environ["TFPRETRAIN_DATA_DIR"]) / "tinyshakespeare" / "input.txt").read_text()[
        :60000
    ]


@pytest.fixture(scope="module")
def tokenizer(corpus) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(corpus, vocabulary_size=400)


def test_trained_vocabulary_round_trips_text_exactly(tokenizer, corpus):
    assert tokenizer.vocabulary_size == 400
    sample = corpus[:2000]
    ids = tokenizer.encode(sample)
    assert ids.dtype == np.int32
    # Subwords: far fewer tokens than characters.
    assert len(ids) < 0.7 * len(sample)
    # Newlines, runs of spaces and unseen characters survive (identity normalisation, byte
    # fallback).
    for text in (sample, "two  spaces\n\n\tand tabs", "naïve 😀 — ünïcode"):
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_in_graph_tokenizer_matches_the_python_package(tokenizer, corpus):
    lines = [line for line in corpus[:3000].split("\n") if line][:20] + ["😀 unseen"]
    ragged = tf.function(tokenizer.tf_encode)(tf.constant(lines))
    for row, line in zip(ragged.to_list(), lines, strict=True):
        assert row == tokenizer.encode(line).tolist()
    decoded = tokenizer.tf_decode(ragged).numpy()
    assert [s.decode("utf-8") for s in decoded] == lines


def test_lines_encoded_one_by_one_give_the_ids_of_the_whole_text(corpus):
    # What clm's streaming relies on: no dummy prefix, and pieces never cross a newline.
    tokenizer = train_tokenizer("sentencepiece", corpus, 400)
    lines = corpus[:4000].split("\n")
    pieces = [line + "\n" for line in lines[:-1]] + lines[-1:]
    assert [i for piece in pieces for i in tokenizer.encode(piece)] == (
        tokenizer.encode(corpus[:4000]).tolist()
    )


@pytest.mark.parametrize("dummy_prefix, spaces", [(True, "  "), (False, "   ")])
def test_in_graph_decode_equals_decode_for_any_ids(tokenizer, corpus, dummy_prefix, spaces):
    # A tokenizer of its own: tensorflow-text's model resource is kernel-owned and did not
    # outlive the other test's traced function. Without the dummy prefix too (clm's).
    if not dummy_prefix:
        tokenizer = SentencePieceTokenizer.train(corpus, vocabulary_size=400, dummy_prefix=False)
    tokenizer = SentencePieceTokenizer(tokenizer.model_proto)
    # tensorflow-text alone drops every whitespace piece at the start of a row; `decode` only the
    # first piece's dummy-prefix space. Leading spaces, whitespace-only rows, empty rows and
    # random ids (byte pieces, broken UTF-8) must come out the same both ways, in and out of a
    # graph.
    space = tokenizer._processor.piece_to_id("\u2581")
    rows = [
        [space],
        [space] * 3,
        [space, space, 100],
        [100, space, space],
        [],
        tokenizer.encode("   leading  and trailing  ").tolist(),
    ]
    rows += np.random.default_rng(0).integers(0, tokenizer.vocabulary_size, (100, 9)).tolist()
    ragged = tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)
    expected = [tokenizer.decode(row) for row in rows]
    assert expected[1] == spaces  # three "▁": with a dummy prefix the first is its space
    for decoded in (tokenizer.tf_decode(ragged), tf.function(tokenizer.tf_decode)(ragged)):
        assert [s.decode("utf-8") for s in decoded.numpy()] == expected


def test_save_and_load(tokenizer, tmp_path):
    tokenizer.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, SentencePieceTokenizer)
    text = "To be, or not to be"
    np.testing.assert_array_equal(loaded.encode(text), tokenizer.encode(text))


def test_bad_input(corpus):
    with pytest.raises(ValueError, match="empty"):
        SentencePieceTokenizer.train("  \n ", vocabulary_size=400)
    with pytest.raises(ValueError, match="vocabulary_size"):
        SentencePieceTokenizer.train(corpus, vocabulary_size=50)
    with pytest.raises(ValueError, match="model_type"):
        SentencePieceTokenizer.train(corpus, model_type="word")
    with pytest.raises(ValueError, match="sentencepiece"):
        SentencePieceTokenizer(b"not a model")
