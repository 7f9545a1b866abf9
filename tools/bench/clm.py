"""Causal-LM speed: tfpretrain's GPT vs KerasHub's GPT2Backbone vs a plain PyTorch GPT.

Training tokens per second at the `nano` and `shakespeare` shapes, each peer at its default and
its best settings (oneDNN on/off), measured in rounds that alternate between peers in one run
(every peer is a persistent worker process, since oneDNN is chosen when TensorFlow is
imported); model FLOP utilisation against the measured float32 matrix-multiply peak; and
generation new tokens per second (greedy and top-p, batch 1 and 8; each reading the median of 7
calls, in rounds alternating between the peers, median over rounds) against KerasHub's
`GPT2CausalLM.generate`.

Needs keras-hub and torch (CPU) next to tfpretrain's requirements, e.g. a separate venv:
`python tools/bench/clm.py [--rounds 3] [--presets nano shakespeare] [--json OUT]`
run from the repository root (it needs `TFPRETRAIN_DATA_DIR` for Tiny Shakespeare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from clock import machine, matmul_peak_flops, timed_fit

REPO = Path(__file__).resolve().parents[2]
SHAPES = {
    # preset: (layers, heads, width, block, batch, steps per timed round)
    "nano": (4, 4, 128, 64, 12, 50),
    "shakespeare": (6, 6, 384, 256, 8, 5),
}
PEERS = {
    # name: (framework, environment, description)
    # The CLI's defaults: --precision auto and --xla auto choose the path for this machine and
    # shape (the report prints which); the other tfpretrain peers name theirs.
    "tfpretrain": (
        "tfpretrain",
        {"TF_ENABLE_ONEDNN_OPTS": "1"},
        "--precision auto, --xla auto, oneDNN, steps_per_execution (CLI defaults)",
    ),
    "tfpretrain-fp32": (
        "tfpretrain",
        {"TF_ENABLE_ONEDNN_OPTS": "1", "BENCH_PRECISION": "fp32"},
        "--precision fp32 (--xla auto: XLA), oneDNN on",
    ),
    "tfpretrain-no-onednn": (
        "tfpretrain",
        {"TF_ENABLE_ONEDNN_OPTS": "0", "BENCH_PRECISION": "fp32"},
        "fp32, XLA, oneDNN off",
    ),
    "tfpretrain-graph": (
        "tfpretrain",
        {"TF_ENABLE_ONEDNN_OPTS": "1", "BENCH_PRECISION": "fp32", "BENCH_XLA": "off"},
        "fp32, graph mode, no XLA (--xla off), oneDNN on",
    ),
    "tfpretrain-bf16": (
        "tfpretrain",
        {"TF_ENABLE_ONEDNN_OPTS": "1", "BENCH_PRECISION": "bf16"},
        "--precision bf16 (--xla auto: no XLA on a CPU), oneDNN on",
    ),
    # XLA's own CPU options (read once per process from XLA_FLAGS; every tfpretrain peer also
    # gets the CLI's, `runtime_environment`, which keep these), float32 unless named.
    "tfpretrain-xla-onednn": (
        "tfpretrain",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "BENCH_PRECISION": "fp32",
            "XLA_FLAGS": "--xla_cpu_use_onednn=true",
        },
        "fp32, XLA with its oneDNN matmuls (--xla_cpu_use_onednn)",
    ),
    "tfpretrain-xla-xnnpack": (
        "tfpretrain",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "BENCH_PRECISION": "fp32",
            "XLA_FLAGS": "--xla_cpu_use_xnnpack=true",
        },
        "fp32, XLA with XNNPACK (--xla_cpu_use_xnnpack)",
    ),
    "tfpretrain-xla-serial": (
        "tfpretrain",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "BENCH_PRECISION": "fp32",
            "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
        },
        "fp32, XLA, one thread per op (--xla_cpu_multi_thread_eigen=false)",
    ),
    "tfpretrain-xla-no-scheduler": (
        "tfpretrain",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "BENCH_PRECISION": "fp32",
            "XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=false",
        },
        "fp32, XLA without the concurrency-optimised scheduler (the CLI's XLA default before)",
    ),
    "tfpretrain-bf16-xla-onednn": (
        "tfpretrain",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "BENCH_PRECISION": "bf16",
            "BENCH_XLA": "on",
            "XLA_FLAGS": "--xla_cpu_use_onednn=true",
        },
        "bf16, XLA with its oneDNN matmuls",
    ),
    # Keras' jit_compile="auto" turns XLA off on CPU-only machines; oneDNN is off by default on AMD.
    "kerashub-default": (
        "kerashub",
        {"TF_ENABLE_ONEDNN_OPTS": "0", "BENCH_JIT": "auto"},
        "Keras defaults: jit_compile='auto' (no XLA on CPU), oneDNN off",
    ),
    "kerashub-xla": (
        "kerashub",
        {"TF_ENABLE_ONEDNN_OPTS": "0", "BENCH_JIT": "1"},
        "XLA, oneDNN off",
    ),
    "kerashub-onednn": (
        "kerashub",
        {"TF_ENABLE_ONEDNN_OPTS": "1", "BENCH_JIT": "1"},
        "XLA + oneDNN",
    ),
    "torch-default": (
        "torch",
        {"BENCH_TORCH_MKLDNN": "1"},
        "eager, oneDNN (mkldnn) on: PyTorch default",
    ),
    "torch-no-mkldnn": ("torch", {"BENCH_TORCH_MKLDNN": "0"}, "eager, oneDNN (mkldnn) off"),
}
VOCAB_TEXT = "tinyshakespeare/input.txt"
GENERATION_REPEATS = 7


# ----------------------------------------------------------------------------- data


def shakespeare_chars():
    """Tiny Shakespeare as character ids and the vocabulary size (sorted characters, as the char
    tokenizer)."""
    import numpy as np

    data_dir = os.environ.get("TFPRETRAIN_DATA_DIR")
    if not data_dir:
        sys.exit("Set TFPRETRAIN_DATA_DIR to the folder holding tinyshakespeare/input.txt.")
    text = (Path(data_dir) / VOCAB_TEXT).read_text()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    return np.array([lookup[c] for c in text], dtype=np.int32), len(chars)


def _batches(tokens, block, batch, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    while True:
        offsets = rng.integers(0, len(tokens) - block - 1, size=batch)
        window = np.stack([tokens[o : o + block + 1] for o in offsets])
        yield window[:, :-1], window[:, 1:]


def flops_per_token(layers: int, width: int, block: int, vocab: int) -> float:
    """Training FLOPs per token: 6 N (matmul weights incl. the tied head) + 12 L T d (attention)."""
    params = layers * 12 * width * width + vocab * width
    return 6 * params + 12 * layers * block * width


# ----------------------------------------------------------------------------- workers


class KerasWorker:
    def __init__(self, framework: str, preset: str):
        import keras
        import tensorflow as tf

        self.tf, self.keras = tf, keras
        layers, heads, width, block, batch, steps = SHAPES[preset]
        tokens, vocab = shakespeare_chars()
        self.block, self.batch, self.steps, self.vocab = block, batch, steps, vocab
        # Both Keras peers read tfpretrain's in-graph pipeline (random windows gathered by tf.data,
        # as `tfpretrain clm` trains). A Python generator behind `from_generator` cost both about
        # 8 ms per nano step in GIL contention with the training loop, which measured the bridge
        # from Python, not the model; PyTorch draws its numpy batches in its own loop.
        from tfpretrain.data.lm import lm_train_dataset

        self.data = lm_train_dataset(tokens, block, batch, seed=0)
        self.lms = {}  # KerasHub's causal LMs for generation, one per sampler
        self.path = {}  # the execution path tfpretrain chose (precision, XLA) and why
        if framework == "tfpretrain":
            from tfpretrain.distribute import precision_reason, set_precision, xla_decision
            from tfpretrain.models.gpt import GPTConfig, build_gpt
            from tfpretrain.recipes.clm import CLMRun, compile_gpt

            # As `tfpretrain clm` does: the precision for this machine and width, then XLA.
            precision = os.environ.get("BENCH_PRECISION", "auto")
            policy = set_precision(precision, width=width)
            xla, xla_reason = xla_decision(os.environ.get("BENCH_XLA", "auto"))
            self.path = {
                "policy": policy,
                "precision_reason": precision_reason(),
                "xla": xla,
                "xla_reason": xla_reason,
            }

            self.model = build_gpt(
                GPTConfig(
                    vocabulary_size=vocab,
                    sequence_length=block,
                    num_layers=layers,
                    num_heads=heads,
                    hidden_dim=width,
                )
            )
            # 10 warm-up steps of the 100,000 below.
            cfg = CLMRun(
                corpus="",
                out_dir="",
                learning_rate=1e-3,
                warmup_fraction=1e-4,
                precision=precision,
                xla=os.environ.get("BENCH_XLA", "auto"),
            )
            compile_gpt(self.model, cfg, total_steps=100_000, steps_per_execution=steps)
        else:
            import keras_hub

            backbone = keras_hub.models.GPT2Backbone(
                vocabulary_size=vocab,
                num_layers=layers,
                num_heads=heads,
                hidden_dim=width,
                intermediate_dim=4 * width,
                dropout=0.0,
                max_sequence_length=block,
            )
            self.backbone = backbone
            ids = keras.Input((None,), dtype="int32")
            hidden = backbone({"token_ids": ids, "padding_mask": keras.ops.ones_like(ids)})
            logits = backbone.token_embedding(hidden, reverse=True)
            self.model = keras.Model(ids, logits)
            self.model.compile(
                optimizer=keras.optimizers.AdamW(
                    1e-3, weight_decay=0.1, beta_2=0.99, global_clipnorm=1.0
                ),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=True if os.environ.get("BENCH_JIT") == "1" else "auto",
            )
        self.framework = framework
        self.train(self.steps)  # compile

    def train(self, steps: int) -> float:
        return timed_fit(self.model, self.data, steps)

    def peak(self) -> float:
        return matmul_peak_flops()

    def generate(self, mode: str, batch: int, prompt_length: int = 8) -> tuple[float, int]:
        import numpy as np

        tokens, _ = shakespeare_chars()
        prompts = [tokens[i * 1000 : i * 1000 + prompt_length] for i in range(batch)]
        new_tokens = batch * (self.block - prompt_length)
        if self.framework == "tfpretrain":
            if not hasattr(self, "generator"):
                from tfpretrain.models.gpt import TextGenerator
                from tfpretrain.text import CharTokenizer

                self.generator = TextGenerator(
                    self.model, CharTokenizer([chr(33 + i) for i in range(self.vocab)])
                )
            kwargs = dict(greedy=True) if mode == "greedy" else dict(top_p=0.9, seed=0)

            def run():
                self.generator.generate_ids(prompts, max_length=self.block, **kwargs)
        else:
            import keras_hub

            if (
                mode not in self.lms
            ):  # one causal LM per sampler, so that alternating rounds reuse them
                lm = keras_hub.models.GPT2CausalLM(backbone=self.backbone, preprocessor=None)
                sampler = (
                    "greedy" if mode == "greedy" else keras_hub.samplers.TopPSampler(p=0.9, seed=0)
                )
                jit = True if os.environ.get("BENCH_JIT") == "1" else "auto"
                lm.compile(sampler=sampler, jit_compile=jit)
                self.lms[mode] = lm
            lm = self.lms[mode]
            ids = np.zeros((batch, self.block), np.int32)
            mask = np.zeros((batch, self.block), bool)
            for r, p in enumerate(prompts):
                ids[r, : len(p)] = p
                mask[r, : len(p)] = True

            def run():
                lm.generate({"token_ids": ids, "padding_mask": mask}, stop_token_ids=None)

        run()  # compile
        times = []
        for _ in range(GENERATION_REPEATS):  # one call lasts tens of milliseconds: take a median
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return statistics.median(times), new_tokens


def torch_gpt(
    layers: int,
    heads: int,
    width: int,
    block: int,
    vocab: int,
    bias: bool = True,
    scaled_residual_init: bool = True,
):
    """A plain PyTorch GPT with nanoGPT's layout and initialisation (tied head, pre-norm, GELU).

    Weights N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 layers)) unless
    `scaled_residual_init` is off, biases zero: what nanoGPT does, and what tfpretrain's
    `build_gpt` does with the same setting, so the quality reference compares recipes.
    """
    import math

    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width, bias=bias), nn.LayerNorm(width, bias=bias)
            self.qkv, self.proj = (
                nn.Linear(width, 3 * width, bias=bias),
                nn.Linear(width, width, bias=bias),
            )
            self.fc, self.out = (
                nn.Linear(width, 4 * width, bias=bias),
                nn.Linear(4 * width, width, bias=bias),
            )

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(block, width)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln = nn.LayerNorm(width, bias=bias)

        def forward(self, ids):
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            return self.ln(x) @ self.tok.weight.T  # tied head

    model = GPT()
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            residual = scaled_residual_init and name.endswith((".proj", ".out"))
            nn.init.normal_(module.weight, 0.0, 0.02 / math.sqrt(2 * layers) if residual else 0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    return model


def torch_adamw(model, learning_rate: float = 1e-3, weight_decay: float = 0.1):
    """nanoGPT's AdamW: decay (0.1 by default) on matrices and embeddings only, betas (0.9,
    0.99)."""
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=learning_rate,
        betas=(0.9, 0.99),
    )


class TorchWorker:
    def __init__(self, preset: str):
        import torch

        torch.backends.mkldnn.enabled = os.environ.get("BENCH_TORCH_MKLDNN", "1") == "1"
        layers, heads, width, block, batch, steps = SHAPES[preset]
        tokens, vocab = shakespeare_chars()
        self.torch, self.steps = torch, steps
        self.batches = _batches(tokens, block, batch)
        self.model = torch_gpt(layers, heads, width, block, vocab)
        self.opt = torch_adamw(self.model)
        self.train(2)

    def train(self, steps: int) -> float:
        torch = self.torch
        start = time.perf_counter()
        for _ in range(steps):
            x, y = next(self.batches)
            x, y = torch.from_numpy(x).long(), torch.from_numpy(y).long()
            logits = self.model(x)
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
        return time.perf_counter() - start

    def peak(self) -> float:
        torch = self.torch
        a = torch.randn(2048, 2048)
        a @ a
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
        return 2 * 2048**3 / best


def worker_main(framework: str, preset: str) -> None:
    worker = TorchWorker(preset) if framework == "torch" else KerasWorker(framework, preset)
    # Each worker's own oneDNN state: the peers run under different environments.
    about = machine() if framework != "torch" else {}
    path = getattr(worker, "path", {})
    print(json.dumps({"ready": True, "machine": about, "path": path}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "train":
            result = {"seconds": worker.train(worker.steps), "steps": worker.steps}
        elif command[0] == "peak":
            result = {"flops": worker.peak()}
        elif command[0] == "generate":
            seconds, new = worker.generate(command[1], int(command[2]))
            result = {"seconds": seconds, "new_tokens": new}
        else:
            result = {"error": f"unknown command {command}"}
        print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver


class Peer:
    def __init__(self, name: str, preset: str):
        framework, env, self.description = PEERS[name]
        self.name = name
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path, **env)
        if framework == "tfpretrain":  # what the command line sets before TensorFlow starts
            from tfpretrain.cli.main import runtime_environment

            environment.update(runtime_environment(environment))
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", framework, "--preset", preset],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
            cwd=REPO,
        )

    def ask(self, command: str) -> dict:
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.name} died")
            if line.startswith("{"):
                return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def bench_preset(preset: str, rounds: int, generation: bool, names=tuple(PEERS)) -> dict:
    layers, heads, width, block, batch, steps = SHAPES[preset]
    _, vocab = shakespeare_chars()
    peers = []
    machines, paths = {}, {}
    for name in names:  # start one at a time: compiling in parallel would only slow each down
        peer = Peer(name, preset)
        ready = peer.ask("")
        machines[name], paths[name] = ready.get("machine", {}), ready.get("path", {})
        peers.append(peer)
    times: dict[str, list[float]] = {p.name: [] for p in peers}
    for r in range(rounds):
        order = peers if r % 2 == 0 else peers[::-1]
        for peer in order:
            times[peer.name].append(peer.ask("train")["seconds"] / steps)
        print(
            f"[{preset}] round {r + 1}: "
            + ", ".join(f"{n} {1000 * t[-1]:.1f} ms" for n, t in times.items()),
            flush=True,
        )
    peak = max(p.ask("peak")["flops"] for p in peers)
    fpt = flops_per_token(layers, width, block, vocab)
    result = {
        "shape": dict(
            layers=layers, heads=heads, width=width, block=block, batch=batch, vocab=vocab
        ),
        "matmul_peak_gflops": peak / 1e9,
        "peers": {},
    }
    result["machine"] = next((m for m in machines.values() if m), {})
    for peer in peers:
        step = statistics.median(times[peer.name])
        tokens_per_s = batch * block / step
        result["peers"][peer.name] = {
            "settings": peer.description,
            "path": paths[peer.name],
            "onednn": machines[peer.name].get("onednn"),
            "ms_per_step": 1000 * step,
            "ms_per_step_all": [1000 * t for t in times[peer.name]],
            "tokens_per_s": tokens_per_s,
            "mfu": tokens_per_s * fpt / peak,
        }
    if generation:
        # In rounds that alternate between the peers, as training is, so that a slow spell of the
        # machine does not fall on one peer's readings only; each figure is the median over rounds.
        rates: dict[str, dict[str, list[float]]] = {}
        generating = [p for p in peers if p.name.startswith(("tfpretrain", "kerashub"))]
        for r in range(rounds):
            for mode in ("greedy", "top_p"):
                for gen_batch in (1, 8):
                    key = f"{mode}_b{gen_batch}"
                    for peer in generating if r % 2 == 0 else generating[::-1]:
                        answer = peer.ask(f"generate {mode} {gen_batch}")
                        rates.setdefault(peer.name, {}).setdefault(key, []).append(
                            answer["new_tokens"] / answer["seconds"]
                        )
                    print(
                        f"[{preset}] generate round {r + 1} {key}: "
                        + ", ".join(
                            f"{name} {by_key[key][-1]:.0f}" for name, by_key in rates.items()
                        )
                        + " new tokens/s",
                        flush=True,
                    )
        result["generation"] = {
            name: {key: statistics.median(v) for key, v in by_key.items()}
            for name, by_key in rates.items()
        }
        result["generation_all_rounds"] = rates
    for peer in peers:
        peer.close()
    return result


def report(preset: str, result: dict) -> None:
    peers = result["peers"]
    print(
        f"\n## {preset}: {result['shape']}, matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s"
    )
    about = result.get("machine", {})
    if about:
        print(f"machine: {about['cpu']} ({about['vendor']}; {', '.join(about['isa'])})")
    defaults = peers.get("tfpretrain", {})
    if defaults.get("path"):  # the path the CLI's defaults chose here, and why
        path, onednn = defaults["path"], "on" if defaults.get("onednn") else "off"
        print(
            f"tfpretrain (defaults) trains {path['policy']} ({path['precision_reason']}), "
            f"XLA {'on' if path['xla'] else 'off'} ({path['xla_reason']}), oneDNN {onednn}"
        )
    print(f"{'peer':24s} {'ms/step':>9s} {'tokens/s':>10s} {'MFU':>6s}  path; settings")
    for name, r in peers.items():
        onednn = {True: "oneDNN on", False: "oneDNN off"}.get(r.get("onednn"), "")
        path = r.get("path") or {}
        chosen = f"{path['policy']}, XLA {'on' if path['xla'] else 'off'}; " if path else ""
        print(
            f"{name:24s} {r['ms_per_step']:9.1f} {r['tokens_per_s']:10.0f} {100 * r['mfu']:5.1f}%  "
            f"{chosen}{r['settings']} {onednn}"
        )
    if "tfpretrain" not in peers:
        return
    ours = peers["tfpretrain"]["tokens_per_s"]
    for name in peers:
        if name != "tfpretrain":
            print(f"tfpretrain vs {name}: {ours / peers[name]['tokens_per_s']:.2f}x")
    others = [n for n in peers if not n.startswith("tfpretrain")]
    if others:
        best = max(others, key=lambda n: peers[n]["tokens_per_s"])
        print(
            f"tfpretrain vs the fastest peer ({best}): "
            f"{ours / peers[best]['tokens_per_s']:.2f}x (target >= 1.0x)"
        )
    gen = result.get("generation", {})
    kerashub = [n for n in gen if n.startswith("kerashub")]
    if "tfpretrain" in gen and kerashub:
        for key in ("greedy_b1", "greedy_b8", "top_p_b1", "top_p_b8"):
            best = max(kerashub, key=lambda n: gen[n][key])
            print(
                f"generate {key}: tfpretrain {gen['tfpretrain'][key]:.0f} new tokens/s, {best} "
                f"{gen[best][key]:.0f} "
                f"({gen['tfpretrain'][key] / gen[best][key]:.1f}x, target >= 2x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="nano", help=argparse.SUPPRESS)
    parser.add_argument(
        "--presets", nargs="+", default=["nano", "shakespeare"], choices=list(SHAPES)
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds per peer")
    parser.add_argument(
        "--peers", nargs="+", default=list(PEERS), choices=list(PEERS), help="peers to run"
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.preset)
        return
    results = {}
    for preset in args.presets:
        results[preset] = bench_preset(
            preset, args.rounds, generation=preset == "nano", names=args.peers
        )
        report(preset, results[preset])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
