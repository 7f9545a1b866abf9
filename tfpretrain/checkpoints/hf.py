"""Hugging Face checkpoint folders: finding them, reading and writing tensors, mapping weights.

A folder holds `config.json` and the weights as `model.safetensors` (or shards listed in
`model.safetensors.index.json`), or as PyTorch pickles (`pytorch_model.bin`, which needs
PyTorch to read). Safetensors files are read here without PyTorch: memory-mapped, each tensor
converted to float32 (from float16 or bfloat16 too) only when it is assigned, so loading needs
little memory beyond the model's own weights.

A family module (`gpt2`, `t5`, `bert`) describes a model as a list of `Slot`s: one Keras
variable, the name of its Hugging Face tensor and the layout change between the two, which
serves loading (`assign`) and saving (`export`) alike.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"

# A Hugging Face hub id: `name` or `owner/name`, e.g. gpt2, google-t5/t5-small.
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def checkpoint_folder(path) -> Path:
    """`path` as an existing folder; a hub name such as `gpt2` gets an error on how to fetch it.

    Args:
        path: a local folder holding `config.json` and the weights.

    Raises:
        FileNotFoundError: nothing is there (with how to download a hub model, when `path`
            looks like its name: tfpretrain itself never downloads).
        NotADirectoryError: `path` is a file.

    Example:

    >>> checkpoint_folder("bert-base-uncased")  # doctest: +SKIP
    FileNotFoundError: 'bert-base-uncased' is not a folder on this machine ...
    """
    folder = Path(path)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise NotADirectoryError(
            f"{folder} is a file; give the checkpoint folder that holds {CONFIG} and the weights."
        )
    text = str(path)
    if _HUB_NAME.match(text) and not text.startswith("."):
        raise FileNotFoundError(
            f"{text!r} is not a folder on this machine. tfpretrain reads Hugging Face checkpoints "
            "from local folders only and downloads nothing. Fetch the model first, e.g. "
            f"`hf download {text} --local-dir ./{text.split('/')[-1]}` (pip install "
            f"huggingface_hub) or `git clone https://huggingface.co/{text}`, then pass that folder."
        )
    raise FileNotFoundError(f"No checkpoint folder at {folder}.")


def read_config(folder) -> dict:
    """The parsed `config.json` of a checkpoint folder."""
    folder = checkpoint_folder(folder)
    file = folder / CONFIG
    if not file.is_file():
        raise FileNotFoundError(
            f"{folder} has no {CONFIG}; give a Hugging Face checkpoint folder (config.json and "
            f"{SAFETENSORS} or {TORCH})."
        )
    try:
        config = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"{file} must hold a JSON object; got {type(config).__name__}.")
    return config


# safetensors dtype names -> NumPy dtypes; BF16 is read as uint16 and widened by hand.
_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _to_float32(array: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return np.asarray(array, dtype=np.float32)


class Tensors(Mapping):
    """The tensors of a checkpoint folder by name, read on access as float32 NumPy arrays.

    `shape(name)` and `file(name)` need no read; error messages name the file a tensor is in.

    Args:
        folder: the checkpoint folder.

    Example:

    >>> tensors = Tensors("my-gpt2")  # doctest: +SKIP
    >>> tensors.shape("transformer.wte.weight")  # doctest: +SKIP
    (50257, 768)
    """

    def __init__(self, folder):
        self.folder = checkpoint_folder(folder)
        # name -> (file, reader, shape, the name in the file)
        self._entries: dict[str, tuple[str, Callable[[], np.ndarray], tuple, str]] = {}
        # name -> drops the tensor's pages of a memory-mapped file from this process' memory
        self._releases: dict[str, Callable[[], None]] = {}
        single, index = self.folder / SAFETENSORS, self.folder / SAFETENSORS_INDEX
        torch_single, torch_index = self.folder / TORCH, self.folder / TORCH_INDEX
        if single.is_file():
            self._add_safetensors(single)
        elif index.is_file():
            for shard in self._shards(index):
                self._add_safetensors(shard)
        elif torch_single.is_file():
            self._add_torch(torch_single)
        elif torch_index.is_file():
            for shard in self._shards(torch_index):
                self._add_torch(shard)
        else:
            raise FileNotFoundError(
                f"{self.folder} has neither {SAFETENSORS} nor {TORCH} (nor their sharded "
                "index files)."
            )

    def _shards(self, index: Path) -> list[Path]:
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{index} is not a weight index (no 'weight_map'): {err}") from err
        shards = [self.folder / name for name in dict.fromkeys(weight_map.values())]
        absent = [s.name for s in shards if not s.is_file()]
        if absent:
            raise FileNotFoundError(f"{index} lists shards that are not in {self.folder}: {absent}")
        return shards

    def _add_safetensors(self, file: Path) -> None:
        with open(file, "rb") as f:
            header_size = int.from_bytes(f.read(8), "little")
            try:
                header = json.loads(f.read(header_size))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{file} is not a safetensors file: {err}") from err
        with open(file, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        data = np.frombuffer(mapped, np.uint8, offset=8 + header_size)
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] not in _DTYPES:
                raise ValueError(f"{file}: tensor {name} has unreadable dtype {info['dtype']}.")
            start, end = info["data_offsets"]
            shape, dtype = tuple(info["shape"]), info["dtype"]

            def read(start=start, end=end, shape=shape, dtype=dtype):
                raw = data[start:end].view(_DTYPES[dtype]).reshape(shape)
                return _to_float32(raw, dtype)

            def release(start=8 + header_size + start, end=8 + header_size + end):
                first = start - start % mmap.PAGESIZE
                if hasattr(mmap, "MADV_DONTNEED") and end > first:
                    mapped.madvise(mmap.MADV_DONTNEED, first, end - first)

            self._entries[name] = (file.name, read, shape, name)
            self._releases[name] = release

    def _add_torch(self, file: Path) -> None:
        try:
            import torch
        except ImportError as err:
            raise ImportError(
                f"{file} is a PyTorch pickle and needs PyTorch to read (pip install torch), "
                f"or convert the checkpoint to {SAFETENSORS}."
            ) from err
        state = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
        for name, value in state.items():
            self._entries[name] = (
                file.name,
                lambda v=value: v.float().numpy(),
                tuple(value.shape),
                name,
            )

    def __getitem__(self, name: str) -> np.ndarray:
        return self._entries[name][1]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def release(self, name: str) -> None:
        """Lets the memory the tensor's file pages take go (its copy is in the model now); a
        later read maps them in again. Nothing to do for a tensor that is not memory-mapped."""
        self._releases.get(name, lambda: None)()

    def shape(self, name: str) -> tuple:
        return self._entries[name][2]

    def file(self, name: str) -> str:
        return self._entries[name][0]

    def source(self, name: str) -> str:
        """`file: name` as the tensor is called in its file, for messages."""
        return f"{self._entries[name][0]}: {self._entries[name][3]}"

    def rename(self, fn: Callable[[str], str]) -> None:
        """Renames every tensor with `fn` (e.g. to drop a `transformer.` prefix)."""
        self._entries = {fn(name): entry for name, entry in self._entries.items()}
        self._releases = {fn(name): release for name, release in self._releases.items()}

    def put(self, name: str, value: np.ndarray, derived_from: str, part: str) -> None:
        """Adds `part` of the tensor `derived_from` (e.g. the queries of GPT-2's fused q/k/v)."""
        file, _, _, original = self._entries[derived_from]
        self._entries[name] = (file, lambda: value, tuple(value.shape), f"{original}[{part}]")
        if derived_from in self._releases:
            self._releases[name] = self._releases[derived_from]


# Layouts: (Hugging Face array -> Keras variable, Keras variable -> Hugging Face array).
Layout = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
SAME: Layout = (lambda a: a, lambda a: a)
# torch.nn.Linear keeps [out, in]; Keras Dense [in, out].
LINEAR: Layout = (lambda a: a.T, lambda a: a.T)


def rows_from(offset: int) -> Layout:
    """A table whose first `offset` rows the model does not use (RoBERTa's positions start at
    `pad_token_id + 1`); they are written back as zeros."""
    return (
        lambda a: a[offset:],
        lambda a: np.concatenate([np.zeros((offset,) + a.shape[1:], a.dtype), a]),
    )


def heads_in(heads: int, head_dim: int, linear: bool = True) -> Layout:
    """A query/key/value projection: Linear `[H*K, D]` (Conv1D `[D, H*K]`) <-> `[D, H, K]`."""
    if linear:
        return (lambda a: a.T.reshape(-1, heads, head_dim), lambda a: a.reshape(a.shape[0], -1).T)
    return (lambda a: a.reshape(-1, heads, head_dim), lambda a: a.reshape(a.shape[0], -1))


def heads_bias(heads: int, head_dim: int) -> Layout:
    return (lambda a: a.reshape(heads, head_dim), lambda a: a.reshape(-1))


def heads_out(heads: int, head_dim: int, linear: bool = True) -> Layout:
    """The attention output projection: Linear `[D, H*K]` (Conv1D `[H*K, D]`) <-> `[H, K, D]`."""
    if linear:
        return (
            lambda a: a.T.reshape(heads, head_dim, -1),
            lambda a: a.reshape(heads * head_dim, -1).T,
        )
    return (lambda a: a.reshape(heads, head_dim, -1), lambda a: a.reshape(heads * head_dim, -1))


@dataclasses.dataclass
class Slot:
    """One Keras variable and the Hugging Face tensor it corresponds to.

    Args:
        variable: the Keras variable.
        name: the tensor's name in the Hugging Face state dict.
        layout: how the arrays are laid out (`SAME`, `LINEAR`, `heads_in(...)`, ...).
        vocabulary: for a table with one row per token, the model's vocabulary size, so that a
            checkpoint with another row count is reported as a vocabulary mismatch.
        optional: a checkpoint without the tensor keeps the variable as it is (e.g. BERT's
            pooler, which `BertForMaskedLM` files lack).
    """

    variable: object
    name: str
    layout: Layout = SAME
    vocabulary: int | None = None
    optional: bool = False


def assign(slots: list[Slot], tensors: Tensors, what: str) -> None:
    """Copies `tensors` into the slots' variables; every problem is reported in one error.

    Args:
        slots: the model's weight map.
        tensors: the checkpoint's tensors.
        what: the model's description for messages, e.g. "GPT-2".

    Raises:
        ValueError: tensors missing, or of the wrong shape (each named with its file), or a
            vocabulary table whose size disagrees with `config.json`.
    """
    missing, mismatched, vocabulary, values = [], [], [], []
    for slot in slots:
        if slot.name not in tensors:
            if not slot.optional:
                missing.append(slot.name)
            continue
        shape, target = tuple(tensors.shape(slot.name)), tuple(slot.variable.shape)
        source = tensors.source(slot.name)
        if slot.vocabulary is not None and shape and shape[0] != slot.vocabulary:
            vocabulary.append(
                f"{source} has {shape[0]} rows but config.json's vocab_size is {slot.vocabulary}"
            )
            continue
        try:
            value = slot.layout[0](tensors[slot.name])
        except ValueError:  # a reshape that cannot be done
            value = None
        if value is None or tuple(value.shape) != target:
            mismatched.append(f"{source}: checkpoint {shape}, model {target}")
            continue
        values.append((slot.variable, value, slot.name))
    if missing or mismatched or vocabulary:
        problems = []
        if vocabulary:
            problems.append("a vocabulary size mismatch (" + "; ".join(vocabulary) + ")")
        if missing:
            more = " ..." if len(missing) > 8 else ""
            problems.append(f"missing tensors ({len(missing)}): {missing[:8]}{more}")
        if mismatched:
            problems.append(f"tensors with the wrong shape ({len(mismatched)}): {mismatched[:8]}")
        raise ValueError(
            f"The checkpoint in {tensors.folder} does not fit this {what} model: "
            + "; ".join(problems)
            + ". Check that config.json belongs to the weights file."
        )
    # A float32 tensor is still a view of the memory-mapped file here: the assignment is its
    # one copy, after which the file's pages are let go (the peak holds one tensor, not all).
    for variable, value, name in values:
        variable.assign(value.astype(variable.dtype, copy=False))
        tensors.release(name)


def export(slots: list[Slot]) -> dict[str, np.ndarray]:
    """The Hugging Face tensors of the slots' variables, as contiguous float32 arrays."""
    tensors = {}
    for slot in slots:
        value = slot.layout[1](np.asarray(slot.variable.numpy(), np.float32))
        tensors[slot.name] = np.ascontiguousarray(value)
    return tensors


def write_folder(path, config: dict, tensors: dict[str, np.ndarray]) -> Path:
    """Writes `config.json` and `model.safetensors` into `path` (created if needed).

    Args:
        path: the folder to write.
        config: the Hugging Face config dict (`model_type`, `architectures`, sizes...).
        tensors: the state dict, name -> array.

    Returns:
        The folder.
    """
    from safetensors.numpy import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    # transformers reads safetensors written with format "pt" as a PyTorch state dict.
    save_file(tensors, str(folder / SAFETENSORS), metadata={"format": "pt"})
    (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def activation_from_hf(name: str, file: str = CONFIG) -> str:
    """A Hugging Face activation name (`hidden_act`, `activation_function`) as tfpretrain's."""
    names = {
        "gelu": "gelu",
        "relu": "relu",
        "gelu_new": "gelu_approximate",
        "gelu_pytorch_tanh": "gelu_approximate",
        "gelu_fast": "gelu_approximate",
    }
    if name not in names:
        raise ValueError(f"{file}: unsupported activation {name!r}; supported: {sorted(names)}.")
    return names[name]


def activation_to_hf(name: str) -> str:
    names = {"gelu": "gelu", "relu": "relu", "gelu_approximate": "gelu_new"}
    if name not in names:
        raise ValueError(
            f"Activation {name!r} has no Hugging Face name here; use one of {sorted(names)}."
        )
    return names[name]
