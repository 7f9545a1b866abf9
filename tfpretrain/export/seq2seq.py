"""SavedModel export of an encoder-decoder: `generate` and `beam_search`, strings in, strings out."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model
from tfpretrain.generation import SamplerSettings, require, seed_tensor
from tfpretrain.models.t5 import Seq2SeqGenerator

GENERATE_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="inputs"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    *SamplerSettings.signature(),
]
BEAM_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="inputs"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.float32, name="length_penalty"),
]


def export_seq2seq(model: keras.Model, config, tokenizer, path, num_beams: int = 4) -> Path:
    """Exports a `Seq2SeqLM` with its tokenizer as a SavedModel.

    Signatures (all run tokenization, `Seq2SeqGenerator`'s XLA-compiled cached decoding loops
    and detokenization in the graph, so serving needs only `tensorflow` and `tensorflow_text`):

    * `generate(inputs, max_length, temperature, top_k, top_p) -> {"outputs"}`: string `[N]`
      in, string `[N]` out; the sampler's scalars are `SamplerSettings.signature`'s:
      `temperature` 0 means greedy, `top_k` 0 and `top_p` 1 turn those filters off; a fresh
      sampling seed every call.
    * `beam_search(inputs, max_length, length_penalty) -> {"outputs"}`: the best of
      `num_beams` beams (fixed at export) per input.

    `max_length` counts output tokens (the end token included). Inputs that tokenize to
    nothing, inputs beyond the encoder's context and `max_length` beyond the decoder's fail
    with `InvalidArgumentError` naming the problem, as `Seq2SeqGenerator` raises `ValueError`.

    Example:

    >>> export_seq2seq(model, config, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model").signatures["generate"](inputs=tf.constant(["..."]),
    ...     max_length=tf.constant(32), temperature=tf.constant(0.0), top_k=tf.constant(0),
    ...     top_p=tf.constant(1.0))["outputs"]  # doctest: +SKIP
    """
    generator = Seq2SeqGenerator(model, config, tokenizer)

    def prepare(inputs, max_length, checks=()):
        """The compiled loops' first four arguments for `inputs`, once the checks pass."""
        ragged = tokenizer.tf_encode(inputs)
        text_lengths = ragged.row_lengths()
        ragged = tf.concat([ragged, tf.fill([tf.shape(inputs)[0], 1], config.eos_id)], axis=1)
        checks = [
            generator.empty_check(text_lengths),
            *generator.request_checks(tf.size(inputs), text_lengths + 1, ragged.flat_values,
                                      max_length, 1),
            *checks,
        ]
        with tf.control_dependencies(require(checks)):
            encoder_ids = ragged.to_tensor(default_value=config.pad_id,
                                           shape=[None, config.encoder_length])
        rows = tf.shape(encoder_ids)[0]
        starts = tf.fill([rows, config.decoder_length], config.pad_id)
        return encoder_ids, starts, tf.ones([rows], tf.int32), max_length + 1

    def texts(ids, lengths):
        return {"outputs": tokenizer.tf_decode(generator.ragged_outputs(ids, lengths))}

    def generate(inputs, max_length, *sampler):
        sampler = SamplerSettings.from_signature(sampler)
        ids, lengths = generator._decode(
            *prepare(inputs, max_length, SamplerSettings.checks(**sampler)), seed=seed_tensor(),
            stop_token=generator.end_token, prefill_length=0,
            **SamplerSettings.loop_tensors(**sampler),
        )
        return texts(ids, lengths)

    def beam_search(inputs, max_length, length_penalty):
        ids, lengths = generator._beam(
            *prepare(inputs, max_length), num_beams=num_beams, length_penalty=length_penalty,
            stop_token=generator.end_token,
        )
        return texts(ids[::num_beams], lengths[::num_beams])

    return export_saved_model(
        path,
        {"generate": (generate, GENERATE_SIGNATURE), "beam_search": (beam_search, BEAM_SIGNATURE)},
        [model, *tokenizer.trackables()],
    )
