"""Model-agnostic decoding: the sampler, the two decoding loops and the generators' base class.

Nothing here knows a model. A model family supplies a decoder whose
`step(token_ids [B, 1], cache, index) -> (float32 logits [B, V], cache)` runs one position, an
initial cache (any nest of tensors: a GPT's holds one key/value pair per block, an
encoder-decoder's adds its encoder outputs) and optionally `prefill(token_ids [B, P], cache)`,
which writes a whole prompt into the cache at once. Everything that may change between calls
without changing shapes (sampler settings, seed, end position, stop token) is a tensor, so one
XLA compilation serves them all; only the batch size and the buffer/prompt length buckets select
a compilation.

`Generator` is the base of the generators that live beside their models
(`tfpretrain.models.gpt.TextGenerator`, `tfpretrain.models.t5.Seq2SeqGenerator`): it owns the
compiled loops, the token buffers and the request checks, which raise `ValueError` in Python and
become assertions inside the exports' graphs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

# Buffers and prompts are padded up to powers of two (at least this) so that a handful of
# compilations serve every prompt length and max_length.
_MIN_BUCKET = 16
_INT32_MAX = 2**31 - 1
# Top-k and top-p rank this many of the most likely tokens (XLA's fast partial top-k) and sort
# the whole vocabulary only when a row's kept set reaches past them.
_CANDIDATES = 64


def bucket(n: int, cap: int) -> int:
    """The smallest power of two >= `n` (at least 16), capped at `cap`: a compiled length."""
    size = _MIN_BUCKET
    while size < n:
        size *= 2
    return min(size, cap)


def decode_rows(rows: list) -> list:
    """The rows to decode: a lone row is decoded beside a copy of itself, whose output is dropped.

    XLA's CPU fusion turns a one-row product whose weight matrix is reshaped inside the loop
    (a bias-free attention projection: its `[H, K, D]` kernel as `[H * K, D]`) into a naive loop
    that reads the matrix column by column, far slower than the two-row matrix product it is
    otherwise (BENCHMARKS.md). A product with a bias add is an output fusion that runs XLA's
    matrix-vector code instead, which reads the weights at memory speed: `Generator`s of models
    whose projections all have biases decode a lone row alone (`copy_lone_row`). Row 0's tokens
    do not change, sampled ones included (the stateless sampler draws row by row).
    """
    return rows * 2 if len(rows) == 1 else rows


def require(checks: Sequence[tuple[object, str]]) -> list:
    """Enforces `(condition, message)` pairs; a condition is a bool or an array of bools.

    Run eagerly (on Python or NumPy values), the first failed check raises `ValueError(message)`.
    Traced into a graph (an export's signature), each check becomes an assertion that fails with
    `InvalidArgumentError(message)`; they are returned for `tf.control_dependencies`.
    """
    if tf.executing_eagerly():
        for ok, message in checks:
            if not np.all(ok):
                raise ValueError(message)
        return []
    return [tf.debugging.Assert(tf.reduce_all(ok), [message]) for ok, message in checks]


def _mix(x):
    """MurmurHash3's 32-bit finaliser: every input bit flips each output bit with probability
    1/2."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13))
    x = x * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _gumbel(logits, seed):
    """Gumbel(0, 1) noise `[B, V]`: `argmax(logits + noise)` is a draw from `softmax(logits)`.

    Counter-based: token v of row b gets a hash of (seed, b, v), so a token's noise does not
    depend on how the tokens were ranked, nor a row's on the batch around it, and eager and XLA
    agree. TensorFlow's stateless generators give up one of these: Philox is row-independent but
    compiles to slow code under XLA's CPU backend (BENCHMARKS.md), and XLA's ThreeFry pairs the
    two halves of the flattened tensor, so a row's draws change with the batch size.
    """
    seed = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    rows = tf.cast(tf.range(tf.shape(logits)[0]), tf.uint32)[:, None]
    tokens = tf.cast(tf.range(tf.shape(logits)[1]), tf.uint32)[None, :]
    key = _mix(_mix(seed[0]) + seed[1])
    bits = _mix(_mix(key + rows * tf.constant(0x9E3779B9, tf.uint32)) + tokens)
    # Uniform in (0, 1): the top 24 bits, offset by half a step.
    uniform = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * (1.0 / 2**24)
    return -tf.math.log(-tf.math.log(uniform))


def sample_next(logits, seed, temperature, top_k, top_p, greedy):
    """Chooses the next token of every row of `logits` `[B, V]` (float32). All knobs are tensors.

    Args:
        logits: next-token logits `[B, V]`.
        seed: int32 `[2]` seed of the stateless sampler.
        temperature: float32 scalar > 0 dividing the logits (ignored when greedy).
        top_k: int32 scalar; keep only the `top_k` most likely tokens (0 = all).
        top_p: float32 scalar in (0, 1]; keep the smallest set of most likely tokens whose
            probability reaches `top_p` (nucleus sampling, Holtzman et al., 2020; 1 = all).
        greedy: bool scalar; take the argmax instead of sampling.

    Returns:
        int32 token ids `[B]`. A draw is the argmax of the kept tokens' logits plus Gumbel noise
        (`_gumbel`), so a row's token depends on its logits, the seed and its row index only.
    """
    vocabulary = logits.shape[-1]

    def pick_greedy():
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def pick_sampled():
        scaled = logits / tf.maximum(temperature, 1e-6)
        noise = _gumbel(scaled, seed)
        has_k = tf.logical_and(top_k > 0, top_k < vocabulary)  # a top-k that removes tokens
        limit = tf.where(has_k, top_k, vocabulary)

        def filtered(count: int, row_log_norm):
            """Draws among the `count` most likely tokens of each row; also says whether they
            hold every row's whole top-k / top-p set, so that the draw equals the full one."""
            ranked, order = tf.math.top_k(scaled, k=count)
            rank = tf.range(count)[None, :]
            keep = rank < limit
            masked = tf.where(keep, ranked, -np.inf)
            # Probabilities over the whole top-k set: the candidates' own when top-k lies among
            # them, the full row's when there is no top-k.
            log_norm = tf.where(has_k, tf.reduce_logsumexp(masked, -1), row_log_norm)
            probs = tf.exp(masked - log_norm[:, None])
            mass_before = tf.math.cumsum(probs, axis=-1, exclusive=True)
            complete = tf.where(
                has_k, top_k <= count, tf.reduce_all(tf.reduce_sum(probs, -1) >= top_p)
            )
            keep = tf.logical_and(keep, tf.logical_or(mass_before < top_p, rank == 0))
            noisy = tf.where(keep, ranked + tf.gather(noise, order, batch_dims=1), -np.inf)
            choice = tf.argmax(noisy, axis=-1, output_type=tf.int32)
            return tf.gather(order, choice, batch_dims=1), complete

        def truncated():
            # XLA's CPU code sorts a row with a generic comparator, far slower than its partial
            # top-k (BENCHMARKS.md): sort the whole row only when the candidates fall short.
            row_log_norm = tf.reduce_logsumexp(scaled, -1)  # both paths' normaliser without top-k
            count = min(_CANDIDATES, vocabulary - 1)
            if count < 1:
                return filtered(vocabulary, row_log_norm)[0]
            tokens, complete = filtered(count, row_log_norm)
            return tf.cond(complete, lambda: tokens, lambda: filtered(vocabulary, row_log_norm)[0])

        def unfiltered():
            return tf.argmax(scaled + noise, axis=-1, output_type=tf.int32)

        return tf.cond(tf.logical_or(top_k > 0, top_p < 1.0), truncated, unfiltered)

    return tf.cond(greedy, pick_greedy, pick_sampled)


def decode_loop(
    step_fn: Callable,
    cache,
    token_ids,
    prompt_lengths,
    end,
    *,
    seed,
    stop_token,
    prefill_fn: Callable | None = None,
    prefill_length: int = 0,
    pad_id: int = 0,
    **sampler,
):
    """Extends every row of `token_ids` from its prompt to position `end` (exclusive).

    Rows may have prompts of different lengths: the loop starts at the shortest prompt and, at
    position `i`, keeps the prompt token of rows whose prompt is longer than `i` and samples
    for the others. Position `i - 1` is (re)written into the cache before it is attended to,
    so padding written by the prefill is never seen.

    Args:
        step_fn: `(token_ids [B, 1], cache, index) -> (logits [B, V], cache)`.
        cache: the initial cache, any nest of tensors `step_fn` understands.
        token_ids: int32 `[B, S]`, prompts left-aligned, anything after them.
        prompt_lengths: int32 `[B]`, each >= 1.
        end: int32 scalar <= S, the length to generate up to.
        seed: int32 `[2]`; the token at position `i` uses `fold_in(seed, i)`.
        stop_token: int32 scalar; a row that samples it stops there (-1: never stop).
        prefill_fn: optional `(token_ids [B, P], cache) -> cache` to fill positions `0..P-1` at
            once instead of one step each.
        prefill_length: P, a Python int (part of the compiled shape); 0 skips the prefill.
        pad_id: written after a row has stopped.
        **sampler: the sampler's tensors, passed to `sample_next` (`temperature`, `top_k`,
            `top_p`, `greedy`; `SamplerSettings.tensors()` makes them).

    Returns:
        `(token_ids [B, S], lengths [B])`: the sequences and how many tokens of each are
        output (the stop token excluded).
    """
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    prompt_lengths = tf.cast(prompt_lengths, tf.int32)
    end = tf.cast(end, tf.int32)
    stop_token = tf.cast(stop_token, tf.int32)
    batch = tf.shape(token_ids)[0]
    width = token_ids.shape[1]
    if prefill_fn is not None and prefill_length:
        cache = prefill_fn(token_ids[:, :prefill_length], cache)
    positions = tf.range(width)[None, :]

    def body(i, ids, cache, done, lengths):
        previous = tf.gather(ids, i - 1, axis=1)[:, None]
        logits, cache = step_fn(previous, cache, i - 1)
        step_seed = tf.random.experimental.stateless_fold_in(seed, i)
        sampled = sample_next(tf.cast(logits, tf.float32), step_seed, **sampler)
        in_prompt = i < prompt_lengths
        token = tf.where(in_prompt, tf.gather(ids, i, axis=1), sampled)
        token = tf.where(done, pad_id, token)
        ids = tf.where(positions == i, token[:, None], ids)
        stopped = tf.logical_and(tf.logical_and(~in_prompt, ~done), token == stop_token)
        lengths = tf.where(stopped, i, lengths)
        return i + 1, ids, cache, tf.logical_or(done, stopped), lengths

    def cond(i, ids, cache, done, lengths):
        return tf.logical_and(i < end, ~tf.reduce_all(done))

    start = tf.reduce_min(prompt_lengths)
    done = tf.zeros([batch], tf.bool)
    lengths = tf.fill([batch], end)
    _, token_ids, _, _, lengths = tf.while_loop(
        cond, body, (start, token_ids, cache, done, lengths), maximum_iterations=width
    )
    return token_ids, lengths


def beam_search_loop(
    step_fn: Callable,
    cache,
    token_ids,
    prompt_lengths,
    end,
    *,
    num_beams: int,
    length_penalty,
    stop_token,
    pad_id: int = 0,
):
    """Beam search over the same step functions as `decode_loop` (any model family).

    Rows come in groups of `num_beams` copies of each prompt (row `b * num_beams + k` is beam
    k of prompt b), and `cache` must hold the matching copies. Each step extends every beam by
    every token, keeps the `num_beams` best sums of log-probabilities per prompt, and reorders
    the token buffer and the cache (every tensor of the nest, gathered along the batch axis)
    to follow the surviving beams. A beam that emits `stop_token` is finished: it keeps its
    score and continues with `pad_id` at no cost. At the end the beams of each prompt are
    ranked by `score / generated_length ** length_penalty` (Wu et al., 2016; > 0 favours longer
    outputs, 0 ranks by the raw sum). Prompt positions are forced as in `decode_loop`.

    Args:
        step_fn: `(token_ids [N, 1], cache, index) -> (logits [N, V], cache)`.
        cache: initial cache for the N = prompts * num_beams rows.
        token_ids: int32 `[N, S]`, prompts left-aligned.
        prompt_lengths: int32 `[N]`, each >= 1.
        end: int32 scalar <= S, the length to generate up to.
        num_beams: beams per prompt, a Python int >= 1 (part of the compiled shape).
        length_penalty: float32 scalar exponent of the length normalisation.
        stop_token: int32 scalar ending a beam (-1: never).
        pad_id: written after a beam has finished.

    Returns:
        `(token_ids [N, S], lengths [N], scores [N])`, the beams of each prompt sorted best
        first; `lengths` counts the output tokens (stop token excluded), `scores` are the
        length-normalised log-probabilities.
    """
    if not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1; got {num_beams!r}.")
    k = num_beams
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    prompt_lengths = tf.cast(prompt_lengths, tf.int32)
    end = tf.cast(end, tf.int32)
    stop_token = tf.cast(stop_token, tf.int32)
    rows = tf.shape(token_ids)[0]
    prompts = rows // k
    width = token_ids.shape[1]
    positions = tf.range(width)[None, :]
    # Only beam 0 of each prompt is alive at first, so the first branching fills distinct beams.
    first = tf.tile(tf.concat([[0.0], tf.fill([k - 1], -1e9)], 0), [prompts])
    row_base = tf.repeat(tf.range(prompts) * k, k)

    def body(i, ids, cache, scores, done, lengths):
        previous = tf.gather(ids, i - 1, axis=1)[:, None]
        logits, cache = step_fn(previous, cache, i - 1)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        vocabulary = logp.shape[-1]
        in_prompt = i < prompt_lengths
        forced = tf.where(in_prompt, tf.gather(ids, i, axis=1), pad_id)
        only_forced = tf.where(tf.one_hot(forced, vocabulary) > 0, 0.0, -1e9)
        logp = tf.where((in_prompt | done)[:, None], only_forced, logp)
        candidates = tf.reshape(scores[:, None] + logp, [prompts, k * vocabulary])
        best, index = tf.math.top_k(candidates, k=k)
        source = row_base + tf.reshape(index // vocabulary, [-1])
        token = tf.reshape(index % vocabulary, [-1])
        ids = tf.gather(ids, source)
        cache = tf.nest.map_structure(lambda c: tf.gather(c, source), cache)
        done, lengths = tf.gather(done, source), tf.gather(lengths, source)
        ids = tf.where(positions == i, token[:, None], ids)
        stopped = ~tf.gather(in_prompt, source) & ~done & (token == stop_token)
        lengths = tf.where(stopped, i, lengths)
        return i + 1, ids, cache, tf.reshape(best, [-1]), done | stopped, lengths

    def cond(i, ids, cache, scores, done, lengths):
        return tf.logical_and(i < end, ~tf.reduce_all(done))

    start = tf.reduce_min(prompt_lengths)
    init = (start, token_ids, cache, first, tf.zeros([rows], tf.bool), tf.fill([rows], end))
    _, ids, _, scores, _, lengths = tf.while_loop(cond, body, init, maximum_iterations=width)
    generated = tf.cast(tf.maximum(lengths - prompt_lengths, 1), tf.float32)
    normalised = scores / generated ** tf.cast(length_penalty, tf.float32)
    order = tf.argsort(tf.reshape(normalised, [prompts, k]), axis=-1, direction="DESCENDING")
    order = tf.reshape(order + tf.range(prompts)[:, None] * k, [-1])
    return tf.gather(ids, order), tf.gather(lengths, order), tf.gather(normalised, order)


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """The sampler's settings, validated: the one list of them that every caller shares.

    `generate_ids` takes them as keyword arguments, `tensors()` gives `sample_next`'s inputs and
    an export's signature takes the scalars of `signature()` (where temperature 0 is greedy).
    A new setting goes here and into `sample_next`.

    Args:
        temperature: divides the logits; 0 means greedy.
        top_k: sample among the k most likely tokens only (None or 0: all).
        top_p: nucleus sampling threshold in (0, 1] (None or 1: off).
        greedy: take the most likely token each time (the other settings are ignored).
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False

    def __post_init__(self):
        if self.temperature is None:
            raise ValueError("temperature must be >= 0 (0 means greedy); got None.")
        if self.top_k is not None and not isinstance(self.top_k, (int, np.integer)):
            raise ValueError(
                f"top_k must be a non-negative integer (0 or None: no limit); got {self.top_k!r}."
            )
        require(self.checks(**self._scalars()))

    def _scalars(self) -> dict:
        top_p = 1.0 if self.top_p is None else self.top_p
        return {"temperature": self.temperature, "top_k": int(self.top_k or 0), "top_p": top_p}

    @staticmethod
    def signature() -> list[tf.TensorSpec]:
        """The scalar inputs an export's signature takes, in order (temperature 0: greedy)."""
        return [
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
        ]

    @classmethod
    def from_signature(cls, values: Sequence) -> dict:
        """The signature's values (in `signature()` order) by name."""
        return {spec.name: value for spec, value in zip(cls.signature(), values, strict=True)}

    @staticmethod
    def checks(temperature, top_k, top_p) -> list[tuple]:
        """The settings' rules as `require` pairs, on Python values or on tensors."""
        return [
            (temperature >= 0, "temperature must be >= 0 (0 means greedy)."),
            (top_k >= 0, "top_k must be a non-negative integer (0 or None: no limit)."),
            ((top_p > 0) & (top_p <= 1), "top_p must be in (0, 1] (1 or None: off)."),
        ]

    @staticmethod
    def loop_tensors(temperature, top_k, top_p, greedy=False) -> dict:
        """`sample_next`'s keyword tensors for valid settings (Python values or tensors)."""
        temperature = tf.cast(temperature, tf.float32)
        return {
            "temperature": tf.maximum(temperature, 1e-6),
            "top_k": tf.cast(top_k, tf.int32),
            "top_p": tf.cast(top_p, tf.float32),
            "greedy": tf.logical_or(greedy, temperature <= 0.0),
        }

    def tensors(self) -> dict:
        """`sample_next`'s keyword tensors for these settings."""
        return self.loop_tensors(**self._scalars(), greedy=bool(self.greedy))


def seed_tensor(seed: int | None = None) -> tf.Tensor:
    """An int32 `[2]` sampler seed; for None a fresh one (in a graph: drawn at every call)."""
    if seed is None:
        if not tf.executing_eagerly():
            return tf.random.uniform([2], maxval=_INT32_MAX, dtype=tf.int32)
        seed = int(np.random.default_rng().integers(_INT32_MAX))
    return tf.constant([seed % _INT32_MAX, (seed // _INT32_MAX) % _INT32_MAX], tf.int32)


class Generator:
    """The base of every family's generator: compiled loops, request checks, token buffers.

    The compiled functions `_decode` (sampling and greedy, `decode_loop`) and `_beam`
    (`beam_search_loop`) are cached per (batch size, buffer bucket, prompt bucket, beams), so
    changing the sampler settings, the seed, `max_length` within a bucket or the prompts does
    not recompile; `trace_count` counts the compilations. The exports in `tfpretrain.export`
    call the same functions inside their signatures, after the same `request_checks`.

    A subclass says how its model decodes:

    * `_initial_cache(inputs, batch_size, width)`: the decoder's cache, inside the loop's graph;
    * `_layout(rows, max_length)`: the loop's arguments for a list of prompt id arrays;
    * `_length_checks(lengths, max_length)`: its rules for `max_length`;
    * `prompt_name`, `prompt_context` and `output_start` (class attributes).

    Args:
        decoder: the family's cached decoder: `step`, `vocabulary_size` and optionally
            `prefill` (see `decode_loop`).
        tokenizer: the model's tokenizer (`encode`/`decode`), or None for `generate_ids` only.
        prompt_limit: the longest prompt the model takes, in tokens.
        pad_id: pads buffers and follows a finished sequence.
        end_token: the token that ends a sequence when no `stop_token` is given (-1: none).
        jit_compile: compile the loops with XLA.
    """

    prompt_name = "prompt"  # what a request's rows are called in error messages
    copy_lone_row = True  # decode a lone row beside a copy (`decode_rows`)
    prompt_context = "the context of the model"  # what limits their length
    output_start = 0  # the first position of a sequence that is output

    def __init__(
        self,
        decoder,
        tokenizer=None,
        *,
        prompt_limit: int,
        pad_id: int = 0,
        end_token: int = -1,
        jit_compile: bool = True,
    ):
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.vocabulary_size = decoder.vocabulary_size
        self.prompt_limit = prompt_limit
        self.pad_id = pad_id
        self.end_token = end_token
        self.trace_count = 0
        compile_options = dict(jit_compile=jit_compile, reduce_retracing=False)
        self._decode = tf.function(self._decode_ids, **compile_options)
        self._beam = tf.function(self._beam_ids, **compile_options)

    def _initial_cache(self, inputs, batch_size, width: int):
        raise NotImplementedError

    def _layout(self, rows: list[np.ndarray], max_length: int) -> tuple:
        """`(inputs, token_ids, prompt_lengths, end, prefill_length)` for the compiled loops,
        NumPy arrays (`inputs` may be None) and Python ints."""
        raise NotImplementedError

    def _length_checks(self, lengths, max_length) -> list[tuple]:
        raise NotImplementedError

    def _decode_ids(
        self,
        inputs,
        token_ids,
        prompt_lengths,
        end,
        seed,
        stop_token,
        prefill_length: int,
        **sampler,
    ):
        self.trace_count += 1  # runs only while tracing
        cache = self._initial_cache(inputs, tf.shape(token_ids)[0], token_ids.shape[1])
        return decode_loop(
            self.decoder.step,
            cache,
            token_ids,
            prompt_lengths,
            end,
            seed=seed,
            stop_token=stop_token,
            prefill_fn=getattr(self.decoder, "prefill", None),
            prefill_length=prefill_length,
            pad_id=self.pad_id,
            **sampler,
        )

    def _beam_ids(
        self, inputs, token_ids, prompt_lengths, end, num_beams: int, length_penalty, stop_token
    ):
        self.trace_count += 1
        cache = self._initial_cache(inputs, tf.shape(token_ids)[0], token_ids.shape[1])
        # The beams of a prompt share what was computed once for it (T5: the encoder's outputs).
        cache, token_ids, prompt_lengths = tf.nest.map_structure(
            lambda t: tf.repeat(t, num_beams, axis=0), (cache, token_ids, prompt_lengths)
        )
        ids, lengths, _ = beam_search_loop(
            self.decoder.step,
            cache,
            token_ids,
            prompt_lengths,
            end,
            num_beams=num_beams,
            length_penalty=length_penalty,
            stop_token=stop_token,
            pad_id=self.pad_id,
        )
        return ids, lengths

    def pack(self, rows: Sequence[np.ndarray], width: int) -> np.ndarray:
        """Rows of token ids left-aligned in an int32 `[len(rows), width]` buffer of padding."""
        buffer = np.full((len(rows), width), self.pad_id, np.int32)
        for r, row in enumerate(rows):
            buffer[r, : len(row)] = row
        return buffer

    def empty_check(self, lengths) -> tuple:
        """The `require` pair refusing prompts of no tokens."""
        message = (
            f"Every {self.prompt_name} needs at least one token; one is empty (it "
            "tokenizes to nothing): give some text."
        )
        return lengths > 0, message

    def request_checks(self, count, lengths, ids, max_length, num_return_sequences) -> list:
        """A request's rules as `require` pairs, on NumPy values or on an export's tensors.

        Args:
            count: the number of prompts.
            lengths: int `[count]`, the prompts' lengths in tokens.
            ids: the prompts' token ids, flattened.
            max_length: the requested length, as the subclass counts it.
            num_return_sequences: outputs per prompt.
        """
        name, limit, vocabulary = self.prompt_name, self.prompt_limit, self.vocabulary_size
        return [
            (count > 0, f"Give at least one {name}."),
            self.empty_check(lengths),
            (
                lengths <= limit,
                f"Every {name} must fit {self.prompt_context} ({limit} tokens); "
                "shorten the longer ones.",
            ),
            (
                (ids >= 0) & (ids < vocabulary),
                f"Every {name} must hold token ids in [0, {vocabulary}); one holds others.",
            ),
            (num_return_sequences > 0, "num_return_sequences must be >= 1."),
            *self._length_checks(lengths, max_length),
        ]

    def ragged_outputs(self, ids, lengths) -> tf.RaggedTensor:
        """The compiled loops' `(ids, lengths)` as the output tokens of each row, in a graph."""
        start = self.output_start
        return tf.RaggedTensor.from_tensor(ids[:, start:], lengths=lengths - start)

    def _stop_id(self, stop_token: int | str | None) -> int:
        if stop_token is None:
            return self.end_token
        if isinstance(stop_token, str):
            if self.tokenizer is None:
                raise ValueError("A stop_token given as text needs a tokenizer; give its id.")
            ids = self.tokenizer.encode(stop_token)
            if len(ids) != 1:
                raise ValueError(
                    f"stop_token {stop_token!r} must be exactly one token; it "
                    f"encodes to {len(ids)}."
                )
            return int(ids[0])
        if not 0 <= int(stop_token) < self.vocabulary_size:
            raise ValueError(f"stop_token id {stop_token} is outside the vocabulary.")
        return int(stop_token)

    def generate_ids(
        self,
        prompts: Sequence[Sequence[int]],
        max_length: int,
        num_return_sequences: int = 1,
        *,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        seed: int | None = None,
        stop_token: int | str | None = None,
        **sampler,
    ) -> list[list[np.ndarray]]:
        """Token-level generation: prompt id lists in, `[prompt][sequence]` id arrays out.

        Args:
            prompts: lists of token ids (what a subclass's `generate` makes of text).
            max_length: how long outputs may be, as the subclass counts it.
            num_return_sequences: outputs per prompt (with beam search, the best beams).
            num_beams: 1 samples (or decodes greedily); more runs beam search.
            length_penalty: beam search's length normalisation exponent (0: raw sums).
            seed: the same seed gives the same tokens; None draws a fresh one.
            stop_token: a token (id, or text of one token) that ends a sequence and is not
                output; None: the model's end token.
            **sampler: `temperature`, `top_k`, `top_p`, `greedy` (see `SamplerSettings`).

        Raises:
            ValueError: a request outside the model's limits or sampler settings out of range.
        """
        settings = SamplerSettings(**sampler)
        for name, value in (
            ("max_length", max_length),
            ("num_beams", num_beams),
            ("num_return_sequences", num_return_sequences),
        ):
            if not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer; got {value!r}.")
        if num_beams < 1:
            raise ValueError(f"num_beams must be an integer >= 1; got {num_beams!r}.")
        if num_beams > 1 and num_return_sequences > num_beams:
            raise ValueError(
                f"num_return_sequences ({num_return_sequences}) cannot exceed "
                f"num_beams ({num_beams})."
            )
        rows = [np.asarray(p, np.int32).reshape(-1) for p in prompts]
        lengths = np.array([len(row) for row in rows], np.int32)
        ids = np.concatenate(rows) if rows else np.zeros([0], np.int32)
        require(self.request_checks(len(rows), lengths, ids, max_length, num_return_sequences))
        stop = tf.constant(self._stop_id(stop_token), tf.int32)

        sampling = num_beams == 1
        per_prompt = num_return_sequences if sampling else int(num_beams)
        repeated = [row for row in rows for _ in range(num_return_sequences if sampling else 1)]
        inputs, token_ids, prompt_lengths, end, prefill = self._layout(
            decode_rows(repeated) if sampling and self.copy_lone_row else repeated,
            int(max_length),
        )
        args = (
            None if inputs is None else tf.constant(inputs),
            tf.constant(token_ids),
            tf.constant(prompt_lengths),
            tf.constant(end, tf.int32),
        )
        if sampling:
            out, out_lengths = self._decode(
                *args,
                seed=seed_tensor(seed),
                stop_token=stop,
                prefill_length=prefill,
                **settings.tensors(),
            )
        else:
            out, out_lengths = self._beam(
                *args,
                num_beams=int(num_beams),
                stop_token=stop,
                length_penalty=tf.constant(length_penalty, tf.float32),
            )
        out, out_lengths = out.numpy(), out_lengths.numpy()
        rows_of = [
            range(i * per_prompt, i * per_prompt + num_return_sequences) for i in range(len(rows))
        ]
        return [[out[r, self.output_start : out_lengths[r]] for r in rs] for rs in rows_of]

    def _texts(self, outputs: list[list[np.ndarray]]) -> list[list[str]]:
        return [[self.tokenizer.decode(sequence) for sequence in row] for row in outputs]
