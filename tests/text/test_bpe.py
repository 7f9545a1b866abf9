import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tiktoken  # the dev extra: missing fails, never skips
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpretrain.text import BytePairTokenizer, load_tokenizer
from tfpretrain.text.bpe import (
    ENDOFTEXT,
    GPT2_PATTERN,
    bytes_to_token,
    ranks_to_merges,
    read_tiktoken_ranks,
    write_hf_files,
)

EDGE_CASES = [
    "Hello world, this is GPT-2 tokenization.",
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "a  b",
    "a \nb",
    "\n x",
    "  's",
    "   leading spaces",
    "trailing spaces   ",
    "mid   dle\t\ttabs\t and\n\nnewlines \n",
    "\t\t\tfoo  \n\n bar   ",
    "It's, they'll, we've, I'm, you'd, we're, don't",
    "IT'S 'S 'LL 'Ll",
    "it 's",
    "x'sy'llz '",
    "!!!'s ''s 's's",
    "typographic \u2019s and \u2018quotes\u2019",
    "😀 emoji 👍🏽 and a family 👨\u200d👩\u200d👧\u200d👦 (ZWJ) 🏳️\u200d🌈",
    "日本語のテキスト、中文文本。한국어",
    "e\u0301 combining a\u0308\u0304 marks; Zalgo z\u0336\u0321a\u035c",
    "digits 1234567890 3.14159 1,000,000 ١٢٣ Ⅻ ½",
    "ideographic\u3000\u3000space, nbsp\u00a0\u00a0x, vt\x0b\x0bx, nel\x85\x85x",
    "file separators \x1c\x1cx and \x00 nul",
    "before<|endoftext|>after",
    "<|endoftext|>",
    "  <|endoftext|>  \n<|endoftext|><|endoftext|>x",
    "\u00ad soft hyphen, \ufeff bom, \U0010fffd private",
    " " * 40 + "x" + "-" * 60 + "\n" * 5,
]


def data_path(*parts) -> Path:
    import os

    return Path(os.environ["TFPRETRAIN_DATA_DIR"]).joinpath(*parts)


def corpus_lines() -> list[str]:
    """Every line of Tiny Shakespeare and WikiText-2 valid + test, every SST-2 sentence."""
    lines = data_path("tinyshakespeare", "input.txt").read_text(encoding="utf-8").split("\n")
    for split in ("valid", "test"):
        lines += data_path("wikitext-2", f"{split}.txt").read_text(encoding="utf-8").split("\n")
    for split, column in (("train", 0), ("dev", 0), ("test", 1)):
        rows = data_path("sst2", f"{split}.tsv").read_text(encoding="utf-8").split("\n")[1:]
        lines += [row.split("\t")[column] for row in rows if row]
    return lines


@pytest.fixture(scope="module")
def ranks_path() -> Path:
    return data_path("gpt2", "gpt2.tiktoken")


@pytest.fixture(scope="module")
def reference(ranks_path):
    """tiktoken's GPT-2 encoding, built offline from the shared ranks file."""
    from tiktoken.load import load_tiktoken_bpe

    return tiktoken.Encoding(
        name="gpt2_offline",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(ranks_path)),
        special_tokens={ENDOFTEXT: 50256},
    )


@pytest.fixture(scope="module")
def tokenizer(ranks_path) -> BytePairTokenizer:
    return BytePairTokenizer.from_tiktoken(ranks_path)


def assert_same_ids(ragged: tf.RaggedTensor, expected: list[list[int]], lines: list[str]):
    """Compares flat ids and row lengths at once; on a difference names the first line."""
    lengths = ragged.row_lengths().numpy()
    want_lengths = np.array([len(e) for e in expected])
    flat = ragged.flat_values.numpy()
    want_flat = np.array([i for e in expected for i in e], np.int64)
    if np.array_equal(lengths, want_lengths) and np.array_equal(flat, want_flat):
        return
    rows = ragged.to_list()
    bad = next(i for i, (a, b) in enumerate(zip(rows, expected, strict=True)) if a != b)
    raise AssertionError(f"line {bad} {lines[bad]!r}: got {rows[bad]}, tiktoken {expected[bad]}")


