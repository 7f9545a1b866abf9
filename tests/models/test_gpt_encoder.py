import keras
import numpy as np

from tests.checks import assert_close
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.models.gpt import GPTConfig, GPTEncoder, build_gpt


def gpt(vocabulary_size=12):
    return build_gpt(
        GPTConfig.preset(
            "nano",
            vocabulary_size=vocabulary_size,
            num_layers=2,
            hidden_dim=32,
            num_heads=2,
            sequence_length=16,
        )
    )


def test_shapes_and_the_pooled_state_is_the_last_real_token():
    encoder = GPTEncoder(gpt())
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]], "int32")
    mask = (np.arange(5) < np.array([[3], [5]])).astype("int32")
    out = encoder({"token_ids": ids, "padding_mask": mask})
    assert out["sequence_output"].shape == (2, 5, 32) and out["pooled_output"].shape == (2, 32)
    assert_close(out["pooled_output"][0], out["sequence_output"][0, 2])
    assert_close(out["pooled_output"][1], out["sequence_output"][1, 4])
    # Right padding is invisible under causal attention: the short text alone gives the same.
    alone = encoder({"token_ids": ids[:1, :3], "padding_mask": mask[:1, :3]})
    assert_close(alone["pooled_output"][0], out["pooled_output"][0], atol=1e-5)


def test_a_classifier_on_the_gpt_learns_a_toy_task_and_round_trips(tmp_path):
    # Label: does token 1 occur anywhere? Only the last token has seen the whole row.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 12, (256, 8)).astype("int32")
    y = rng.integers(0, 2, 256).astype("int32")
    ids[y == 1, rng.integers(0, 8, int(y.sum()))] = 1
    x = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    model = TextClassifier(GPTEncoder(gpt()), 2, pooling="cls", dropout=0.0)
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    before = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    assert after > 0.9 and after > before + 0.2
    model.save(tmp_path / "classifier.keras")
    loaded = keras.models.load_model(tmp_path / "classifier.keras")
    assert_close(loaded(x, training=False), model(x, training=False), atol=1e-5)
