"""Settings of `tfpretrain generate`."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import Settings, in_range, non_negative, positive, setting


@dataclasses.dataclass(kw_only=True)
class GenerateRun(Settings):
    """Settings of `tfpretrain generate`: decoding with a trained or downloaded GPT or T5."""

    model: str = setting(
        help="the --out folder of a `tfpretrain clm`, `seq2seq` or text-to-text "
        "`finetune` run, or a local Hugging Face GPT-2 or T5 folder"
    )
    prompt: str = setting(help="text to continue (GPT) or the input text (T5)")
    max_length: int | None = setting(
        None,
        check=positive,
        help="tokens per completion, GPT: prompt included (default: the model's context); "
        "T5: output tokens (default: the decoder's context less one)",
    )
    num_return_sequences: int = setting(1, check=positive, help="completions to print")
    num_beams: int = setting(
        1, check=positive, help="beam search with this many beams (1: sample or greedy)"
    )
    temperature: float = setting(1.0, check=non_negative, help="sampling temperature (0: greedy)")
    top_k: int | None = setting(None, check=positive, help="sample among the k most likely tokens")
    top_p: float | None = setting(
        None, check=in_range(0, 1, low_open=True), help="nucleus sampling threshold in (0, 1]"
    )
    greedy: bool = setting(False, help="always take the most likely token")
    stop: str | None = setting(None, help="stop a completion at this token (e.g. a newline)")
    seed: int | None = setting(None, help="random seed (same seed, same text)")
