import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.generation import decode_loop, sample_next
from tfpretrain.models.gpt import GPTConfig, GPTDecoder, TextGenerator, build_gpt
from tfpretrain.text import CharTokenizer

ALPHABET = "abcdefghijklmnopqrstuvw"
CONFIG = GPTConfig(
    vocabulary_size=len(ALPHABET), sequence_length=24, num_layers=2, num_heads=2, hidden_dim=16
)
# Calls use 2 rows and max_length <= 16 where they can: few compilations serve the whole file.
PROMPTS = ["abc", "hello"]


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    model = build_gpt(CONFIG)
    # Spread the logits so that greedy choices are far from ties (XLA and eager round differently).
    table = model.get_layer("embedding").token_embedding.embeddings
    table.assign(np.random.default_rng(0).normal(size=table.shape).astype("float32"))
    return TextGenerator(model, CharTokenizer.from_text(ALPHABET))


def full_pass_greedy(model, ids, length):
    ids = list(ids)
    while len(ids) < length:
        logits = model(np.array([ids], "int32"), training=False)  # no cache: the whole prefix
        ids.append(int(np.argmax(logits[0, -1])))
    return ids


def test_greedy_equals_argmax_of_full_forward_passes(generator):
    tok = generator.tokenizer
    out = generator.generate(PROMPTS, max_length=15, greedy=True)
    assert [len(row) for row in out] == [1, 1]
    for prompt, (text,) in zip(PROMPTS, out, strict=True):
        assert text.startswith(prompt) and len(text) == 15
        expected = full_pass_greedy(generator.decoder.model, tok.encode(prompt), 15)
        assert tok.encode(text).tolist() == expected
    # temperature 0 means greedy too.
    assert generator.generate(PROMPTS, max_length=15, temperature=0.0) == out


def test_same_seed_same_text_and_no_retracing_across_settings(generator):
    # A high temperature: the fixture's tied embeddings make "repeat the last token" likely.
    sample = dict(max_length=16, num_return_sequences=2, temperature=4.0)
    first = generator.generate("abc", **sample, seed=5)
    traces = generator.trace_count
    assert generator.generate("abc", **sample, seed=5) == first
    assert any(generator.generate("abc", **sample, seed=s) != first for s in (6, 7, 8))
    assert first[0] != first[1]  # the sequences of one prompt are sampled independently
    for settings in (
        dict(temperature=0.7, top_k=3),
        dict(temperature=1.0, top_p=0.9),
        dict(top_k=5, top_p=0.5, seed=1),
        dict(greedy=True),
        dict(temperature=2.0, seed=None),
    ):
        for max_length in (6, 11, 16):
            out = generator.generate(PROMPTS, max_length=max_length, **settings)
            assert [len(t) for (t,) in out] == [max_length, max_length]
            assert all(t.startswith(p) for p, (t,) in zip(PROMPTS, out, strict=True))
    assert generator.trace_count == traces == generator._decode.experimental_get_tracing_count()


@pytest.mark.parametrize("copy_lone_row", [False, True])
def test_a_rows_text_does_not_depend_on_the_rest_of_the_batch(generator, copy_lone_row):
    # A lone prompt is decoded alone, or beside a copy of itself (`decode_rows`, a GPT without
    # biases); its sampled text is the one it gets in any batch, so the copy is invisible.
    assert not generator.copy_lone_row  # the GPT has biases
    generator.copy_lone_row = copy_lone_row
    settings = dict(max_length=16, temperature=8.0, top_p=0.95, seed=4)
    try:
        alone = generator.generate("abc", **settings)
        assert len(set(alone[0][3:])) > 3  # really sampled: not one repeated token
        for other in ("hello", "w"):
            assert generator.generate(["abc", other], **settings)[0] == alone
        assert generator.generate("abc", num_return_sequences=2, **settings)[0] == alone[0]
    finally:
        generator.copy_lone_row = False
    unbiased = TextGenerator(
        build_gpt(dataclasses.replace(CONFIG, use_bias=False)), generator.tokenizer
    )
    assert unbiased.copy_lone_row


def test_stop_token_ends_a_sequence(generator):
    (greedy,) = generator.generate("abc", max_length=16, num_return_sequences=2, greedy=True)[:1]
    stop = greedy[5]  # a character the greedy continuation produces
    first = greedy.index(stop, 3)
    out = generator.generate(
        "abc", max_length=16, num_return_sequences=2, greedy=True, stop_token=stop
    )
    assert out == [greedy[:first]] * 2


def test_beam_search_through_the_generator_finds_the_best_continuation(generator):
    # As many beams as tokens keep every one-token continuation: the best of all two-token
    # continuations must come out first.
    prompt = list(generator.tokenizer.encode("abc"))
    vocabulary = len(ALPHABET)
    ((best, _),) = generator.generate_ids(
        [prompt], max_length=5, num_return_sequences=2, num_beams=vocabulary, length_penalty=0.0
    )
    pairs = np.array([(a, b) for a in range(vocabulary) for b in range(vocabulary)], "int32")
    candidates = np.concatenate([np.tile(prompt, (len(pairs), 1)), pairs], 1).astype("int32")
    logits = np.asarray(generator.decoder.model(candidates), "float64")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    rows = np.arange(len(pairs))
    scores = logp[rows, 2, pairs[:, 0]] + logp[rows, 3, pairs[:, 1]]
    assert best.tolist() == candidates[int(np.argmax(scores))].tolist()


