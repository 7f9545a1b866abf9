r"""Score fine-tuned encoder-decoders again on their task's dev set, e.g. with beam search.

`tfpretrain finetune` scores its model once, with the decoding it was given (`--num-beams`);
this decodes the dev set of `--task` with each model directory it is given and each beam
count, decoding as many new tokens as the run did (`max_new_tokens` in its `metrics.json`), and
prints one JSON line per pair (`cer`, `exact_match`, ...: the same scores)::

    python tools/score_seq2seq.py runs/punct_pre runs/punct_scratch --task punctuation \
        --num-beams 1 4
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfpretrain.recipes.seq2seq import load_seq2seq  # noqa: E402
from tfpretrain.recipes.seq2seq_finetune import score_dev, text_to_text_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="directories written by `tfpretrain finetune`")
    parser.add_argument("--task", default="punctuation", help="as `tfpretrain finetune --task`")
    parser.add_argument("--num-beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--limit-eval", type=int, default=None, help="score the first N dev examples only"
    )
    args = parser.parse_args()

    task = text_to_text_task(args.task)
    dev_in, dev_out = (part[: args.limit_eval] for part in task["dev"])
    for directory in args.models:
        model, config, tokenizer = load_seq2seq(directory)
        # As many new tokens as the fine-tuning run decoded (its metrics.json records them).
        max_new = json.loads((Path(directory) / "metrics.json").read_text()).get("max_new_tokens")
        if max_new is None:
            raise SystemExit(
                f"{directory}/metrics.json does not say how many new tokens the run decoded "
                "(`max_new_tokens`); re-run `tfpretrain finetune` with this version to score it."
            )
        for beams in args.num_beams:
            _, scores = score_dev(
                model, config, tokenizer, task["name"], (dev_in, dev_out), max_new, beams
            )
            print(json.dumps({"model": directory, "num_beams": beams, **scores}), flush=True)


if __name__ == "__main__":
    main()
