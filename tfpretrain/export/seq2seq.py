"""SavedModel export of an encoder-decoder: `generate` and `beam_search`, strings in, strings out."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model

GENERATE_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="inputs"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.float32, name="temperature"),
    tf.TensorSpec([], tf.int32, name="top_k"),
    tf.TensorSpec([], tf.float32, name="top_p"),
]
BEAM_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="inputs"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.float32, name="length_penalty"),
]


def export_seq2seq(model: keras.Model, config, tokenizer, path, num_beams: int = 4) -> Path:
    """Exports a `Seq2SeqLM` with its tokenizer as a SavedModel.

    Signatures (all run tokenization, the XLA-compiled cached decoding loop and
    detokenization in the graph, so serving needs only `tensorflow` and `tensorflow_text`):

    * `generate(inputs, max_length, temperature, top_k, top_p) -> {"outputs"}`: string `[N]`
      in, string `[N]` out; `temperature` 0 means greedy, `top_k` 0 and `top_p` 1 turn those
      filters off; a fresh sampling seed every call.
    * `beam_search(inputs, max_length, length_penalty) -> {"outputs"}`: the best of
      `num_beams` beams (fixed at export) per input.

    `max_length` counts output tokens (the end token included). Inputs that tokenize to
    nothing, inputs beyond the encoder's context and `max_length` beyond the decoder's fail
    with `InvalidArgumentError` naming the problem.

    Example:

    >>> export_seq2seq(model, config, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model").signatures["generate"](inputs=tf.constant(["..."]),
    ...     max_length=tf.constant(32), temperature=tf.constant(0.0), top_k=tf.constant(0),
    ...     top_p=tf.constant(1.0))["outputs"]  # doctest: +SKIP
    """
    from tfpretrain.generation import beam_search_loop, decode_loop
    from tfpretrain.models.t5 import Seq2SeqDecoder

    if not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1; got {num_beams!r}.")
    decoder = Seq2SeqDecoder(model, config)
    width = config.decoder_length

    def start(rows):
        return tf.fill([rows, width], tf.constant(config.pad_id, tf.int32)), tf.ones([rows], tf.int32)

    @tf.function(jit_compile=True)
    def sample(encoder_ids, end, temperature, top_k, top_p, greedy, seed):
        buffer, lengths = start(tf.shape(encoder_ids)[0])
        return decode_loop(
            decoder.step, decoder.initial_cache(encoder_ids, width), buffer, lengths, end,
            temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, seed=seed,
            stop_token=config.eos_id, pad_id=config.pad_id,
        )

    @tf.function(jit_compile=True)
    def beams(encoder_ids, end, length_penalty):
        cache = tf.nest.map_structure(lambda c: tf.repeat(c, num_beams, axis=0),
                                      decoder.initial_cache(encoder_ids, width))
        buffer, lengths = start(tf.shape(encoder_ids)[0] * num_beams)
        ids, out_lengths, _ = beam_search_loop(
            decoder.step, cache, buffer, lengths, end, num_beams=num_beams, length_penalty=length_penalty,
            stop_token=config.eos_id, pad_id=config.pad_id,
        )
        return ids[::num_beams], out_lengths[::num_beams]

    def encode(inputs, max_length):
        ragged = tokenizer.tf_encode(inputs)
        ragged = tf.concat([ragged, tf.fill([tf.shape(inputs)[0], 1], config.eos_id)], axis=1)
        lengths = ragged.row_lengths()
        checks = [
            tf.debugging.assert_positive(tf.size(inputs), message="Give at least one input."),
            tf.debugging.assert_greater(lengths, tf.constant(1, lengths.dtype),
                                        message="An input tokenizes to nothing; give some text."),
            tf.debugging.assert_less_equal(
                lengths, tf.constant(config.encoder_length, lengths.dtype),
                message=f"An input is longer than the encoder's context of {config.encoder_length} tokens."),
            tf.debugging.assert_positive(max_length, message="max_length must be >= 1."),
            tf.debugging.assert_less(
                max_length, width, message=f"max_length must be below the decoder's context of {width}."),
        ]
        with tf.control_dependencies(checks):
            return ragged.to_tensor(default_value=config.pad_id, shape=[None, config.encoder_length])

    def texts(ids, lengths):
        return {"outputs": tokenizer.tf_decode(tf.RaggedTensor.from_tensor(ids[:, 1:], lengths=lengths - 1))}

    def generate(inputs, max_length, temperature, top_k, top_p):
        encoder_ids = encode(inputs, max_length)
        checks = [
            tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0 (0: greedy)."),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0: off)."),
            tf.debugging.Assert(tf.logical_and(top_p > 0.0, top_p <= 1.0), ["top_p must be in (0, 1]; got", top_p]),
        ]
        with tf.control_dependencies(checks):
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        ids, lengths = sample(encoder_ids, max_length + 1, tf.maximum(temperature, 1e-6), top_k, top_p,
                              temperature <= 0.0, seed)
        return texts(ids, lengths)

    def beam_search(inputs, max_length, length_penalty):
        ids, lengths = beams(encode(inputs, max_length), max_length + 1, length_penalty)
        return texts(ids, lengths)

    return export_saved_model(
        path,
        {"generate": (generate, GENERATE_SIGNATURE), "beam_search": (beam_search, BEAM_SIGNATURE)},
        [model, *tokenizer.trackables()],
    )