def test_ids_equal_tiktoken_on_every_corpus_line(tokenizer, reference):
    lines = corpus_lines()
    assert len(lines) > 100_000
    expected = reference.encode_ordinary_batch(lines, num_threads=2)
    encode = tf.function(tokenizer.tokenize)
    for start in range(0, len(lines), 16384):
        chunk = lines[start : start + 16384]
        assert_same_ids(encode(tf.constant(chunk)), expected[start : start + 16384], chunk)


def test_published_gpt2_ids(tokenizer):
    ids = tokenizer.tokenize(tf.constant("Hello world, this is GPT-2 tokenization."))
    assert ids.numpy().tolist() == [15496, 995, 11, 428, 318, 402, 11571, 12, 17, 11241, 1634, 13]
    assert tokenizer.vocabulary_size == 50257
    assert tokenizer.token_to_id(ENDOFTEXT) == 50256


def test_edge_cases_equal_tiktoken(tokenizer, reference):
    ordinary = tokenizer.tokenize(tf.constant(EDGE_CASES))
    assert_same_ids(ordinary, [reference.encode_ordinary(s) for s in EDGE_CASES], EDGE_CASES)
    special = tokenizer.tokenize(tf.constant(EDGE_CASES), allowed_special="all")
    expected = [reference.encode(s, allowed_special={ENDOFTEXT}) for s in EDGE_CASES]
    assert_same_ids(special, expected, EDGE_CASES)
    assert 50256 in special.flat_values.numpy() and 50256 not in ordinary.flat_values.numpy()
    # Each string alone (a batch of one, scalar input) gives the same ids as in the batch.
    for text, row in zip(EDGE_CASES, ordinary.to_list(), strict=True):
        assert tokenizer.tokenize(tf.constant(text)).numpy().tolist() == row


def test_allowed_special_set_at_construction(ranks_path, reference):
    tok = BytePairTokenizer.from_tiktoken(ranks_path, allowed_special=[ENDOFTEXT])
    text = "a<|endoftext|>b"
    assert tok.encode(text).tolist() == reference.encode(text, allowed_special="all")
    assert tok.tokenize(tf.constant([text]), allowed_special=()).to_list() == [
        reference.encode_ordinary(text)
    ]
    with pytest.raises(ValueError, match="not special"):
        BytePairTokenizer.from_tiktoken(ranks_path, allowed_special=["<|nope|>"])


def test_detokenize_inverts_tokenize(tokenizer):
    ids = tokenizer.tokenize(tf.constant(EDGE_CASES), allowed_special="all")
    texts = [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]
    assert texts == EDGE_CASES
    dense = tokenizer.tokenize(tf.constant("dense ids")).numpy()
    assert tokenizer.detokenize(dense).numpy() == b"dense ids"
    assert tokenizer.decode(tokenizer.encode("naïve café")) == "naïve café"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_round_trip_any_valid_utf8(tokenizer, texts):
    ids = tokenizer.tokenize(tf.constant([t.encode("utf-8") for t in texts]))
    back = [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]
    assert back == texts


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list(" \t\n\r\u3000\u00a0'sltdvemrA1!😀é\u0301")), max_size=30)
)
def test_ids_equal_tiktoken_on_generated_whitespace_and_contractions(tokenizer, reference, text):
    assert tokenizer.encode(text).tolist() == reference.encode_ordinary(text)


def test_invalid_utf8_is_refused(tokenizer):
    with pytest.raises(tf.errors.InvalidArgumentError):
        tokenizer.tokenize(tf.constant([b"ok", b"bad \xff byte"]))


