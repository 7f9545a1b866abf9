import itertools

import keras
import numpy as np
import pytest

from tfpretrain.models.t5 import (
    DECODER_IDS,
    ENCODER_IDS,
    Seq2SeqConfig,
    Seq2SeqGenerator,
    build_seq2seq,
)

PAD, EOS = 0, 1


def make_model(vocabulary=40, seed=0):
    config = Seq2SeqConfig(
        vocabulary_size=vocabulary,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dropout=0.0,
        num_sentinels=2,
        encoder_length=16,
        decoder_length=16,
        pad_id=PAD,
        eos_id=EOS,
    )
    model = build_seq2seq(config)
    # Larger random weights than the initialisation, so that the argmax changes from step to step.
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(scale=0.6, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model, config


INPUTS = [[5, 6, 7, EOS], [8, 9, 10, 11, 12, 13, EOS], [14, EOS]]


def full_pass_greedy(model, inputs, steps):
    """Greedy decoding without a cache: one full forward pass over the whole prefix per token."""
    out = []
    for x in inputs:
        dec = [PAD]
        for _ in range(steps):
            logits = model(
                {ENCODER_IDS: np.array([x], "int32"), DECODER_IDS: np.array([dec], "int32")}
            )
            dec.append(int(np.argmax(logits[0, -1])))
            if dec[-1] == EOS:
                dec.pop()
                break
        out.append(dec[1:])
    return out


def sequence_scores(model, x, sequences):
    """log p of each sequence up to and including its first EOS, from one batch of full passes."""
    seqs = np.array(sequences, "int32")
    dec = np.concatenate([np.full((len(seqs), 1), PAD, "int32"), seqs[:, :-1]], 1)
    enc = np.repeat(np.array([x], "int32"), len(seqs), 0)
    logits = np.asarray(model({ENCODER_IDS: enc, DECODER_IDS: dec}), "float64")
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    token_logp = np.take_along_axis(logp, seqs[..., None], -1)[..., 0]
    alive = np.cumsum(seqs == EOS, 1) - (seqs == EOS) == 0  # positions up to the first EOS
    return (token_logp * alive).sum(1)


def test_greedy_equals_step_by_step_argmax_of_full_passes():
    model, config = make_model()
    generator = Seq2SeqGenerator(model, config)
    got = generator.generate_ids(INPUTS, max_length=10, greedy=True)
    want = full_pass_greedy(model, INPUTS, 10)
    assert [list(map(int, g[0])) for g in got] == want
    assert len({t for w in want for t in w}) > 3  # a non-trivial sequence was compared
    # One beam is greedy, and so is top-k sampling with k = 1.
    assert [
        list(map(int, g[0])) for g in generator.generate_ids(INPUTS, 10, num_beams=1, greedy=True)
    ] == want
    assert [
        list(map(int, g[0])) for g in generator.generate_ids(INPUTS, 10, top_k=1, seed=3)
    ] == want


def test_beam_search_covering_every_sequence_finds_the_most_likely_one():
    # Vocabulary of 5 ids (pad, eos, 2 tokens, 1 sentinel), 3 steps: 16 beams keep every prefix of
    # length 2, so the best beam (no length penalty) must be the best of all 5**3 sequences.
    model, config = make_model(vocabulary=5, seed=1)
    x = [2, 3, 3, EOS]
    generator = Seq2SeqGenerator(model, config)
    beams = generator.generate_ids(
        [x], max_length=3, num_beams=16, num_return_sequences=3, length_penalty=0.0
    )[0]

    everything = [list(s) for s in itertools.product(range(5), repeat=3)]
    scores = sequence_scores(model, x, everything)
    best = everything[int(np.argmax(scores))]
    best = best[: best.index(EOS)] if EOS in best else best
    assert [int(t) for t in beams[0]] == best
    padded = [list(map(int, b)) + [EOS] * (3 - len(b)) for b in beams]
    got_scores = list(sequence_scores(model, x, padded))
    assert got_scores == sorted(got_scores, reverse=True)


def test_sampling_is_reproducible_and_does_not_recompile():
    model, config = make_model()
    generator = Seq2SeqGenerator(model, config)
    a = generator.generate_ids(INPUTS, 8, num_return_sequences=2, seed=5, temperature=1.5)
    traces = generator.trace_count
    b = generator.generate_ids(INPUTS, 8, num_return_sequences=2, seed=5, temperature=1.5)
    c = generator.generate_ids(
        INPUTS, 8, num_return_sequences=2, seed=6, temperature=0.7, top_p=0.9
    )
    assert generator.trace_count == traces  # new settings, same compilation
    flat = lambda r: [list(map(int, s)) for row in r for s in row]  # noqa: E731
    assert flat(a) == flat(b) and flat(a) != flat(c)


def test_bad_requests():
    model, config = make_model()
    generator = Seq2SeqGenerator(model, config)
    with pytest.raises(ValueError, match="num_beams"):
        generator.generate_ids(INPUTS, 5, num_beams=0)
    with pytest.raises(ValueError, match="decoder context"):
        generator.generate_ids(INPUTS, 16)
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        generator.generate_ids([[]], 5)
    with pytest.raises(ValueError, match="encoder context"):
        generator.generate_ids([list(range(3, 20))], 5)
    with pytest.raises(ValueError, match="exceed num_beams"):
        generator.generate_ids(INPUTS, 5, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="top_p"):
        generator.generate_ids(INPUTS, 5, top_p=1.5)
    keras.utils.set_random_seed(0)


def test_beam_search_loop_serves_gpt_too():
    import tensorflow as tf

    from tfpretrain.generation import beam_search_loop, decode_loop
    from tfpretrain.models.gpt import GPTConfig, GPTDecoder, build_gpt

    model = build_gpt(
        GPTConfig(vocabulary_size=6, sequence_length=8, num_layers=1, num_heads=2, hidden_dim=16)
    )
    rng = np.random.default_rng(2)
    model.set_weights(
        [rng.normal(scale=0.8, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    decoder = GPTDecoder(model)
    prompts = [[2, 3, 4], [5]]  # different lengths: prompt positions are forced, not searched
    end = 5
    buffer = np.zeros((2, 8), "int32")
    for r, p in enumerate(prompts):
        buffer[r, : len(p)] = p
    lengths = np.array([len(p) for p in prompts], "int32")
    greedy, _ = decode_loop(
        decoder.step,
        decoder.initial_cache(2, 8),
        buffer,
        lengths,
        end,
        temperature=tf.constant(1.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
        greedy=tf.constant(True),
        seed=tf.constant([0, 0]),
        stop_token=-1,
    )
    one_beam, _, _ = beam_search_loop(
        decoder.step,
        decoder.initial_cache(2, 8),
        buffer,
        lengths,
        end,
        num_beams=1,
        length_penalty=0.0,
        stop_token=-1,
    )
    np.testing.assert_array_equal(np.asarray(one_beam)[:, :end], np.asarray(greedy)[:, :end])

    # 6 beams keep every one-token continuation of the first prompt: the best two-token
    # continuation of all 36 must come out first.
    k = 6
    ids, _, _ = beam_search_loop(
        decoder.step,
        decoder.initial_cache(k, 8),
        np.repeat(buffer[:1], k, 0),
        np.repeat(lengths[:1], k),
        end,
        num_beams=k,
        length_penalty=0.0,
        stop_token=-1,
    )
    candidates = np.array([[2, 3, 4, a, b] for a in range(6) for b in range(6)], "int32")
    logits = np.asarray(model(candidates), "float64")
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    scores = (
        logp[:, 2, :][np.arange(36), candidates[:, 3]]
        + logp[:, 3, :][np.arange(36), candidates[:, 4]]
    )
    np.testing.assert_array_equal(np.asarray(ids)[0, :end], candidates[int(np.argmax(scores))])
