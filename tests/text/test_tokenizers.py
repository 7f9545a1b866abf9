"""`load_tokenizer` on Hugging Face folders, token for token against `transformers`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers  # the dev extra: missing fails, never skips

from tests.hf_folders import (
    GPT2_VOCAB,
    bert_vocab,
    data_path,
    roberta_files,
    shakespeare,
    t5_spiece,
)
from tfpretrain.text import load_tokenizer
from tfpretrain.text.bpe import ENDOFTEXT, BytePairTokenizer, read_tiktoken_ranks, write_hf_files
from tfpretrain.text.seq2seq import Seq2SeqTokenizer
from tfpretrain.text.wordpiece import WordPieceTokenizer, read_vocab

TEXTS = ["Hello world, it's a test.", "  spaces\tand\nnew lines ", "naïve café — 東京", "x"]


def config(path, model_type: str, vocab_size: int) -> None:
    (path / "config.json").write_text(
        json.dumps({"model_type": model_type, "vocab_size": vocab_size})
    )


def test_gpt2_folder(tmp_path):
    write_hf_files(
        read_tiktoken_ranks(data_path("gpt2", "gpt2.tiktoken")),
        tmp_path,
        {ENDOFTEXT: GPT2_VOCAB - 1},
    )
    config(tmp_path, "gpt2", GPT2_VOCAB)
    ours = load_tokenizer(tmp_path)
    assert isinstance(ours, BytePairTokenizer) and ours.vocabulary_size == GPT2_VOCAB
    assert ours.special_tokens == {ENDOFTEXT: GPT2_VOCAB - 1}
    theirs = transformers.GPT2Tokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    for text in TEXTS:
        assert ours.encode(text).tolist() == theirs.encode(text)
        assert ours.decode(ours.encode(text)) == text


def test_roberta_folder_packs_like_transformers(tmp_path):
    vocab = roberta_files(tmp_path)
    config(tmp_path, "roberta", vocab)
    ours = load_tokenizer(tmp_path)
    assert [ours.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<mask>")] == [0, 1, 2, vocab - 1]
    theirs = transformers.RobertaTokenizer(
        str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")
    )
    packed = ours.pack(TEXTS, 12)
    expected = theirs(TEXTS, padding="max_length", truncation=True, max_length=12)
    np.testing.assert_array_equal(packed["token_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(packed["padding_mask"].numpy(), expected["attention_mask"])
    assert not packed["segment_ids"].numpy().any()
    pairs = TEXTS[::-1]  # <s> a </s></s> b </s>, the longer side cut first
    packed = ours.pack(TEXTS, 20, pairs=pairs)
    expected = theirs(TEXTS, pairs, padding="max_length", truncation=True, max_length=20)
    np.testing.assert_array_equal(packed["token_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(packed["padding_mask"].numpy(), expected["attention_mask"])
    gpt2 = BytePairTokenizer.from_tiktoken(data_path("gpt2", "gpt2.tiktoken"))
    with pytest.raises(
        ValueError,
        match=r"pack needs the special tokens \['<s>', '</s>', "
        r"'<pad>'\]",
    ):
        gpt2.pack(TEXTS, 12)


def test_t5_folder_ids_and_sentinels(tmp_path):
    t5_spiece(tmp_path)
    reference = transformers.T5Tokenizer.from_pretrained(tmp_path, extra_ids=100)
    reference.save_pretrained(tmp_path)
    config(tmp_path, "t5", len(reference) + 28)  # spare rows, as t5-small's 32128
    ours = load_tokenizer(tmp_path)
    assert isinstance(ours, Seq2SeqTokenizer)
    assert (ours.pad_id, ours.eos_id, ours.vocabulary_size) == (0, 1, len(reference))
    for k in (0, 1, 99):
        assert ours.sentinel_id(k) == reference.convert_tokens_to_ids(f"<extra_id_{k}>")
    for text in shakespeare(400).split("\n")[:6] + ["Unseen wörds 123"]:
        ids = reference(text)["input_ids"]  # the text's pieces and </s>
        assert [*ours.encode(text).tolist(), ours.eos_id] == ids
        if 2 not in ids:  # sentencepiece writes <unk> as " ⁇ ", transformers drops it
            assert ours.decode(ids) == reference.decode(ids, skip_special_tokens=True)
    again = Seq2SeqTokenizer.load(ours.save(tmp_path / "saved").parent)
    assert (again.pad_id, again.eos_id, again.sentinel_id(0)) == (0, 1, ours.sentinel_id(0))


SENTINEL_TEXTS = [
    "The <extra_id_0> walks in <extra_id_1> park",
    "First Citizen:<extra_id_0>, hear me<extra_id_1>",
    "<extra_id_0>.",
    "<extra_id_0><extra_id_1> well",
    "x <extra_id_99>  y  <extra_id_100> z",  # 100 is no sentinel of 100: text
    "no sentinel",
    "",
]


def test_t5_sentinels_in_text_are_their_ids_both_ways(tmp_path):
    import tensorflow as tf

    t5_spiece(tmp_path)
    transformers.T5Tokenizer.from_pretrained(tmp_path, extra_ids=100).save_pretrained(tmp_path)
    reference = transformers.T5TokenizerFast.from_pretrained(tmp_path)
    ours = load_tokenizer(tmp_path)
    in_graph = tf.function(ours.tf_encode)(tf.constant(SENTINEL_TEXTS)).to_list()
    for text, graph_ids in zip(SENTINEL_TEXTS, in_graph, strict=True):
        ids = reference(text)["input_ids"][:-1]  # without </s>
        assert ours.encode(text).tolist() == ids == graph_ids, text
        if 2 not in ids:  # sentencepiece writes <unk> as " ⁇ ", transformers as "<unk>"
            assert ours.decode(ids) == reference.decode(ids)
            assert ours.encode(ours.decode(ids)).tolist() == ids
    assert ours.decode([ours.sentinel_id(0), 21, 1, ours.sentinel_id(1)]) == "<extra_id_0> a"
    # In the graph as in Python, on any ids: text, sentinels, pad, end and spare rows.
    rows = np.random.default_rng(0).integers(0, ours.vocabulary_size + 4, (100, 12)).tolist()
    rows += [ours.encode(text).tolist() for text in SENTINEL_TEXTS] + [[0, 399, 0, 398], []]
    ragged = tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)
    expected = [ours.decode(row) for row in rows]
    for decoded in (ours.tf_decode(ragged), tf.function(ours.tf_decode)(ragged)):
        assert [s.decode("utf-8") for s in decoded.numpy()] == expected
    # A vocabulary of this package's own numbers its sentinels up from the pieces.
    own = Seq2SeqTokenizer(ours.tokenizer, num_sentinels=4, pad_id=0, eos_id=1)
    ids = own.encode("To <extra_id_1> or not <extra_id_3>").tolist()
    assert [i for i in ids if i >= 300] == [301, 303]
    assert own.decode(ids) == "To<extra_id_1> or not<extra_id_3>"
    graph = own.tf_decode(own.tf_encode(tf.constant(["To <extra_id_1> or not <extra_id_3>"])))
    assert graph.numpy()[0].decode() == own.decode(ids)


@pytest.mark.parametrize(
    "model_type, cased", [("bert", False), ("distilbert", False), ("bert", True)]
)
def test_bert_folders(tmp_path, model_type, cased):
    bert_vocab(tmp_path, cased=cased)
    transformers.BertTokenizer(
        str(tmp_path / "vocab.txt"), do_lower_case=not cased
    ).save_pretrained(tmp_path)
    config(tmp_path, model_type, 2000)
    ours = load_tokenizer(tmp_path)
    assert isinstance(ours, WordPieceTokenizer) and ours.lower_case is not cased
    theirs = transformers.BertTokenizerFast.from_pretrained(tmp_path)
    text = ["A gorgeous , Witty , seductive Movie .", "the Film is UNBELIEVABLY bad"]
    expected = theirs(text, padding="max_length", truncation=True, max_length=16)["input_ids"]
    np.testing.assert_array_equal(ours.pack(text, 16)["token_ids"].numpy(), expected)


def test_a_bert_folder_with_only_tokenizer_json(tmp_path):
    """transformers 5 saves a BERT tokenizer as tokenizer.json, without vocab.txt."""
    source = tmp_path / "source"
    bert_vocab(source, cased=False)
    theirs = transformers.BertTokenizerFast(str(source / "vocab.txt"), do_lower_case=True)
    folder = tmp_path / "saved"
    theirs.save_pretrained(folder)
    (folder / "vocab.txt").unlink(missing_ok=True)
    config(folder, "bert", 2000)
    ours = load_tokenizer(folder)
    assert ours.vocabulary == read_vocab(source / "vocab.txt") and ours.lower_case
    text = ["A gorgeous , Witty , seductive Movie .", "the Film is UNBELIEVABLY bad"]
    expected = theirs(text, padding="max_length", truncation=True, max_length=16)["input_ids"]
    np.testing.assert_array_equal(ours.pack(text, 16)["token_ids"].numpy(), expected)
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(ValueError, match="holds no WordPiece vocabulary"):
        load_tokenizer(folder)


def test_errors_name_the_file_and_the_sizes(tmp_path):
    write_hf_files(
        read_tiktoken_ranks(data_path("gpt2", "gpt2.tiktoken")),
        tmp_path,
        {ENDOFTEXT: GPT2_VOCAB - 1},
    )
    config(tmp_path, "gpt2", 50000)
    with pytest.raises(
        ValueError,
        match=f"has {GPT2_VOCAB} ids but config.json's vocab_size "
        r"\(the embedding's rows\) is 50000",
    ):
        load_tokenizer(tmp_path)
    (tmp_path / "merges.txt").unlink()
    with pytest.raises(
        FileNotFoundError, match="holds a gpt2 model but not its tokenizer: merges.txt missing"
    ):
        load_tokenizer(tmp_path)
    config(tmp_path, "t5", 400)
    with pytest.raises(FileNotFoundError, match="spiece.model missing"):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="No tokenizer in"):
        load_tokenizer(tmp_path / "nothing")
