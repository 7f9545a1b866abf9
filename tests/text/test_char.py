import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.text import CharTokenizer, UnknownCharacterError, load_tokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nÉtoile — naïve café!"


def test_vocabulary_is_sorted_distinct_characters_and_round_trips():
    tok = CharTokenizer.from_text(TEXT)
    assert tok.vocabulary == sorted(set(TEXT))
    assert tok.vocabulary_size == len(set(TEXT))
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int32
    # The id of a character is its index in the sorted vocabulary (nanoGPT's stoi).
    stoi = {c: i for i, c in enumerate(sorted(set(TEXT)))}
    np.testing.assert_array_equal(ids, [stoi[c] for c in TEXT])
    assert tok.decode(ids) == TEXT


def test_unknown_characters_are_an_error_naming_them():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(UnknownCharacterError, match="'xz'"):
        tok.encode("abxcz")
    with pytest.raises(ValueError, match="outside"):
        tok.encode("€")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tok.decode([0, 3])


def test_in_graph_encode_and_decode_agree_with_numpy():
    tok = CharTokenizer.from_text(TEXT)
    lines = TEXT.split("\n")
    ragged = tf.function(tok.tf_encode)(tf.constant(lines))
    assert ragged.dtype == tf.int32
    for row, line in zip(ragged.to_list(), lines, strict=True):
        assert row == tok.encode(line).tolist()
    decoded = tf.function(tok.tf_decode)(ragged)
    assert [s.decode("utf-8") for s in decoded.numpy()] == lines
    # Dense ids decode too.
    dense = tok.tf_decode(tf.constant([tok.encode("Fir").tolist()]))
    assert dense.numpy()[0].decode() == "Fir"


def test_in_graph_encode_fails_on_unknown_characters():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        tf.function(tok.tf_encode)(tf.constant(["ab", "aXb"]))
    # A streamed corpus leaves them out instead (clm's tokenizer sees only a sample).
    kept = tok.tf_encode(tf.constant(["ab", "aXb", "XY"]), drop_unknown=True)
    assert kept.dtype == tf.int32 and kept.to_list() == [[0, 1], [0, 1], []]


def test_save_and_load(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    tok.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, CharTokenizer) and loaded.vocabulary == tok.vocabulary
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing")


def test_bad_vocabularies():
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")
    with pytest.raises(ValueError, match="one character"):
        CharTokenizer(["ab", "c"])
    with pytest.raises(ValueError, match="duplicates"):
        CharTokenizer(["a", "a"])
