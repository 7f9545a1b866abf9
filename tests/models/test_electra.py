import keras
import numpy as np
import pytest

from tests.checks import assert_close
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.electra import ElectraPretrainer, replaced_tokens

B, T, V = 2, 8, 40


def batch():
    rng = np.random.default_rng(0)
    return {
        "token_ids": rng.integers(5, V, (B, T)).astype("int32"),
        "segment_ids": np.zeros((B, T), "int32"),
        "padding_mask": np.array([[1] * T, [1] * 6 + [0] * 2], "int32"),
        "mask_positions": np.array([[1, 2, 0], [3, 4, 0]], "int32"),
        "mlm_labels": np.array([[7, 8, 0], [9, 10, 0]], "int32"),
        "mlm_weights": np.array([[1, 1, 0], [1, 1, 0]], "float32"),
    }


def model(**kwargs):
    return ElectraPretrainer(BertEncoder(BertConfig.preset("tiny", vocabulary_size=V)), **kwargs)


def test_replaced_tokens_mark_exactly_the_tokens_that_differ_from_the_original():
    ids = np.array([[2, 4, 4, 11, 3], [2, 12, 4, 13, 3]], "int32")  # 4 = [MASK]
    positions = np.array([[1, 2, 0], [2, 0, 0]], "int32")
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    labels = np.array([[20, 21, 0], [22, 0, 0]], "int32")
    fills = np.array([[20, 30, 9], [31, 9, 9]], "int32")  # the first fill guesses right
    original, corrupted, replaced = (
        np.asarray(t) for t in replaced_tokens(ids, positions, weights, labels, fills)
    )
    assert original.tolist() == [[2, 20, 21, 11, 3], [2, 12, 22, 13, 3]]
    assert corrupted.tolist() == [[2, 20, 30, 11, 3], [2, 12, 31, 13, 3]]
    assert replaced.tolist() == [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0]]
    assert (replaced == (corrupted != original)).all()


def test_shapes_and_the_generator_is_small_and_shares_the_embeddings():
    m = model(generator_layers=1)
    out = m(batch(), training=True)
    assert out["mlm"].shape == (B, 3, V) and out["rtd"].shape == (B, T)
    assert out["replaced"].shape == (B, T)
    token_embedding = m.encoder.token_embedding
    assert any(w is token_embedding.weights[0] for w in m.generator.weights)
    gen_only = {id(w) for w in m.generator.weights} - {id(w) for w in m.encoder.weights}
    count = lambda ws: sum(int(np.prod(w.shape)) for w in ws)  # noqa: E731
    assert (
        count([w for w in m.generator.weights if id(w) in gen_only]) < count(m.encoder.weights) / 3
    )
    with pytest.raises(ValueError, match="generator_layers must be >= 1"):
        model(generator_layers=0)


def test_keras_roundtrip(tmp_path):
    m = model(rtd_weight=10.0)
    expected = m(batch(), training=False)
    m.save(tmp_path / "electra.keras")
    loaded = keras.models.load_model(tmp_path / "electra.keras")
    got = loaded(batch(), training=False)
    for key in ("mlm", "rtd", "replaced"):
        assert_close(got[key], expected[key])
    assert loaded.get_config()["rtd_weight"] == 10.0
    assert isinstance(loaded.encoder, BertEncoder)


def test_loss_is_mlm_plus_weighted_detection_and_falls():
    keras.utils.set_random_seed(0)
    m = model(rtd_weight=50.0, seed=0)
    m.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = batch()
    y, w = x.pop("mlm_labels"), x.pop("mlm_weights")
    logs = m.test_on_batch(x, {"mlm": y}, {"mlm": w}, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["mlm_loss"] + 50.0 * logs["rtd_loss"], rel=1e-5)
    first = logs["loss"]
    for _ in range(30):
        m.train_on_batch(x, {"mlm": y}, {"mlm": w})
    assert m.test_on_batch(x, {"mlm": y}, {"mlm": w}, return_dict=True)["loss"] < first / 2
