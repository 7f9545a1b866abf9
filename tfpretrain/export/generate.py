"""SavedModel export of a causal LM: `generate` and `generate_no_xla`, strings in, strings out."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import check_text_request
from tfpretrain.export.core import NO_XLA_SUFFIX, export_saved_model, xla_variants
from tfpretrain.generation import SamplerSettings, require, seed_tensor
from tfpretrain.models.gpt import TextGenerator

GENERATE_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="prompts"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.int32, name="num_return_sequences"),
    *SamplerSettings.signature(),
]


def export_generate(model: keras.Model, tokenizer, path, *, version: int | str = 1) -> Path:
    """Exports a GPT and its tokenizer to `path/<version>/` with signatures `generate` (XLA)
    and `generate_no_xla` (also `serving_default`: TF Serving runs XLA on CPU only with an
    experimental flag).

    Inputs: `prompts` (string `[N >= 1]`), `max_length` (tokens per output, prompt included, at
    most the context), `num_return_sequences` and the sampler's scalars
    (`SamplerSettings.signature`: `temperature`, 0 = greedy; `top_k`, 0 = off; `top_p` in
    (0, 1], 1 = off). Output: `completions`, string `[N, num_return_sequences]`, each the prompt
    followed by its continuation. Tokenization, `TextGenerator`'s decoding loop with its
    key/value cache and detokenization all run in the graph, so serving needs only `tensorflow`
    and `tensorflow_text`. Every check runs before the loop: an empty batch, a non-scalar
    setting, an empty prompt, a prompt longer than the context or than `max_length`,
    `max_length` beyond the context, characters outside a character vocabulary, `top_p`
    outside (0, 1], ... fail with `InvalidArgumentError` whose `assertion failed: [...]` names
    the problem, as `TextGenerator` raises `ValueError`. Every call draws a fresh sampling seed.

    Example:

    >>> export_generate(model, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> loaded = tf.saved_model.load("out/saved_model/1")  # doctest: +SKIP
    >>> loaded.signatures["generate"](prompts=tf.constant(["ROMEO:"]), max_length=tf.constant(50),
    ...     temperature=tf.constant(1.0), top_k=tf.constant(0), top_p=tf.constant(0.9),
    ...     num_return_sequences=tf.constant(5))["completions"]  # doctest: +SKIP
    """
    context = TextGenerator(model, tokenizer).context_length

    def build(jit_compile: bool):
        generator = TextGenerator(model, tokenizer, jit_compile=jit_compile)

        def generate(prompts, max_length, num_return_sequences, *sampler):
            sampler = SamplerSettings.from_signature(sampler)
            prompts, scalars = check_text_request(
                prompts,
                "prompts",
                max_length=max_length,
                num_return_sequences=num_return_sequences,
                **sampler,
            )
            max_length = scalars.pop("max_length")
            repeats = scalars.pop("num_return_sequences")
            ragged = tokenizer.tf_encode(prompts)
            lengths = tf.cast(ragged.row_lengths(), tf.int32)
            checks = generator.request_checks(
                tf.size(prompts), lengths, ragged.flat_values, max_length, repeats
            )
            with tf.control_dependencies(require(checks + SamplerSettings.checks(**scalars))):
                ids = ragged.to_tensor(default_value=generator.pad_id, shape=[None, context])
            ids = tf.repeat(ids, repeats, axis=0)
            lengths = tf.repeat(lengths, repeats, axis=0)
            out_ids, out_lengths = generator._decode(
                None,
                ids,
                lengths,
                max_length,
                seed=seed_tensor(),
                stop_token=generator.end_token,
                prefill_length=context,
                **SamplerSettings.loop_tensors(**scalars),
            )
            texts = tokenizer.tf_decode(generator.ragged_outputs(out_ids, out_lengths))
            return {"completions": tf.reshape(texts, [-1, repeats])}

        return generate

    endpoints = xla_variants("generate", build, GENERATE_SIGNATURE, xla=True)
    return export_saved_model(
        path,
        endpoints,
        [model, *tokenizer.trackables()],
        default="generate" + NO_XLA_SUFFIX,
        version=version,
    )
