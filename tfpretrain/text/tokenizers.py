"""Choosing, training and loading a language-model tokenizer by kind."""

from __future__ import annotations

import json
from pathlib import Path

from tfpretrain.text.bpe import BPE_CONFIG_FILE, MERGES_FILE, VOCAB_FILE, BytePairTokenizer
from tfpretrain.text.char import CHAR_VOCAB_FILE, CharTokenizer
from tfpretrain.text.sentencepiece import SENTENCEPIECE_MODEL_FILE, SentencePieceTokenizer
from tfpretrain.text.seq2seq import SEQ2SEQ_VOCAB_FILE, T5_SPIECE_FILE, Seq2SeqTokenizer
from tfpretrain.text.wordpiece import FAST_TOKENIZER_FILE, WordPieceTokenizer

TOKENIZER_KINDS = ("char", "sentencepiece")
# The tokenizer files of each Hugging Face model_type the package loads.
HF_TOKENIZER_FILES = {
    "gpt2": (VOCAB_FILE, MERGES_FILE),
    "roberta": (VOCAB_FILE, MERGES_FILE),
    "t5": (T5_SPIECE_FILE,),
    "bert": ("vocab.txt",),
    "distilbert": ("vocab.txt",),
}


def train_tokenizer(kind: str, text: str, vocabulary_size: int = 1000):
    """A `CharTokenizer` or a `SentencePieceTokenizer` (BPE, no dummy prefix) built from `text`,
    for a language model of running text."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "sentencepiece":
        # Running text, streamed line by line: no dummy prefix, so the lines' ids are the text's.
        return SentencePieceTokenizer.train(
            text, vocabulary_size=vocabulary_size, dummy_prefix=False
        )
    raise ValueError(f"Unknown tokenizer {kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}.")


def load_tokenizer(directory):
    """Loads the tokenizer of a folder: one `save(directory)` wrote (char, sentencepiece, BPE,
    seq2seq), or a Hugging Face model folder's.

    Hugging Face folders, by `model_type` in `config.json` (else by the files present): GPT-2
    (`vocab.json` + `merges.txt` -> `BytePairTokenizer`, `<|endoftext|>` special), RoBERTa (the
    same with `<s>`, `<pad>`, `</s>`, `<mask>`; `pack` gives its `<s> ... </s>` inputs), T5
    (`spiece.model` -> `Seq2SeqTokenizer.from_hf`: pad 0, eos 1, `<extra_id_N>` sentinels at
    the top), BERT and DistilBERT (`vocab.txt`, or the WordPiece `tokenizer.json` that
    `transformers` 5 saves -> `WordPieceTokenizer.from_pretrained`).

    Raises:
        FileNotFoundError: no tokenizer there, or a Hugging Face folder without the tokenizer
            files of its `model_type` (named).
        ValueError: a tokenizer with more ids than the folder's `config.json` has embedding
            rows (`vocab_size`): the two do not belong together.
    """
    directory = Path(directory)
    if (directory / SEQ2SEQ_VOCAB_FILE).is_file():
        return Seq2SeqTokenizer.load(directory)
    if (directory / CHAR_VOCAB_FILE).is_file():
        return CharTokenizer.load(directory)
    if (directory / SENTENCEPIECE_MODEL_FILE).is_file():
        return SentencePieceTokenizer.load(directory)
    if (directory / BPE_CONFIG_FILE).is_file():
        return BytePairTokenizer.load(directory)
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    model_type = config.get("model_type")
    if model_type not in HF_TOKENIZER_FILES:  # no config: recognise the files themselves
        model_type = next(
            (
                kind
                for kind in ("t5", "bert", "gpt2")
                if (directory / HF_TOKENIZER_FILES[kind][0]).is_file()
            ),
            None,
        )
    if model_type is None:
        raise FileNotFoundError(
            f"No tokenizer in {directory} (expected {CHAR_VOCAB_FILE}, "
            f"{SENTENCEPIECE_MODEL_FILE} or {BPE_CONFIG_FILE}, or a Hugging Face folder's "
            f"{VOCAB_FILE} + {MERGES_FILE}, {T5_SPIECE_FILE} or vocab.txt)."
        )
    missing = [f for f in HF_TOKENIZER_FILES[model_type] if not (directory / f).is_file()]
    if model_type in ("bert", "distilbert") and (directory / FAST_TOKENIZER_FILE).is_file():
        missing = []  # transformers 5 saves a BERT's WordPiece vocabulary in tokenizer.json
    if missing:
        raise FileNotFoundError(
            f"{directory} holds a {model_type} model but not its tokenizer: {', '.join(missing)} "
            "missing. Download the tokenizer files beside config.json."
        )
    if model_type == "t5":
        tokenizer = Seq2SeqTokenizer.from_hf(directory)
    elif model_type in ("bert", "distilbert"):
        tokenizer = WordPieceTokenizer.from_pretrained(directory)
    else:
        tokenizer = BytePairTokenizer.from_hf(directory)
    rows = config.get("vocab_size")
    if rows is not None and tokenizer.vocabulary_size > rows:
        raise ValueError(
            f"The tokenizer in {directory} has {tokenizer.vocabulary_size} ids but config.json's "
            f"vocab_size (the embedding's rows) is {rows}; the tokenizer and the model do not "
            "belong together."
        )
    return tokenizer


class CausalPacker:
    """`pack(strings, length)` for a language model's tokenizer, as `GPTEncoder` reads texts:
    each text's ids from the first, cut to `length` and right-padded with id 0.

    A classifier on a causal LM reads the last real token, so padding goes after the text,
    where causal attention keeps the real tokens from seeing it. `tokenizer` is a char,
    sentencepiece (`tf_encode`) or BPE (`tokenize`) tokenizer.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._encode = getattr(tokenizer, "tf_encode", None) or tokenizer.tokenize

    @property
    def vocabulary_size(self) -> int:
        return self.tokenizer.vocabulary_size

    def pack(self, strings, sequence_length: int, pairs=None) -> dict:
        import tensorflow as tf

        if pairs is not None:
            raise ValueError("A causal LM start classifies single texts, not sentence pairs.")
        ids = tf.cast(self._encode(strings), tf.int32)[:, : int(sequence_length)]
        token_ids = ids.to_tensor(default_value=0, shape=[None, int(sequence_length)])
        mask = tf.sequence_mask(ids.row_lengths(), int(sequence_length), dtype=tf.int32)
        return {"token_ids": token_ids, "padding_mask": mask}
