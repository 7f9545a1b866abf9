"""The command line on Hugging Face folders: generate, clm / mlm / finetune / seq2seq --init,
export-hf, against `transformers` on tiny random checkpoints with real tokenizer files."""

from __future__ import annotations

import numpy as np
import pytest

from tests.hf_folders import gpt2_folder, shakespeare, t5_folder
from tfpretrain.cli.main import main
from tfpretrain.text import load_tokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PROMPT = "First Citizen:"


def generate(capsys, model, *flags) -> list[str]:
    capsys.readouterr()
    assert main(["generate", "--model", str(model), "--prompt", PROMPT, *flags]) == 0
    return capsys.readouterr().out.rstrip("\n").split("\n----\n")


def gpt2_greedy(reference, tokenizer, max_length: int) -> str:
    with torch.no_grad():
        ids = reference.generate(torch.tensor([tokenizer.encode(PROMPT).tolist()]),
                                 max_length=max_length, do_sample=False, pad_token_id=0,
                                 eos_token_id=None)[0].numpy()
    return tokenizer.decode(ids)


def test_generate_on_a_gpt2_folder(tmp_path, capsys):
    reference = gpt2_folder(tmp_path)
    tokenizer = load_tokenizer(tmp_path)
    expected = gpt2_greedy(reference, tokenizer, 12)
    assert generate(capsys, tmp_path, "--max-length", "12", "--greedy",
                    "--num-return-sequences", "2") == [expected, expected]
    sampled = generate(capsys, tmp_path, "--max-length", "12", "--top-k", "40", "--seed", "0",
                       "--num-return-sequences", "5")
    assert len(sampled) == 5 and len(set(sampled)) > 1
    assert all(text.startswith(PROMPT) for text in sampled)
    beams = generate(capsys, tmp_path, "--max-length", "12", "--num-beams", "3")
    assert len(beams) == 1 and beams[0].startswith(PROMPT)


def test_generate_on_a_t5_folder(tmp_path, capsys):
    reference, hf_tokenizer = t5_folder(tmp_path)
    tokenizer = load_tokenizer(tmp_path)
    with torch.no_grad():
        ids = reference.generate(torch.tensor([hf_tokenizer(PROMPT)["input_ids"]]),
                                 max_new_tokens=8, do_sample=False, num_beams=1)[0].numpy()
    assert len(ids) > 3
    expected = tokenizer.decode(ids[1:])  # after the start token, up to the end token
    assert generate(capsys, tmp_path, "--max-length", "8", "--greedy") == [expected]
    sampled = generate(capsys, tmp_path, "--max-length", "8", "--seed", "1",
                       "--num-return-sequences", "5")
    assert len(sampled) == 5
    assert len(generate(capsys, tmp_path, "--max-length", "8", "--num-beams", "2")) == 1


def test_generate_names_what_it_accepts(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path), "--prompt", "x"]) == 2
    assert "local Hugging Face GPT-2 or T5 folder" in capsys.readouterr().err


def corpus(tmp_path, chars: int = 6000):
    path = tmp_path / "corpus.txt"
    path.write_text(shakespeare(chars))
    return str(path)


TINY_CLM = ["--batch-size", "2", "--steps", "4", "--eval-interval", "2", "--num-samples", "0",
            "--steps-per-execution", "1"]


def test_clm_continues_a_gpt2_folder_and_exports_strings_to_strings(tmp_path, capsys):
    import json

    import tensorflow as tf

    gpt2_folder(tmp_path / "gpt2")
    out = tmp_path / "run"
    assert main(["clm", "--init", str(tmp_path / "gpt2"), "--corpus", corpus(tmp_path),
                 "--out", str(out), "--seq-len", "32", *TINY_CLM]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["vocabulary_size"] == 50257 and metrics["steps"] == 4
    model_config = json.loads((out / "config.json").read_text())["model"]
    assert (model_config["activation"], model_config["sequence_length"]) == (
        "gelu_approximate", 64)
    # The continued model generates through its BPE tokenizer, and its export takes strings.
    assert generate(capsys, out, "--max-length", "10", "--greedy")[0].startswith(PROMPT)
    from tfpretrain.export.core import find_saved_model

    loaded = tf.saved_model.load(str(find_saved_model(out)))
    result = loaded.signatures["generate"](
        prompts=tf.constant([PROMPT]), max_length=tf.constant(10),
        num_return_sequences=tf.constant(2), temperature=tf.constant(0.0),
        top_k=tf.constant(0), top_p=tf.constant(1.0))["completions"].numpy()
    assert result.shape == (1, 2)
    printed = generate(capsys, out, "--max-length", "10", "--greedy")[0]  # trailing "\n"s cut
    assert result[0, 0].decode().rstrip("\n") == printed


def test_export_hf_writes_a_run_trained_here_that_transformers_loads(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["clm", "--corpus", corpus(tmp_path), "--out", str(out), "--seq-len", "16",
                 "--tokenizer", "char", "--no-export", *TINY_CLM]) == 0
    assert main(["export-hf", "--model", str(out), "--out", str(tmp_path / "hf")]) == 0
    assert "Wrote a Hugging Face gpt2 folder" in capsys.readouterr().out
    import keras

    ours = keras.models.load_model(out / "model.keras")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ids = np.random.RandomState(0).randint(0, ours.output_shape[-1], (2, 16)).astype(np.int32)
    with torch.no_grad():
        expected = theirs(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    assert np.abs(np.asarray(ours(ids)) - expected).max() <= 1e-4
    # The folder is a model tfpretrain generates with too (the char vocabulary travels along).
    assert generate(capsys, tmp_path / "hf", "--max-length", "16", "--greedy") == generate(
        capsys, out, "--max-length", "16", "--greedy")
    assert main(["export-hf", "--model", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "is not a finished run that export-hf writes" in capsys.readouterr().err
