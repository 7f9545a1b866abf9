"""SavedModel export of a causal LM with a `generate` signature: strings in, strings out."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model

GENERATE_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="prompts"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.float32, name="temperature"),
    tf.TensorSpec([], tf.int32, name="top_k"),
    tf.TensorSpec([], tf.float32, name="top_p"),
    tf.TensorSpec([], tf.int32, name="num_return_sequences"),
]


def export_generate(model: keras.Model, tokenizer, path) -> Path:
    """Exports a GPT and its tokenizer as a SavedModel with signature `generate`.

    Inputs: `prompts` (string `[N]`), `max_length` (tokens per output, prompt included, at most
    the context), `temperature` (0 = greedy), `top_k` (0 = off), `top_p` (in (0, 1]; 1 = off)
    and `num_return_sequences`, all scalars. Output: `completions`, string
    `[N, num_return_sequences]`, each the prompt followed by its continuation. Tokenization,
    the XLA-compiled decoding loop with its key/value cache and detokenization all run in the
    graph, so serving needs only `tensorflow` and `tensorflow_text`. Bad inputs (an empty prompt,
    a prompt longer than the context or than `max_length`, characters outside a character
    vocabulary, `top_p` outside (0, 1], ...) fail with `InvalidArgumentError` naming the problem.
    Every call draws a fresh sampling seed.

    Example:

    >>> export_generate(model, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> loaded = tf.saved_model.load("out/saved_model")  # doctest: +SKIP
    >>> loaded.signatures["generate"](prompts=tf.constant(["ROMEO:"]), max_length=tf.constant(50),
    ...     temperature=tf.constant(1.0), top_k=tf.constant(0), top_p=tf.constant(0.9),
    ...     num_return_sequences=tf.constant(5))["completions"]  # doctest: +SKIP
    """
    from tfpretrain.generation import decode_loop
    from tfpretrain.models.gpt import GPTDecoder

    decoder = GPTDecoder(model)
    context = decoder.sequence_length

    @tf.function(jit_compile=True)
    def decode(ids, lengths, end, temperature, top_k, top_p, greedy, seed):
        cache = decoder.initial_cache(tf.shape(ids)[0], context)
        return decode_loop(
            decoder.step, cache, ids, lengths, end, temperature=temperature, top_k=top_k,
            top_p=top_p, greedy=greedy, seed=seed, stop_token=-1, prefill_fn=decoder.prefill,
            prefill_length=context,
        )

    def generate(prompts, max_length, temperature, top_k, top_p, num_return_sequences):
        ragged = tokenizer.tf_encode(prompts)
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
        checks = [
            tf.debugging.assert_positive(tf.size(prompts), message="Give at least one prompt."),
            tf.debugging.assert_positive(lengths, message="A prompt is empty; give at least one token of text."),
            tf.debugging.assert_less_equal(
                longest, context, message=f"A prompt is longer than the model's context of {context} tokens."
            ),
            tf.debugging.assert_less_equal(
                max_length, context, message=f"max_length must be at most the model's context of {context}."
            ),
            tf.debugging.assert_less_equal(
                longest, max_length, message="max_length counts the prompt and is below a prompt's length."
            ),
            tf.debugging.assert_positive(num_return_sequences, message="num_return_sequences must be >= 1."),
            tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0 (0: greedy)."),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0: off)."),
            tf.debugging.Assert(
                tf.logical_and(top_p > 0.0, top_p <= 1.0), ["top_p must be in (0, 1]; got", top_p]
            ),
        ]
        with tf.control_dependencies(checks):
            ids = ragged.to_tensor(default_value=0, shape=[None, context])
        ids = tf.repeat(ids, num_return_sequences, axis=0)
        lengths = tf.repeat(lengths, num_return_sequences, axis=0)
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        out_ids, out_lengths = decode(
            ids, lengths, max_length, tf.maximum(temperature, 1e-6), top_k, top_p, temperature <= 0.0, seed
        )
        texts = tokenizer.tf_decode(tf.RaggedTensor.from_tensor(out_ids, lengths=out_lengths))
        return {"completions": tf.reshape(texts, [-1, num_return_sequences])}

    return export_saved_model(
        path, {"generate": (generate, GENERATE_SIGNATURE)}, [model, *tokenizer.trackables()]
    )
