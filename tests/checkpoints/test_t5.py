"""T5 folders (v1.0 and v1.1 / FLAN layouts) in and out, against `transformers`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch  # the dev extra: missing fails, never skips
import transformers  # the dev extra: missing fails, never skips

from tfpretrain import checkpoints
from tfpretrain.checkpoints.t5 import load_t5
from tfpretrain.models import t5
from tfpretrain.models.t5 import Seq2SeqConfig, Seq2SeqGenerator, build_seq2seq

VOCAB = 101
V10 = dict(feed_forward_proj="relu", num_heads=4, d_kv=8)
V11 = dict(feed_forward_proj="gated-gelu", num_heads=3, d_kv=8, tie_word_embeddings=False)


def hf_t5(path, untied_head: bool = False, **variant):
    """A random T5 written by transformers; `untied_head` adds a separate lm_head as FLAN has."""
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **variant,
    )
    model = transformers.T5ForConditionalGeneration(config)
    with torch.no_grad():  # norms start at one: move them so that their mapping is tested
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    if untied_head:
        from safetensors.numpy import load_file, save_file

        tensors = load_file(str(path / "model.safetensors"))
        tensors["lm_head.weight"] = (
            np.random.RandomState(3).normal(0, 1, tensors["shared.weight"].shape).astype(np.float32)
        )
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
        config = json.loads((path / "config.json").read_text())
        config.pop("scale_decoder_outputs", None)
        config["tie_word_embeddings"] = False
        (path / "config.json").write_text(json.dumps(config))
    return transformers.T5ForConditionalGeneration.from_pretrained(path).eval()


def batch():
    """Encoder rows right-padded with 0 (masked), decoder rows right-padded too."""
    rng = np.random.RandomState(0)
    enc = rng.randint(2, VOCAB, size=(3, 9)).astype(np.int32)
    enc[1, 6:] = 0
    enc[2, 3:] = 0
    dec = rng.randint(2, VOCAB, size=(3, 7)).astype(np.int32)
    dec[:, 0] = 0
    dec_mask = np.ones_like(dec)
    dec_mask[2, 4:] = 0
    return enc, dec, dec_mask


def hf_logits(model, enc, dec):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(enc != 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(dec, dtype=torch.long),
        ).logits.numpy()


def max_diff(model, reference):
    enc, dec, dec_mask = batch()
    ours = np.asarray(model({"encoder_token_ids": enc, "decoder_token_ids": dec}))
    diff = np.abs(ours - hf_logits(reference, enc, dec))[dec_mask.astype(bool)]
    return float(diff.max())


VARIANTS = {"v1.0": (V10, False), "v1.1": (V11, False), "flan": (V11, True)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_match_transformers_with_padding(tmp_path, variant):
    options, untied = VARIANTS[variant]
    reference = hf_t5(tmp_path, untied, **options)
    model = checkpoints.load(tmp_path)
    assert ("lm_head" in {layer.name for layer in model.layers}) == (variant != "v1.0")
    assert max_diff(model, reference) <= 1e-4


@pytest.mark.parametrize("variant", ["v1.0", "flan"])
def test_greedy_generation_matches_transformers_generate(tmp_path, variant):
    options, untied = VARIANTS[variant]
    reference = hf_t5(tmp_path, untied, **options)
    model, config = t5.from_pretrained(tmp_path)
    assert (config.gated_ffn, config.tie_output) == (variant != "v1.0", variant == "v1.0")
    generator = Seq2SeqGenerator(model, config, jit_compile=False)
    inputs = [[5, 17, 3, 44, 9, 1], [9, 2, 1]]
    ours = generator.generate_ids(inputs, max_length=10, greedy=True)
    for source, (row,) in zip(inputs, ours, strict=True):
        with torch.no_grad():
            theirs = reference.generate(
                torch.tensor([source]), max_new_tokens=10, do_sample=False, num_beams=1
            )[0].numpy()[1:]
        stop = np.flatnonzero(theirs == 1)
        theirs = theirs[: stop[0]] if stop.size else theirs
        np.testing.assert_array_equal(row, theirs)


def test_round_trip_of_a_model_trained_here(tmp_path):
    """`build_seq2seq` scales scores; the folder folds that into the queries."""
    config = Seq2SeqConfig(
        vocabulary_size=VOCAB,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=48,
        num_encoder_layers=2,
        num_decoder_layers=2,
        relative_buckets=8,
        relative_max_distance=20,
        num_sentinels=0,
        dropout=0.0,
    )
    model = build_seq2seq(config)
    rng = np.random.RandomState(1)
    for w in model.weights:
        w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype("float32"))
    t5.save_pretrained(model, tmp_path)
    reference = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert max_diff(model, reference) <= 1e-4
    again = checkpoints.load(tmp_path)
    assert max_diff(again, reference) <= 1e-4


@pytest.mark.parametrize("variant", VARIANTS)
def test_hf_folder_round_trips_through_tfpretrain(tmp_path, variant):
    options, untied = VARIANTS[variant]
    reference = hf_t5(tmp_path / "a", untied, **options)
    checkpoints.save_pretrained(load_t5(tmp_path / "a"), tmp_path / "b")
    again = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "b").eval()
    enc, dec, mask = batch()
    diff = np.abs(hf_logits(again, enc, dec) - hf_logits(reference, enc, dec))[mask.astype(bool)]
    assert diff.max() <= 1e-5


def test_errors_name_the_file_and_tensor(tmp_path):
    from safetensors.numpy import load_file, save_file

    hf_t5(tmp_path, **V11)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["decoder.block.1.layer.2.DenseReluDense.wi_1.weight"]
    tensors["encoder.block.0.layer.0.SelfAttention.q.weight"] = np.zeros((24, 31), np.float32)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError) as err:
        load_t5(tmp_path)
    message = str(err.value)
    assert "missing tensors (1): ['decoder.block.1.layer.2.DenseReluDense.wi_1.weight']" in message
    assert (
        "model.safetensors: encoder.block.0.layer.0.SelfAttention.q.weight: checkpoint "
        "(24, 31), model (32, 3, 8)"
    ) in message
    with pytest.raises(FileNotFoundError, match="hf download google-t5/t5-small"):
        load_t5("google-t5/t5-small")


def test_v11_choices_are_config_fields_that_round_trip(tmp_path):
    """head_dim, gated_ffn, tie_output: a model built here from them saves and reloads."""
    config = Seq2SeqConfig(
        vocabulary_size=VOCAB,
        hidden_dim=32,
        num_heads=3,
        head_dim=8,
        gated_ffn=True,
        tie_output=False,
        intermediate_dim=48,
        num_encoder_layers=1,
        num_decoder_layers=2,
        relative_buckets=8,
        relative_max_distance=20,
        num_sentinels=0,
        dropout=0.0,
        activation="gelu_approximate",
        scale_attention=False,
    )
    import dataclasses

    assert Seq2SeqConfig.from_dict(dataclasses.asdict(config)) == config
    legacy = dataclasses.asdict(Seq2SeqConfig())
    for key in ("head_dim", "gated_ffn", "tie_output"):  # configs saved before these fields
        legacy.pop(key)
    assert Seq2SeqConfig.from_dict(legacy) == Seq2SeqConfig()
    with pytest.raises(ValueError, match="divisible by num_heads .*or head_dim set"):
        Seq2SeqConfig(hidden_dim=32, num_heads=3)
    model = build_seq2seq(config)
    assert "lm_head" in {layer.name for layer in model.layers}
    rng = np.random.RandomState(2)
    for w in model.weights:
        w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype("float32"))
    t5.save_pretrained(model, tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["d_kv"], saved["feed_forward_proj"], saved["tie_word_embeddings"]) == (
        8,
        "gated-gelu_new",
        False,
    )
    reference = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert max_diff(model, reference) <= 1e-4
    again, again_config = t5.from_pretrained(tmp_path)
    assert (again_config.head_dim, again_config.gated_ffn, again_config.tie_output) == (
        8,
        True,
        False,
    )
    assert max_diff(again, reference) <= 1e-4