def test_hf_files_loader_equals_tiktoken_loader(tmp_path, ranks_path, tokenizer, reference):
    ranks = read_tiktoken_ranks(ranks_path)
    write_hf_files(ranks, tmp_path, {ENDOFTEXT: 50256})
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert len(vocab) == 50257 and vocab["Ġthe"] == 262 and merges[1] == "Ġ t"
    hf = BytePairTokenizer.from_hf(tmp_path)
    assert hf.special_tokens == {ENDOFTEXT: 50256} and hf.merges is not None
    lines = corpus_lines()[::20] + EDGE_CASES
    ids = hf.tokenize(tf.constant(lines), allowed_special="all")
    assert_same_ids(ids, [reference.encode(s, allowed_special="all") for s in lines], lines)


def test_hf_ids_need_not_be_ranks(tmp_path, ranks_path, reference):
    """RoBERTa-style vocab.json: ids shuffled against merge order; the id map must follow."""
    ranks = read_tiktoken_ranks(ranks_path)
    order = np.random.default_rng(0).permutation(len(ranks))
    vocab = {bytes_to_token(t): int(order[r]) for t, r in ranks.items()}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges = [f"{bytes_to_token(a)} {bytes_to_token(b)}" for a, b in ranks_to_merges(ranks)]
    (tmp_path / "merges.txt").write_text("\n".join(merges), encoding="utf-8")
    tok = BytePairTokenizer.from_hf(tmp_path / "vocab.json", tmp_path / "merges.txt")
    lines = corpus_lines()[:3000]
    expected = [[int(order[i]) for i in reference.encode_ordinary(s)] for s in lines]
    assert_same_ids(tok.tokenize(tf.constant(lines)), expected, lines)


def test_tf_data_map_and_keras_config(tokenizer, reference):
    lines = corpus_lines()[:500]
    ds = tf.data.Dataset.from_tensor_slices(lines).batch(64).map(tokenizer)
    rows = [row for batch in ds for row in batch.to_list()]
    assert rows == [reference.encode_ordinary(s) for s in lines]
    ds = tf.data.Dataset.from_tensor_slices(lines[:50]).map(tokenizer.tokenize)
    assert [r.numpy().tolist() for r in ds] == rows[:50]
    clone = BytePairTokenizer.from_config(tokenizer.get_config())
    assert clone(tf.constant(lines[:50])).to_list() == rows[:50]


def test_save_load_and_from_pretrained(tmp_path, tokenizer, ranks_path):
    text = tf.constant(["Saved, loaded: the same ids 123 😀<|endoftext|>"])
    expected = tokenizer.tokenize(text, allowed_special="all").to_list()
    tokenizer.save(tmp_path / "tok")
    for loaded in (
        BytePairTokenizer.load(tmp_path / "tok"),
        load_tokenizer(tmp_path / "tok"),
        BytePairTokenizer.from_pretrained(tmp_path / "tok"),
        BytePairTokenizer.from_pretrained(ranks_path),
    ):
        assert isinstance(loaded, BytePairTokenizer)
        assert loaded.tokenize(text, allowed_special="all").to_list() == expected


RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
loaded = tf.saved_model.load(sys.argv[1])
lines = json.loads(sys.argv[2])
ids = loaded.tokenize(tf.constant(lines))
text = loaded.detokenize(ids)
print(json.dumps({"ids": ids.to_list(), "text": [t.decode("utf-8") for t in text.numpy()],
                  "modules": sorted(m for m in sys.modules if m.startswith("tfpretrain"))}))
"""


def test_saved_model_reloads_in_a_fresh_process(tmp_path, tokenizer, reference):
    module = tf.Module()
    module.tokenizer = tokenizer
    module.tokenize = tf.function(
        lambda s: tokenizer.tokenize(s, allowed_special="all"),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    module.detokenize = tf.function(
        tokenizer.detokenize,
        input_signature=[tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)],
    )
    tf.saved_model.save(module, str(tmp_path / "sm"))
    lines = EDGE_CASES[:12] + EDGE_CASES[-6:]
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path / "sm"), json.dumps(lines)],
        capture_output=True,
        text=True,
        check=True,
    )
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["modules"] == []
    assert reply["ids"] == [reference.encode(s, allowed_special="all") for s in lines]
    assert reply["text"] == lines
