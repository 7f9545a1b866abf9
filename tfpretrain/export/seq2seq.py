"""SavedModel export of an encoder-decoder: `generate`, `beam_search` and their no-XLA twins."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import check_text_request
from tfpretrain.export.core import NO_XLA_SUFFIX, export_saved_model, xla_variants
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


def export_seq2seq(
    model: keras.Model, config, tokenizer, path, num_beams: int = 4, *, version: int | str = 1
) -> Path:
    """Exports a `Seq2SeqLM` with its tokenizer to `path/<version>/`.

    Signatures (all run tokenization, `Seq2SeqGenerator`'s cached decoding loops and
    detokenization in the graph, so serving needs only `tensorflow` and `tensorflow_text`):

    * `generate(inputs, max_length, temperature, top_k, top_p) -> {"outputs"}`: string
      `[N >= 1]` in, string `[N]` out; the sampler's scalars are `SamplerSettings.signature`'s:
      `temperature` 0 means greedy, `top_k` 0 and `top_p` 1 turn those filters off; a fresh
      sampling seed every call. XLA-compiled; `generate_no_xla` is the same without XLA and
      is `serving_default` (TF Serving runs XLA on CPU only with an experimental flag).
    * `beam_search(inputs, max_length, length_penalty) -> {"outputs"}`: the best of
      `num_beams` beams (fixed at export) per input; XLA-compiled, and `beam_search_no_xla`.

    `max_length` counts output tokens (the end token included). Every check runs before the
    loops: an empty batch, a non-scalar setting, inputs that tokenize to nothing, inputs beyond
    the encoder's context, `max_length` beyond the decoder's and sampler settings out of range
    fail with `InvalidArgumentError` whose `assertion failed: [...]` names the problem, as
    `Seq2SeqGenerator` raises `ValueError`.

    Example:

    >>> export_seq2seq(model, config, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model/1").signatures["generate"](
    ...     inputs=tf.constant(["..."]), max_length=tf.constant(32),
    ...     temperature=tf.constant(0.0), top_k=tf.constant(0),
    ...     top_p=tf.constant(1.0))["outputs"]  # doctest: +SKIP
    """

    def prepare(generator, inputs, max_length, checks=()):
        """The compiled loops' first four arguments for `inputs`, once the checks pass."""
        ragged = tokenizer.tf_encode(inputs)
        text_lengths = ragged.row_lengths()
        ragged = tf.concat([ragged, tf.fill([tf.shape(inputs)[0], 1], config.eos_id)], axis=1)
        checks = [
            generator.empty_check(text_lengths),
            *generator.request_checks(
                tf.size(inputs), text_lengths + 1, ragged.flat_values, max_length, 1
            ),
            *checks,
        ]
        with tf.control_dependencies(require(checks)):
            encoder_ids = ragged.to_tensor(
                default_value=config.pad_id, shape=[None, config.encoder_length]
            )
        rows = tf.shape(encoder_ids)[0]
        starts = tf.fill([rows, config.decoder_length], config.pad_id)
        return encoder_ids, starts, tf.ones([rows], tf.int32), max_length + 1

    def texts(generator, ids, lengths):
        return {"outputs": tokenizer.tf_decode(generator.ragged_outputs(ids, lengths))}

    def build_generate(jit_compile: bool):
        generator = Seq2SeqGenerator(model, config, tokenizer, jit_compile=jit_compile)

        def generate(inputs, max_length, *sampler):
            sampler = SamplerSettings.from_signature(sampler)
            inputs, scalars = check_text_request(inputs, "inputs", max_length=max_length, **sampler)
            max_length = scalars.pop("max_length")
            ids, lengths = generator._decode(
                *prepare(generator, inputs, max_length, SamplerSettings.checks(**scalars)),
                seed=seed_tensor(),
                stop_token=generator.end_token,
                prefill_length=0,
                **SamplerSettings.loop_tensors(**scalars),
            )
            return texts(generator, ids, lengths)

        return generate

    def build_beam_search(jit_compile: bool):
        generator = Seq2SeqGenerator(model, config, tokenizer, jit_compile=jit_compile)

        def beam_search(inputs, max_length, length_penalty):
            inputs, scalars = check_text_request(
                inputs, "inputs", max_length=max_length, length_penalty=length_penalty
            )
            ids, lengths = generator._beam(
                *prepare(generator, inputs, scalars["max_length"]),
                num_beams=num_beams,
                length_penalty=scalars["length_penalty"],
                stop_token=generator.end_token,
            )
            return texts(generator, ids[::num_beams], lengths[::num_beams])

        return beam_search

    endpoints = {
        **xla_variants("generate", build_generate, GENERATE_SIGNATURE, xla=True),
        **xla_variants("beam_search", build_beam_search, BEAM_SIGNATURE, xla=True),
    }
    return export_saved_model(
        path,
        endpoints,
        [model, *tokenizer.trackables()],
        default="generate" + NO_XLA_SUFFIX,
        version=version,
    )
