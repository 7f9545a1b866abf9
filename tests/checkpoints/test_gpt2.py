"""GPT-2 folders in and out, against `transformers` on random-weight checkpoints."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch  # the dev extra: missing fails, never skips
import transformers  # the dev extra: missing fails, never skips

from tfpretrain import checkpoints
from tfpretrain.checkpoints import hf
from tfpretrain.checkpoints.gpt2 import load_gpt2
from tfpretrain.models import gpt
from tfpretrain.models.gpt import GPTConfig, TextGenerator, build_gpt

VOCAB, CONTEXT = 97, 48


def hf_gpt2(path, **overrides):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=CONTEXT,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
        **overrides,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(path)
    return model


def batch():
    """Two rows, the second right-padded: logits are compared at real tokens only."""
    ids = np.random.RandomState(0).randint(1, VOCAB, size=(2, 11)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    return ids, mask


def hf_logits(model, ids, mask):
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
        )
    return out.logits.numpy()


def max_diff(ours, theirs, mask):
    return float(np.abs(np.asarray(ours) - theirs)[mask.astype(bool)].max())


def test_logits_match_transformers_with_padding(tmp_path):
    reference = hf_gpt2(tmp_path)
    model = checkpoints.load(tmp_path)
    ids, mask = batch()
    assert max_diff(model(ids), hf_logits(reference, ids, mask), mask) <= 1e-4


def test_greedy_generation_matches_transformers_generate(tmp_path):
    reference = hf_gpt2(tmp_path)
    model = load_gpt2(tmp_path)
    tokenizer = types.SimpleNamespace(vocabulary_size=VOCAB)  # ids in, ids out
    generator = TextGenerator(model, tokenizer, jit_compile=False)
    prompts = [[5, 17, 3, 44], [9, 2]]
    ours = generator.generate_ids(prompts, max_length=20, greedy=True)
    for prompt, (row,) in zip(prompts, ours, strict=True):
        with torch.no_grad():
            theirs = reference.generate(
                torch.tensor([prompt]),
                max_length=20,
                do_sample=False,
                pad_token_id=0,
                eos_token_id=None,
            )[0].numpy()
        np.testing.assert_array_equal(row, theirs)


def test_pytorch_bin_folder_loads_the_same(tmp_path):
    reference = hf_gpt2(tmp_path)
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    ids, mask = batch()
    model = load_gpt2(tmp_path)
    assert max_diff(model(ids), hf_logits(reference, ids, mask), mask) <= 1e-4


def test_gpt2_activation_is_a_config_field(tmp_path):
    import dataclasses

    config = GPTConfig(
        vocabulary_size=VOCAB,
        sequence_length=CONTEXT,
        num_layers=1,
        num_heads=4,
        hidden_dim=32,
        activation="gelu_approximate",
    )
    assert GPTConfig.from_dict(dataclasses.asdict(config)) == config
    legacy = dataclasses.asdict(GPTConfig())
    legacy.pop("activation")  # a config.json written before the field
    assert GPTConfig.from_dict(legacy).activation == "gelu"
    model = build_gpt(config)
    assert model.get_layer("block_0").get_config()["activation"] == "gelu_approximate"
    hf_gpt2(tmp_path)
    loaded = gpt.from_pretrained(tmp_path)
    assert loaded.get_layer("block_1").get_config()["activation"] == "gelu_approximate"
    gpt.save_pretrained(loaded, tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "config.json").read_text())
    assert saved["activation_function"] == "gelu_new"


@pytest.mark.parametrize("use_bias", [True, False])
def test_round_trip_of_a_model_trained_here(tmp_path, use_bias):
    config = GPTConfig(
        vocabulary_size=VOCAB,
        sequence_length=CONTEXT,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        use_bias=use_bias,
    )
    model = build_gpt(config)
    rng = np.random.RandomState(1)
    for w in model.weights:  # move biases and norms off their zeros/ones starts
        w.assign(w.numpy() + rng.normal(0, 0.05, w.shape).astype("float32"))
    checkpoints.save_pretrained(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["activation_function"] == "gelu"
    reference = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids, mask = batch()
    assert max_diff(model(ids), hf_logits(reference, ids, mask), mask) <= 1e-4
    again = checkpoints.load(tmp_path)
    np.testing.assert_allclose(again(ids), model(ids), atol=1e-5)


def test_hf_folder_round_trips_through_tfpretrain(tmp_path):
    reference = hf_gpt2(tmp_path / "a")
    checkpoints.save_pretrained(load_gpt2(tmp_path / "a"), tmp_path / "b")
    again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "b").eval()
    ids, mask = batch()
    assert max_diff(hf_logits(again, ids, mask), hf_logits(reference, ids, mask), mask) <= 1e-5


def test_errors_name_the_file_and_tensor(tmp_path):
    from safetensors.numpy import load_file, save_file

    hf_gpt2(tmp_path)
    weights = tmp_path / "model.safetensors"
    tensors = load_file(str(weights))
    config = json.loads((tmp_path / "config.json").read_text())

    config["vocab_size"] = VOCAB + 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError,
        match=r"vocabulary size mismatch \(model.safetensors: "
        r"transformer.wte.weight has 97 rows but config.json's vocab_size is 100",
    ):
        load_gpt2(tmp_path)
    config["vocab_size"] = VOCAB
    (tmp_path / "config.json").write_text(json.dumps(config))

    broken = dict(tensors)
    del broken["transformer.h.1.mlp.c_fc.bias"]
    broken["transformer.h.0.mlp.c_proj.weight"] = np.zeros((128, 31), np.float32)
    save_file(broken, str(weights))
    with pytest.raises(ValueError) as err:
        load_gpt2(tmp_path)
    assert "missing tensors (1): ['h.1.mlp.c_fc.bias']" in str(err.value)
    assert (
        "model.safetensors: transformer.h.0.mlp.c_proj.weight: checkpoint (128, 31), "
        "model (128, 32)"
    ) in str(err.value)

    config["model_type"] = "llama"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type 'llama'; tfpretrain loads gpt2, t5"):
        checkpoints.load(tmp_path)


def test_hub_name_says_nothing_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError,
        match=r"'gpt2' is not a folder .* downloads nothing.*"
        r"hf download gpt2 --local-dir ./gpt2",
    ):
        checkpoints.load("gpt2")
    with pytest.raises(FileNotFoundError, match="hf download openai-community/gpt2"):
        load_gpt2("openai-community/gpt2")
    with pytest.raises(FileNotFoundError, match="No checkpoint folder at"):
        load_gpt2(tmp_path / "absent")


def test_released_tensors_read_the_same_and_the_load_sets_every_weight(tmp_path):
    reference = hf_gpt2(tmp_path)
    tensors = hf.Tensors(tmp_path)
    name = "transformer.wte.weight"
    before = np.array(tensors[name])
    tensors.release(name)  # the loader lets each tensor's pages go once it is in the model
    np.testing.assert_array_equal(tensors[name], before)
    np.testing.assert_array_equal(before, reference.transformer.wte.weight.detach().numpy())
    # built without random draws: a weight the loader skipped would be all zeros
    model = load_gpt2(tmp_path)
    for weight in model.weights:
        if not weight.path.endswith("beta") and "bias" not in weight.path:
            assert np.any(weight.numpy() != 0), weight.path
