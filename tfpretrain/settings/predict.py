"""Settings of `tfpretrain predict`: run an exported model on texts or images."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import Settings, in_range, non_negative, positive, setting


@dataclasses.dataclass(kw_only=True)
class PredictRun(Settings):
    """Settings of `tfpretrain predict`. Only `model` and `input` are needed; the generation
    settings apply to GPT and T5 exports."""

    model: str = setting(
        metavar="RUN_OR_EXPORT",
        help="a run directory (its saved_model/), a SavedModel base folder (its newest "
        "version) or one version folder",
    )
    input: str = setting(
        metavar="FILE|-",
        help="text models: a file of texts, one per line (sentence-pair classifiers: the two "
        "texts of a pair on one line, separated by a tab); image models: a PNG/JPEG file, an "
        ".npz of images, or a file of image paths, one per line; '-' reads stdin",
    )
    signature: str | None = setting(
        None,
        help="the signature to run (default: the kind's, e.g. serve, reconstruct, encode, "
        "features, generate, fill_mask)",
    )
    batch_size: int = setting(32, check=positive, help="inputs per call of the model")
    max_length: int = setting(
        64,
        check=positive,
        help="generation: tokens per output (GPT: the prompt included; at most the context)",
    )
    temperature: float = setting(0.0, check=non_negative, help="generation: 0 is greedy")
    top_k: int = setting(
        0,
        check=non_negative,
        help="generation: sample among the k most "
        "likely tokens (0: off); fill_mask: tokens "
        "per [MASK] (0: the export's default)",
    )
    top_p: float = setting(
        1.0,
        check=in_range(0.0, 1.0, low_open=True),
        help="generation: nucleus sampling mass (1: off)",
    )
    num_return_sequences: int = setting(
        1, check=positive, help="GPT generation: outputs per prompt"
    )
    length_penalty: float = setting(1.0, help="T5 beam_search: length penalty")
