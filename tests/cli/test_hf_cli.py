"""The command line on Hugging Face folders: generate, clm / mlm / finetune / seq2seq --init,
export-hf, against `transformers` on tiny random checkpoints with real tokenizer files."""

from __future__ import annotations

import numpy as np
import pytest

from tests.hf_folders import gpt2_folder, t5_folder
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
