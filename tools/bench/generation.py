"""Greedy generation at gpt2-small's shape: tfpretrain's `TextGenerator` vs KerasHub's
`GPT2CausalLM.generate`, the same random weights in both.

Writes a random-weight `GPT2LMHeadModel` (gpt2's shape) with transformers, loads it with
`models.gpt.from_pretrained` and copies the same arrays into a KerasHub `GPT2Backbone`
(the names of KerasHub's own converter, `utils/transformers/convert_gpt2.py`). Each round
decodes `--new` tokens greedily after a random prompt in both libraries (alternating which goes
first), after one warm-up call that compiles; prints the median new tokens/s and the ratio.
Needs `torch`, `transformers` and `keras-hub` (benchmark-only installs).

Usage:

    python tools/bench/generation.py [--folder DIR] [--batch 1 8] [--new 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def keras_hub_model(folder: Path, config: dict):
    import keras_hub
    from safetensors.numpy import load_file

    d = config["n_embd"]
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["n_layer"],
        num_heads=config["n_head"],
        hidden_dim=d,
        intermediate_dim=4 * d,
        dropout=0.0,
        max_sequence_length=config["n_positions"],
    )
    w = {
        k.removeprefix("transformer."): v
        for k, v in load_file(folder / "model.safetensors").items()
    }

    def put(variable, array):
        variable.assign(np.reshape(array, variable.shape))

    put(backbone.token_embedding.embeddings, w["wte.weight"])
    put(backbone.position_embedding.position_embeddings, w["wpe.weight"])
    for i, layer in enumerate(backbone.transformer_layers):
        p, att = f"h.{i}.", layer._self_attention_layer
        qkv, qkv_bias = w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"]
        for j, dense in enumerate((att.query_dense, att.key_dense, att.value_dense)):
            put(dense.kernel, qkv[:, j * d : (j + 1) * d])
            put(dense.bias, qkv_bias[j * d : (j + 1) * d])
        pairs = {
            att.output_dense: "attn.c_proj",
            layer._feedforward_intermediate_dense: "mlp.c_fc",
            layer._feedforward_output_dense: "mlp.c_proj",
        }
        for dense, name in pairs.items():
            put(dense.kernel, w[p + name + ".weight"])
            put(dense.bias, w[p + name + ".bias"])
        for norm, name in (
            (layer._self_attention_layer_norm, "ln_1"),
            (layer._feedforward_layer_norm, "ln_2"),
        ):
            put(norm.gamma, w[p + name + ".weight"])
            put(norm.beta, w[p + name + ".bias"])
    put(backbone.layer_norm.gamma, w["ln_f.weight"])
    put(backbone.layer_norm.beta, w["ln_f.bias"])
    causal_lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    causal_lm.compile(sampler="greedy")
    return causal_lm


class _Ids:
    """Stands in for a tokenizer: the benchmark passes token ids."""

    def __init__(self, vocabulary_size: int):
        self.vocabulary_size = vocabulary_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="an existing GPT-2 folder (default: write one)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import json

    from tfpretrain.models import gpt

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "gpt2-random"
        if args.folder is None:
            from checkpoints import write_checkpoint

            write_checkpoint(folder)
        config = json.loads((folder / "config.json").read_text())
        ours = gpt.TextGenerator(gpt.from_pretrained(folder), _Ids(config["vocab_size"]))
        theirs = keras_hub_model(folder, config)

    total = args.prompt + args.new
    rng = np.random.default_rng(0)
    print(f"{'batch':>5} {'tfpretrain tok/s':>17} {'KerasHub tok/s':>15} {'ratio':>6}  agree")
    for batch in args.batch:
        prompts = rng.integers(0, config["vocab_size"], (batch, args.prompt)).astype("int32")
        token_ids = np.zeros((batch, total), "int32")
        token_ids[:, : args.prompt] = prompts
        mask = np.zeros((batch, total), bool)
        mask[:, : args.prompt] = True

        def run_ours(prompts=prompts):
            out = ours.generate_ids(list(prompts), total, greedy=True)
            return np.stack([row[0] for row in out])

        def run_theirs(token_ids=token_ids, mask=mask):
            out = theirs.generate(
                {"token_ids": token_ids, "padding_mask": mask}, stop_token_ids=None
            )
            return np.asarray(out["token_ids"])

        a, b = run_ours(), run_theirs()  # compile
        agree = np.mean(a[:, -args.new :] == b[:, -args.new :])
        times = {"ours": [], "theirs": []}
        for r in range(args.rounds):
            order = (("ours", run_ours), ("theirs", run_theirs))
            for name, fn in order if r % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        rate = {k: batch * args.new / statistics.median(v) for k, v in times.items()}
        print(
            f"{batch:>5} {rate['ours']:>17.1f} {rate['theirs']:>15.1f} "
            f"{rate['ours'] / rate['theirs']:>6.2f}  {agree:.0%}"
        )


if __name__ == "__main__":
    main()
