"""Tiny random Hugging Face folders with real tokenizer files, written by `transformers`.

GPT-2 and RoBERTa get GPT-2's real BPE ranks (from the shared data directory), T5 a small
sentencepiece model trained here with T5's conventions, BERT a vocab.txt of corpus words.
"""

from __future__ import annotations

import os
from pathlib import Path

from tfpretrain.text.bpe import ENDOFTEXT, read_tiktoken_ranks, write_hf_files

GPT2_VOCAB = 50257
ROBERTA_SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}


def data_path(*parts) -> Path:
    return Path(os.environ["TFPRETRAIN_DATA_DIR"]).joinpath(*parts)


def shakespeare(chars: int = 20000) -> str:
    return data_path("tinyshakespeare", "input.txt").read_text()[:chars]


def _perturb(model, torch, scale: float = 0.1) -> None:
    """Moves norms and biases off ones and zeros, so that their mapping is tested."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


def gpt2_folder(path, context: int = 64):
    """A 2-layer GPT-2 over the real 50257-token vocabulary; returns transformers' model."""
    import torch
    import transformers

    write_hf_files(
        read_tiktoken_ranks(data_path("gpt2", "gpt2.tiktoken")), path, {ENDOFTEXT: GPT2_VOCAB - 1}
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=GPT2_VOCAB,
        n_positions=context,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=GPT2_VOCAB - 1,
        eos_token_id=GPT2_VOCAB - 1,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(path)
    return model


def roberta_files(path) -> int:
    """RoBERTa's tokenizer files: `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, GPT-2's tokens
    after them and `<mask>` last. Returns the vocabulary size."""
    ranks = read_tiktoken_ranks(data_path("gpt2", "gpt2.tiktoken"))
    write_hf_files(
        {t: r + len(ROBERTA_SPECIALS) for t, r in ranks.items()},
        path,
        {**ROBERTA_SPECIALS, "<mask>": len(ranks) + len(ROBERTA_SPECIALS)},
    )
    return len(ranks) + len(ROBERTA_SPECIALS) + 1


def roberta_folder(path, num_labels: int = 2):
    """A tiny `RobertaForSequenceClassification` with RoBERTa's tokenizer files."""
    import torch
    import transformers

    vocab = roberta_files(path)
    torch.manual_seed(0)
    config = transformers.RobertaConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=66,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=num_labels,
    )
    model = transformers.RobertaForSequenceClassification(config).eval()
    model.save_pretrained(path)
    return model


def t5_spiece(path, vocabulary_size: int = 300) -> Path:
    """A sentencepiece model with T5's ids (pad 0, eos 1, unk 2, no bos), as `spiece.model`."""
    import io

    import sentencepiece as spm

    writer = io.BytesIO()
    lines = [line for line in shakespeare().split("\n") if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=writer,
        vocab_size=vocabulary_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    Path(path).mkdir(parents=True, exist_ok=True)
    target = Path(path) / "spiece.model"
    target.write_bytes(writer.getvalue())
    return target


def t5_folder(path, untied: bool = True, extra_rows: int = 4):
    """A tiny T5 (v1.1 layout when `untied`) with its tokenizer (spiece.model, 100 sentinels);
    the model has `extra_rows` spare embedding rows, as T5's 32128 for 32100 ids."""
    import torch
    import transformers

    t5_spiece(path)
    tokenizer = transformers.T5Tokenizer.from_pretrained(path, extra_ids=100)
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    variant = (
        dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        if untied
        else dict(feed_forward_proj="relu")
    )
    config = transformers.T5Config(
        vocab_size=len(tokenizer) + extra_rows,
        d_model=32,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        d_kv=16,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **variant,
    )
    model = transformers.T5ForConditionalGeneration(config).eval()
    _perturb(model, torch)
    model.save_pretrained(path)
    return model, tokenizer


def bert_vocab(path, words: int = 400, cased: bool = False) -> Path:
    """A vocab.txt of BERT's special tokens, the letters and the commonest SST-2 words; `cased`
    adds the capital letters and the capitalised words."""
    from collections import Counter

    text = data_path("sst2", "train.tsv").read_text().lower()
    counts = Counter(w for w in text.split() if w.isalpha())
    letters = sorted({c for c in text if c.isalpha() and c.isascii()})
    if cased:
        letters += [c.upper() for c in letters]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    common = [w for w, _ in counts.most_common(words)]
    if cased:
        common += [w.capitalize() for w in common]
    tokens += [w for w in common if w not in tokens]
    Path(path).mkdir(parents=True, exist_ok=True)
    target = Path(path) / "vocab.txt"
    target.write_text("\n".join(tokens) + "\n")
    return target


def bert_folder(
    path, kind: str = "bert", head: str = "ForMaskedLM", labels=None, cased=False, layers=2
):
    """A tiny BERT or DistilBERT (`transformers` class `Bert` + `head`, `layers` deep) with its
    vocab.txt; `cased`: a cased vocabulary and `do_lower_case: false`, as bert-base-cased."""
    import torch
    import transformers

    vocab = len(bert_vocab(path, cased=cased).read_text().split("\n")) - 1
    tokenizer = transformers.BertTokenizer(str(Path(path) / "vocab.txt"), do_lower_case=not cased)
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    extra = {"id2label": dict(enumerate(labels))} if labels else {}
    if kind == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=vocab,
            dim=32,
            n_layers=layers,
            n_heads=2,
            hidden_dim=48,
            max_position_embeddings=64,
            **extra,
        )
    else:
        config = transformers.BertConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=48,
            max_position_embeddings=64,
            **extra,
        )
    name = ("DistilBert" if kind == "distilbert" else "Bert") + head
    model = getattr(transformers, name)(config).eval()
    model.save_pretrained(path)
    return model
