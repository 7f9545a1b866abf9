"""The one autoregressive decoding loop of tfpretrain, and text generation with it.

`decode_loop` is model-agnostic: a model family supplies a step function
`step_fn(token_ids [B, 1], cache, index) -> (float32 logits [B, V], cache)`, an initial cache (any
nest of tensors: GPT passes one key/value tensor per block, an encoder-decoder can add its
encoder outputs) and optionally a `prefill_fn` that writes a whole prompt into the cache at once.
Everything that may change between calls without changing shapes (sampler settings, seed, end
position, stop token) is a tensor, so one XLA compilation serves them all; only the batch size and
the buffer/prompt length buckets select a compilation. Beam search can be added as a second loop
body over the same step functions.

`TextGenerator` is the user-facing API for GPT models: strings in, strings out.
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


def _bucket(n: int, cap: int) -> int:
    size = _MIN_BUCKET
    while size < n:
        size *= 2
    return min(size, cap)


def decode_rows(rows: list) -> list:
    """The rows to decode: a lone row is decoded beside a copy of itself, whose output is dropped.

    XLA on CPU compiles a one-row decode step's projections as matrix-vector loops fused with
    their producers, which run slower than the two-row matrix products they become otherwise:
    the copy makes batch-1 decoding about 20% faster (BENCHMARKS.md). Row 0's tokens do not
    change, sampled ones included (the stateless sampler draws row by row).
    """
    return rows * 2 if len(rows) == 1 else rows


# Top-k and top-p rank this many of the most likely tokens (XLA's fast partial top-k) and sort
# the whole vocabulary only when a row's kept set reaches past them.
_CANDIDATES = 64


def _mix(x):
    """MurmurHash3's 32-bit finaliser: every input bit flips each output bit with probability 1/2."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13))
    x = x * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _gumbel(logits, seed):
    """Gumbel(0, 1) noise `[B, V]`: `argmax(logits + noise)` is a draw from `softmax(logits)`.

    Counter-based: token v of row b gets a hash of (seed, b, v), so a token's noise does not
    depend on how the tokens were ranked, nor a row's on the batch around it, and eager and XLA
    agree. TensorFlow's stateless generators give up one of these: Philox, row-independent,
    compiles under XLA's CPU backend to about 200 us per decoding step for 8 x 65 draws, and
    XLA's ThreeFry pairs the two halves of the flattened tensor, so a row's draws change with
    the batch size.
    """
    seed = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    rows = tf.cast(tf.range(tf.shape(logits)[0]), tf.uint32)[:, None]
    tokens = tf.cast(tf.range(tf.shape(logits)[1]), tf.uint32)[None, :]
    key = _mix(_mix(seed[0]) + seed[1])
    bits = _mix(_mix(key + rows * tf.constant(0x9E3779B9, tf.uint32)) + tokens)
    uniform = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * (1.0 / 2**24)  # in (0, 1)
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
            complete = tf.where(has_k, top_k <= count, tf.reduce_all(tf.reduce_sum(probs, -1) >= top_p))
            keep = tf.logical_and(keep, tf.logical_or(mass_before < top_p, rank == 0))
            noisy = tf.where(keep, ranked + tf.gather(noise, order, batch_dims=1), -np.inf)
            choice = tf.argmax(noisy, axis=-1, output_type=tf.int32)
            return tf.gather(order, choice, batch_dims=1), complete

        def truncated():
            # XLA's CPU code sorts a row with a generic comparator: a draw from 8 x 65 logits took
            # 79 us with the sort and 37-44 with 64 candidates; from 8 x 8,000 with top-k 40,
            # 12 ms and 0.3 ms (BENCHMARKS.md).
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
    temperature,
    top_k,
    top_p,
    greedy,
    seed,
    stop_token,
    prefill_fn: Callable | None = None,
    prefill_length: int = 0,
    pad_id: int = 0,
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
        temperature, top_k, top_p, greedy: sampler settings (see `sample_next`).
        seed: int32 `[2]`; the token at position `i` uses `fold_in(seed, i)`.
        stop_token: int32 scalar; a row that samples it stops there (-1: never stop).
        prefill_fn: optional `(token_ids [B, P], cache) -> cache` to fill positions `0..P-1` at
            once instead of one step each.
        prefill_length: P, a Python int (part of the compiled shape); 0 skips the prefill.
        pad_id: written after a row has stopped.

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
        sampled = sample_next(
            tf.cast(logits, tf.float32), tf.random.experimental.stateless_fold_in(seed, i),
            temperature, top_k, top_p, greedy,
        )
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


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """Validated sampler settings; `tensors()` gives the loop's inputs."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False

    def __post_init__(self):
        if self.temperature is None or not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy); got {self.temperature}.")
        if self.top_k is not None and (not isinstance(self.top_k, (int, np.integer)) or self.top_k < 0):
            raise ValueError(f"top_k must be a non-negative integer (0 or None: no limit); got {self.top_k!r}.")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1]; got {self.top_p}.")

    def tensors(self) -> dict:
        return {
            "temperature": tf.constant(max(float(self.temperature), 1e-6), tf.float32),
            "top_k": tf.constant(int(self.top_k or 0), tf.int32),
            "top_p": tf.constant(1.0 if self.top_p is None else float(self.top_p), tf.float32),
            "greedy": tf.constant(bool(self.greedy or self.temperature == 0)),
        }


def seed_tensor(seed: int | None) -> tf.Tensor:
    """An int32 `[2]` sampler seed; a fresh random one when `seed` is None."""
    if seed is None:
        seed = int(np.random.default_rng().integers(_INT32_MAX))
    return tf.constant([seed % _INT32_MAX, (seed // _INT32_MAX) % _INT32_MAX], tf.int32)


class TextGenerator:
    """Generates text with a GPT from `build_gpt` and its tokenizer, XLA-compiled, with a KV cache.

    Compiled functions are cached per (batch size, buffer bucket, prompt bucket), so changing
    the sampler settings, the seed, `max_length` within a bucket or the prompts does not
    recompile; `trace_count` counts the compilations.

    Args:
        model: a GPT built by `tfpretrain.models.gpt.build_gpt`.
        tokenizer: a `CharTokenizer` or `SentencePieceTokenizer`.
        jit_compile: compile the loop with XLA.

    Example:

    >>> generator = TextGenerator(model, tokenizer)  # doctest: +SKIP
    >>> generator.generate("ROMEO:", max_length=50, num_return_sequences=5, top_p=0.9, seed=0)  # doctest: +SKIP
    """

    def __init__(self, model, tokenizer, jit_compile: bool = True):
        from tfpretrain.models.gpt import GPTDecoder

        self.decoder = GPTDecoder(model)
        self.tokenizer = tokenizer
        if tokenizer.vocabulary_size > self.decoder.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size} tokens but the model only "
                f"{self.decoder.vocabulary_size}; they do not belong together."
            )
        self.trace_count = 0
        self._decode = tf.function(self._decode_ids, jit_compile=jit_compile, reduce_retracing=False)

    @property
    def context_length(self) -> int:
        return self.decoder.sequence_length

    def _decode_ids(self, token_ids, prompt_lengths, end, temperature, top_k, top_p, greedy, seed,
                    stop_token, prefill_length):
        self.trace_count += 1  # runs only while tracing
        cache = self.decoder.initial_cache(tf.shape(token_ids)[0], token_ids.shape[1])
        return decode_loop(
            self.decoder.step, cache, token_ids, prompt_lengths, end,
            temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, seed=seed,
            stop_token=stop_token, prefill_fn=self.decoder.prefill, prefill_length=prefill_length,
        )

    def _stop_id(self, stop_token) -> int:
        if stop_token is None:
            return -1
        if isinstance(stop_token, str):
            ids = self.tokenizer.encode(stop_token)
            if len(ids) != 1:
                raise ValueError(f"stop_token {stop_token!r} must be exactly one token; it encodes to {len(ids)}.")
            return int(ids[0])
        if not 0 <= int(stop_token) < self.decoder.vocabulary_size:
            raise ValueError(f"stop_token id {stop_token} is outside the vocabulary.")
        return int(stop_token)

    def generate_ids(
        self,
        prompts: Sequence[Sequence[int]],
        max_length: int,
        num_return_sequences: int = 1,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        greedy: bool = False,
        seed: int | None = None,
        stop_token: int | str | None = None,
    ) -> list[list[np.ndarray]]:
        """Token-level `generate`: lists of prompt ids in, `[prompt][sequence]` id arrays out
        (each the prompt followed by its continuation)."""
        sampler = SamplerSettings(temperature, top_k, top_p, greedy)
        prompts = [np.asarray(p, dtype=np.int32).reshape(-1) for p in prompts]
        if not prompts:
            raise ValueError("Give at least one prompt.")
        if not isinstance(num_return_sequences, (int, np.integer)) or num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be a positive integer; got {num_return_sequences!r}.")
        context = self.context_length
        longest = max(len(p) for p in prompts)
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ValueError(
                    f"Prompt {i} is empty; give at least one token of text to continue "
                    "(e.g. a newline for an unconditional sample)."
                )
            if len(p) > context:
                raise ValueError(
                    f"Prompt {i} has {len(p)} tokens, more than the model's context of {context}; "
                    f"shorten it (e.g. keep its last {context // 2} tokens)."
                )
            if p.min() < 0 or p.max() >= self.decoder.vocabulary_size:
                raise ValueError(f"Prompt {i} holds token ids outside [0, {self.decoder.vocabulary_size}).")
        if not isinstance(max_length, (int, np.integer)) or max_length > context:
            raise ValueError(
                f"max_length (prompt plus new tokens) must be an integer <= the model's context of "
                f"{context}; got {max_length!r}."
            )
        if max_length < longest:
            raise ValueError(
                f"max_length ({max_length}) counts the prompt too and is shorter than the longest "
                f"prompt ({longest} tokens); raise it to at least {longest}."
            )
        width = _bucket(max_length, context)
        prefill = _bucket(longest, width)
        rows = decode_rows([p for p in prompts for _ in range(num_return_sequences)])
        buffer = np.zeros((len(rows), width), np.int32)
        for r, p in enumerate(rows):
            buffer[r, : len(p)] = p
        lengths = np.array([len(p) for p in rows], np.int32)
        ids, out_lengths = self._decode(
            tf.constant(buffer), tf.constant(lengths), tf.constant(max_length, tf.int32),
            **sampler.tensors(), seed=seed_tensor(seed),
            stop_token=tf.constant(self._stop_id(stop_token), tf.int32), prefill_length=prefill,
        )
        ids, out_lengths = ids.numpy(), out_lengths.numpy()
        n = num_return_sequences
        return [[ids[i * n + j, : out_lengths[i * n + j]] for j in range(n)] for i in range(len(prompts))]

    def generate(
        self,
        prompts: str | Sequence[str],
        max_length: int,
        num_return_sequences: int = 1,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        greedy: bool = False,
        seed: int | None = None,
        stop_token: int | str | None = None,
    ) -> list[str] | list[list[str]]:
        """Continues prompts; each output is the prompt followed by its continuation.

        Args:
            prompts: one string, or a list of strings of any lengths.
            max_length: tokens per output, prompt included (at most the model's context).
            num_return_sequences: outputs per prompt.
            temperature: divides the logits; 0 means greedy.
            top_k: sample among the k most likely tokens only (None: all).
            top_p: nucleus sampling threshold in (0, 1] (None: off).
            greedy: take the most likely token each time (sampler settings ignored).
            seed: the same seed gives the same text; None draws a fresh one.
            stop_token: a token (string or id) after which a sequence stops; it is not output.

        Returns:
            For one string, a list of `num_return_sequences` strings; for a list of prompts,
            one such list per prompt.

        Raises:
            ValueError: an empty prompt, a prompt longer than the context, `max_length` below
                a prompt's length or above the context, characters outside a character
                vocabulary, or sampler settings out of range (`top_p` outside (0, 1], ...).
        """
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        if any(not isinstance(t, str) for t in texts):
            raise ValueError("Prompts must be strings.")
        for i, t in enumerate(texts):
            if not t:
                raise ValueError(f"Prompt {i} is empty; give at least one character of text to continue.")
        ids = [self.tokenizer.encode(t) for t in texts]
        outputs = self.generate_ids(
            ids, max_length, num_return_sequences, temperature, top_k, top_p, greedy, seed, stop_token
        )
        decoded = [[self.tokenizer.decode(seq) for seq in row] for row in outputs]
        return decoded[0] if single else decoded


def generate(model, tokenizer, prompts, max_length: int, **kwargs):
    """One-off `TextGenerator(model, tokenizer).generate(prompts, max_length, **kwargs)`.

    Create a `TextGenerator` yourself to reuse its compilations across calls.
    """
    return TextGenerator(model, tokenizer).generate(prompts, max_length, **kwargs)


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
