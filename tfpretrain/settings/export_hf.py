"""Settings of `tfpretrain export-hf`."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import Settings, setting


@dataclasses.dataclass(kw_only=True)
class ExportHFRun(Settings):
    """Settings of `tfpretrain export-hf`: a run directory written as a Hugging Face folder."""

    model: str = setting(
        help="the --out folder of a `tfpretrain clm`, `seq2seq`, `mlm` or `finetune` run"
    )
    out: str = setting(help="the folder to write (config.json, model.safetensors, tokenizer files)")