def test_bad_input_is_a_clear_error(generator):
    cases = [
        (dict(prompts=""), "empty"),
        (dict(prompts=["abc", ""]), "empty"),
        (dict(prompts="a" * 25, max_length=24), "context"),
        (dict(prompts="abcX"), "outside the vocabulary"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(max_length=2), "longest prompt"),
        (dict(max_length=40), "context"),
        (dict(top_k=-1), "top_k"),
        (dict(temperature=-1.0), "temperature"),
        (dict(num_return_sequences=0), "num_return_sequences"),
        (dict(stop_token="ab"), "one token"),
    ]
    for overrides, message in cases:
        kwargs = {"prompts": "abc", "max_length": 10, **overrides}
        with pytest.raises(ValueError, match=message):
            generator.generate(**kwargs)


def test_top_k_and_top_p_keep_only_the_allowed_tokens():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = tf.constant(np.tile(np.log(probs), (4000, 1)), tf.float32)
    seed = tf.constant([1, 2])

    def draw(temperature=1.0, top_k=0, top_p=1.0, greedy=False):
        return (
            np.bincount(
                sample_next(
                    logits,
                    seed,
                    tf.constant(temperature),
                    tf.constant(top_k),
                    tf.constant(top_p),
                    tf.constant(greedy),
                ).numpy(),
                minlength=4,
            )
            / 4000
        )

    np.testing.assert_allclose(draw(), probs, atol=0.03)
    np.testing.assert_allclose(draw(greedy=True), [1, 0, 0, 0])
    np.testing.assert_allclose(draw(top_k=1), [1, 0, 0, 0])
    np.testing.assert_allclose(draw(top_k=3), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], atol=0.03)
    # Nucleus 0.7: tokens 0 and 1 (0.8 of the mass) are the smallest set reaching 0.7.
    np.testing.assert_allclose(draw(top_p=0.7), [0.625, 0.375, 0, 0], atol=0.03)
    np.testing.assert_allclose(draw(top_p=0.01), [1, 0, 0, 0])
    np.testing.assert_allclose(draw(top_k=2, top_p=0.4), [1, 0, 0, 0])
    # A low temperature sharpens, a high one flattens.
    assert draw(temperature=0.5)[0] > 0.6 and draw(temperature=3.0)[0] < 0.4


def test_nucleus_past_the_ranked_candidates_falls_back_to_the_full_sort():
    # Four tokens: the sampler ranks the three most likely; a nucleus of 0.99 needs all four.
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = tf.constant(np.tile(np.log(probs), (4000, 1)), tf.float32)
    draw = sample_next(
        logits,
        tf.constant([3, 4]),
        tf.constant(1.0),
        tf.constant(0),
        tf.constant(0.99),
        tf.constant(False),
    )
    np.testing.assert_allclose(np.bincount(draw.numpy(), minlength=4) / 4000, probs, atol=0.03)


def test_ranked_and_fully_sorted_draws_agree():
    """Rows whose nucleus lies among the ranked candidates draw the same token whether the batch
    takes that path or, because of another row, the full sort."""
    rng = np.random.default_rng(0)
    peaked = rng.normal(size=(64, 300)) + np.where(np.arange(300) < 5, 8.0, 0.0)
    probs = np.sort(np.exp(peaked) / np.exp(peaked).sum(-1, keepdims=True), -1)[:, ::-1]
    assert (np.cumsum(probs, -1) >= 0.9).argmax(-1).max() < 63  # every nucleus among 64 candidates
    flat = np.zeros((1, 300))  # a nucleus of 0.9 needs 270 of its tokens
    settings = [tf.constant(1.0), tf.constant(0), tf.constant(0.9), tf.constant(False)]
    xla = tf.function(sample_next, jit_compile=True)
    for sampler, seed in ((sample_next, [1, 2]), (xla, [1, 2]), (xla, [5, 6])):
        alone = sampler(tf.constant(peaked, tf.float32), tf.constant(seed), *settings).numpy()
        beside = sampler(
            tf.constant(np.concatenate([peaked, flat]), tf.float32), tf.constant(seed), *settings
        )
        np.testing.assert_array_equal(beside.numpy()[:64], alone)
        assert len(set(alone)) > 1


def test_decode_loop_runs_any_step_function():
    """The loop only needs a step function and a cache: here a counter 'model' that always predicts
    (previous token + 1) % 7, with a cache counting the steps taken."""

    def step(token_ids, cache, index):
        logits = tf.one_hot((token_ids[:, 0] + 1) % 7, 7) * 10.0
        return logits, cache + 1

    ids = tf.constant([[3, 0, 0, 0, 0, 0], [5, 6, 0, 0, 0, 0]])
    out, lengths = decode_loop(
        step,
        tf.constant(0),
        ids,
        tf.constant([1, 2]),
        tf.constant(5),
        temperature=tf.constant(1.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
        greedy=tf.constant(True),
        seed=tf.constant([0, 0]),
        stop_token=tf.constant(1),
    )
    # Row 0: 3 4 5 6 0; row 1 keeps its prompt 5 6, samples 0, then the stop token 1 ends it.
    np.testing.assert_array_equal(out.numpy()[:, :5], [[3, 4, 5, 6, 0], [5, 6, 0, 1, 0]])
    np.testing.assert_array_equal(lengths.numpy(), [5, 3])


def test_decoder_cache_shapes():
    decoder = GPTDecoder(build_gpt(CONFIG))
    cache = decoder.initial_cache(3, 16)
    # One (keys, values) pair per block, heads before positions.
    assert [[tuple(t.shape) for t in pair] for pair in cache] == [[(3, 2, 16, 8)] * 2] * 2
