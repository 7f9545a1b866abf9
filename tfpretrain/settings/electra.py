"""Settings of `tfpretrain electra`: the masked-LM command's corpus, model and optimiser flags,
plus the generator's size and the weight of replaced-token detection."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import at_least, positive, setting
from tfpretrain.settings.mlm import MlmRun


@dataclasses.dataclass(kw_only=True)
class ElectraRun(MlmRun):
    """Settings of `tfpretrain electra`: ELECTRA-style replaced-token detection on a BERT preset
    (the discriminator, whose encoder `finetune --init` reads), with a small masked-LM
    generator sharing its embeddings."""

    generator_layers: int = setting(
        1,
        check=positive,
        help="transformer blocks of the generator (same width as "
        "the discriminator, a quarter of its feed-forward)",
    )
    rtd_weight: float = setting(
        50.0,
        check=at_least(0.0),
        help="weight of the replaced-token-detection loss against the "
        "generator's masked-LM loss (the paper's 50)",
    )

    export: bool = setting(
        False,
        defines_run=False,
        help="not available: an ELECTRA run writes no SavedModel (fine-tune "
        "its encoder and export that)",
    )

    def check(self) -> None:
        super().check()
        if self.export:
            raise ValueError(
                "`tfpretrain electra` writes no SavedModel; drop --export and "
                "export a `tfpretrain finetune --init OUT` run instead."
            )
        if self.nsp:
            raise ValueError(
                "--nsp is a masked-LM option; `tfpretrain electra` has no next-sentence prediction."
            )
