"""`tfpretrain export-hf`: a run directory as a Hugging Face folder, `save_pretrained` on disk."""

from __future__ import annotations

from pathlib import Path

from tfpretrain.settings.export_hf import ExportHFRun
from tfpretrain.training.checkpoint import load_keras_model


def export_run(run_dir, out) -> str:
    """Writes the model of a clm, seq2seq (or text-to-text finetune), mlm or classifier
    finetune run as a Hugging Face folder with its tokenizer files; returns the model's kind.

    The weights and config.json are `transformers`' GPT-2, T5 or BERT-family layouts. The
    tokenizer is written as the run has it: BPE as `vocab.json` + `merges.txt`, WordPiece as
    `vocab.txt` and `tokenizer_config.json` (`do_lower_case`: a cased run stays cased; both read
    by `transformers`); a character, sentencepiece or seq2seq vocabulary in the package's
    files, which `text.load_tokenizer` reads (T5's own vocabulary also as `spiece.model`).

    Raises:
        FileNotFoundError: a folder that is none of these runs.
    """
    from tfpretrain import checkpoints
    from tfpretrain.recipes.clm import load_run
    from tfpretrain.recipes.seq2seq import is_seq2seq_dir, load_seq2seq
    from tfpretrain.text import load_tokenizer
    from tfpretrain.text.wordpiece import WordPieceTokenizer

    run_dir, out = Path(run_dir), Path(out)
    if is_seq2seq_dir(run_dir):
        from tfpretrain.checkpoints.t5 import save_t5

        model, config, tokenizer = load_seq2seq(run_dir)
        save_t5(model, out, pad_id=config.pad_id, eos_id=config.eos_id)
        tokenizer.save_hf(out)
        return "t5"
    if (run_dir / "tokenizer").is_dir() and (run_dir / "model.keras").is_file():
        model, tokenizer = load_run(run_dir)
        checkpoints.save_pretrained(model, out)
        tokenizer.save(out)
        return "gpt2"
    vocab, tokenizer_dir = run_dir / "vocab.txt", run_dir / "tokenizer"
    for name in ("classifier.keras", "mlm.keras"):
        if (run_dir / name).is_file() and (vocab.is_file() or tokenizer_dir.is_dir()):
            model = load_keras_model(run_dir / name, compile=False)
            checkpoints.save_pretrained(model, out)
            if vocab.is_file():  # vocab.txt and tokenizer_config.json: the run's casing kept
                WordPieceTokenizer.from_pretrained(run_dir).save(out)
            else:  # a RoBERTa classifier's BPE: vocab.json + merges.txt
                load_tokenizer(tokenizer_dir).save(out)
            return model.encoder.config.hf_model_type
    raise FileNotFoundError(
        f"{run_dir} is not a finished run that export-hf writes: it takes the --out folder of "
        "`tfpretrain clm` (model.keras, tokenizer/), `seq2seq` or text-to-text `finetune` "
        "(model.keras, seq2seq_vocab.json), `mlm` (mlm.keras, vocab.txt) or a classifier "
        "`finetune` (classifier.keras, vocab.txt or tokenizer/)."
    )


def run(cfg: ExportHFRun) -> dict:
    """The command's recipe: `export_run(cfg.model, cfg.out)`."""
    return {"model_type": export_run(cfg.model, cfg.out), "out": cfg.out}
