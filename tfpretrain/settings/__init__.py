"""Settings declared once: dataclass fields carry their help, checks and flag, and the CLI is
built from them.

A command's settings are a dataclass deriving from `Settings`. Each field that users set is
declared with `setting(...)`, which records in the field's metadata everything the command line
and the checks need: the help text, the allowed values (`choices`, `check`), the flag's name and
its old spellings, and how the run directory treats it (`resumable`: may change when a run is
resumed; `defines_run=False`: does not define what was trained, e.g. where logs go). Then

* `add_arguments(parser, MyRun)` adds one flag per field (`--batch-size` for `batch_size`;
  booleans as `--x/--no-x`; old spellings still accepted, with a deprecation message);
* `MyRun.from_args(namespace)` builds the settings from parsed flags;
* constructing `MyRun(...)` from Python or the CLI validates every field at once, before any
  data or model is touched, with messages that name the flag and the fix.

Each command's settings live in `tfpretrain.settings.<command>`; like this module they import
neither TensorFlow nor Keras, so that `tfpretrain --help` stays fast and the run is checked
before TensorFlow loads. A field redeclared in a subclass (to change its default) must repeat its
`setting()` arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

MISSING = dataclasses.MISSING

# A check takes the value and returns an error phrase ("must be > 0") or None.
Check = Callable[[Any], "str | None"]


def positive(value) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value) -> str | None:
    return None if value >= 0 else "must be >= 0"


def at_least(low: float) -> Check:
    def check(value) -> str | None:
        return None if value >= low else f"must be >= {low}"

    return check


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A check for `low <= value <= high`, either end open on request."""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"

    def check(value) -> str | None:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return None if above and below else f"must be in {left}{low}, {high}{right}"

    return check


def setting(
    default: Any = MISSING,
    *,
    help: str,
    flag: str | None = None,  # noqa: A002
    aliases: Sequence[str] = (),
    choices: Sequence[Any] | None = None,
    check: Check | None = None,
    resumable: bool = False,
    defines_run: bool = True,
    metavar: str | None = None,
    nargs: str | None = None,
    parse: Callable | None = None,
    positional: bool = False,
    repeat: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field that is also a command-line flag.

    Args:
        default: the default value; omit it (and `default_factory`) for a required flag.
        help: the flag's help text (shown by `--help` with the default).
        flag: the flag's name, if not `--` + the field name with dashes.
        aliases: old spellings still accepted, each with a deprecation message.
        choices: the allowed values.
        check: a rule for the value (`positive`, `in_range(0, 1)`, ...); `None` values are
            never checked (they mean "the default rule" or "off").
        resumable: the value may change when an interrupted or finished run is continued
            (e.g. `epochs`, `steps`).
        defines_run: False for settings that do not change what is trained (output folder,
            logging, the distribution strategy).
        metavar, nargs, parse: passed to argparse (`parse` is its `type`).
        positional: a positional argument (`tfpretrain report RUN ...`) instead of a flag.
        repeat: a list flag that may be given several times, the values adding up
            (`--encoder A --encoder B`).
        default_factory: as for `dataclasses.field`.
    """
    metadata = {
        "help": help,
        "flag": flag,
        "aliases": tuple(aliases),
        "choices": tuple(choices) if choices is not None else None,
        "check": check,
        "resumable": resumable,
        "defines_run": defines_run,
        "metavar": metavar,
        "nargs": nargs,
        "parse": parse,
        "positional": positional,
        "repeat": repeat,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    """The command-line spelling of a field: `--batch-size` for `batch_size` (a positional
    argument is named by its upper-case field name)."""
    if field.metadata.get("positional"):
        return field.name.upper()
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def deprecated(old: str, new: str, detail: str = "") -> None:
    """Says on stderr that a flag's old spelling or unit is deprecated, and what replaces it."""
    print(
        f"tfpretrain: {old} is deprecated; use {new}{f' ({detail})' if detail else ''}.",
        file=sys.stderr,
    )


def user_fields(cls_or_obj) -> list[dataclasses.Field]:
    """The fields declared with `setting()` (the others are for Python callers only)."""
    return [f for f in dataclasses.fields(cls_or_obj) if "help" in f.metadata]


def _types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # each base's annotations in its own module


def _base_type(annotation) -> tuple[type | None, bool]:
    """(scalar type, whether it is a list) of an annotation such as `int | None` or `list[str]`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _base_type(args[0])
        return None, False  # several types: the field's `parse` decides
    if origin in (list, tuple, Sequence):
        inner = typing.get_args(annotation)
        return (_base_type(inner[0])[0] if inner else None), True
    return (annotation if isinstance(annotation, type) else None), False


class _OldSpellings:
    """An argparse action that says so when its flag was given under an old spelling."""

    def __init__(self, option_strings, dest, deprecated=(), new_name="", **kwargs):
        self.deprecated = set(deprecated)
        self.new_name = new_name
        super().__init__(option_strings, dest, **kwargs)

    def notice(self, option_string) -> None:
        if option_string in self.deprecated:
            negative = option_string.startswith("--no-")
            deprecated(option_string, "--no-" + self.new_name[2:] if negative else self.new_name)


class _Deprecating(_OldSpellings, argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        self.notice(option_string)
        setattr(namespace, self.dest, values)


class _Repeating(_Deprecating):
    """A list flag whose repeats add up; the first one replaces the default."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = getattr(namespace, "_repeated", set())
        before = list(getattr(namespace, self.dest) or []) if self.dest in seen else []
        super().__call__(parser, namespace, [*before, *values], option_string)
        namespace._repeated = seen | {self.dest}


class _DeprecatingBool(_OldSpellings, argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        self.notice(option_string)
        super().__call__(parser, namespace, values, option_string)


def _with_negations(aliases: Sequence[str]) -> list[str]:
    return [*aliases, *("--no-" + a[2:] for a in aliases)]


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Adds one flag per `setting()` field of the dataclass `cls`."""
    hints = _types(cls)
    for field in user_fields(cls):
        meta = field.metadata
        name = flag_name(field)
        scalar, is_list = _base_type(hints[field.name])
        required = field.default is MISSING and field.default_factory is MISSING
        kwargs: dict[str, Any] = {"dest": field.name, "help": meta["help"]}
        if meta.get("positional"):
            parser.add_argument(
                field.name,
                metavar=name,
                help=meta["help"],
                nargs=meta["nargs"] or ("+" if is_list else None),
                type=meta["parse"] or (scalar if scalar in (int, float) else None),
            )
            continue
        if required:
            kwargs["default"] = argparse.SUPPRESS
        else:
            kwargs["default"] = (
                field.default if field.default is not MISSING else field.default_factory()
            )
        if scalar is bool and not is_list:
            # `--x/--no-x`; an old positive spelling `--y` also gets its `--no-y`.
            parser.add_argument(
                name,
                *meta["aliases"],
                action=_DeprecatingBool,
                deprecated=_with_negations(meta["aliases"]),
                new_name=name,
                **kwargs,
            )
            continue
        kwargs["type"] = meta["parse"] or (scalar if scalar in (int, float, str) else None)
        if meta["choices"] is not None and not is_list:
            kwargs["choices"] = meta["choices"]
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        if is_list:
            kwargs["nargs"] = meta["nargs"] or "+"
        elif meta["nargs"]:
            kwargs["nargs"] = meta["nargs"]
        action = _Repeating if meta.get("repeat") else _Deprecating
        parser.add_argument(
            name,
            *meta["aliases"],
            action=action,
            deprecated=meta["aliases"],
            new_name=name,
            required=required,
            **kwargs,
        )


def _type_error(field: dataclasses.Field, value, scalar: type | None, is_list: bool) -> str | None:
    if scalar is None or value is None:
        return None
    values = value if is_list and isinstance(value, (list, tuple)) else [value]
    if is_list and not isinstance(value, (list, tuple)):
        return f"must be a list of {scalar.__name__}"
    for item in values:
        if item is None:
            continue
        if scalar is bool and not isinstance(item, bool):
            return f"must be True or False; got {item!r}"
        if scalar is int and (isinstance(item, bool) or not isinstance(item, int)):
            return f"must be a whole number; got {item!r}"
        if scalar is float and (isinstance(item, bool) or not isinstance(item, (int, float))):
            return f"must be a number; got {item!r}"
        if scalar is float and not math.isfinite(item):
            return f"must be a finite number; got {item!r}"
        if scalar is str and not isinstance(item, str):
            return f"must be a string; got {item!r}"
    return None


def validate(settings) -> None:
    """Checks every `setting()` field of a dataclass instance: its type, its choices and its
    rule. Raises one ValueError naming each bad flag, its value and what it must be."""
    hints = _types(type(settings))
    problems = []
    for field in user_fields(settings):
        value = getattr(settings, field.name)
        scalar, is_list = _base_type(hints[field.name])
        name = flag_name(field)
        error = _type_error(field, value, scalar, is_list)
        if error:
            problems.append(f"{name} {error}.")
            continue
        if value is None:
            continue
        items = list(value) if is_list else [value]
        choices, check = field.metadata["choices"], field.metadata["check"]
        for item in items:
            if choices is not None and item not in choices:
                problems.append(
                    f"{name} must be one of {', '.join(map(str, choices))}; got {item!r}."
                )
                break
            if check is not None and item is not None:
                phrase = check(item)
                if phrase:
                    problems.append(f"{name} {phrase}; got {item!r}.")
                    break
    if problems:
        raise ValueError(" ".join(problems))


@dataclasses.dataclass(kw_only=True)
class Settings:
    """Base of every command's settings: validates all fields when constructed.

    Subclasses put rules that relate several fields in `check()`, which runs after the
    per-field checks; it raises ValueError naming the flags involved.
    """

    def __post_init__(self) -> None:
        validate(self)
        self.check()

    def check(self) -> None:
        """Rules across fields (e.g. warm-up shorter than the run); none by default."""

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        """The settings from flags parsed by a parser made with `add_arguments(parser, cls)`."""
        return cls(**{f.name: getattr(args, f.name) for f in user_fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        """Every field, as recorded in a run's `config.json`."""
        return dataclasses.asdict(self)

    def defining(self) -> dict[str, Any]:
        """The fields that define what a run trains: compared when a run is resumed."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get("defines_run", True) and not f.metadata.get("resumable")
        }


def from_dict(cls, values: dict, kind: str):
    """Builds the config dataclass `cls` from a dict (e.g. a saved config.json), naming any
    unknown keys; lists become tuples where the field's default is a tuple."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"Unknown {kind} config keys {sorted(unknown)}; known: {sorted(fields)}.")
    converted = {}
    for key, value in values.items():
        if isinstance(value, list) and isinstance(fields[key].default, tuple):
            value = tuple(value)
        converted[key] = value
    return cls(**converted)


# Settings every command shares, declared once: each command's dataclass derives from
# `RunSettings` or `TrainingSettings` and redeclares a field only to change its default.
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
XLA_MODES = ("auto", "on", "off")


@dataclasses.dataclass(kw_only=True)
class RunSettings(Settings):
    """Flags shared by every command that writes a run directory and runs TensorFlow."""

    out_dir: str = setting(
        flag="--out", help="run directory: checkpoints, metrics, plots, exports", defines_run=False
    )
    seed: int = setting(0, help="random seed")
    strategy: str = setting(
        "auto",
        choices=STRATEGIES,
        defines_run=False,
        help="tf.distribute strategy (auto: TPU, TF_CONFIG cluster, several GPUs, else one device)",
    )
    precision: str = setting(
        "auto",
        choices=PRECISIONS,
        help="numeric precision; bf16/fp16 are mixed precision with float32 weights and losses "
        "(auto: bf16 on a CPU with AMX or AVX512-BF16, oneDNN on and no GPU or TPU, for "
        "transformers 384 or more wide; "
        "else fp32)",
    )
    xla: str = setting(
        "auto",
        choices=XLA_MODES,
        defines_run=False,
        help="XLA-compile the training step (auto: on, except for bf16 without a "
        "GPU or TPU, where TensorFlow's own bf16 kernels are faster)",
    )
    overwrite: bool = setting(
        False, defines_run=False, help="start afresh, deleting what OUT holds"
    )


@dataclasses.dataclass(kw_only=True)
class TrainingSettings(RunSettings):
    """Flags shared by every training command."""

    tensorboard: bool = setting(False, defines_run=False, help="write TensorBoard logs to OUT/logs")
    checkpoint_every: int | None = setting(
        1000,
        check=positive,
        metavar="STEPS",
        defines_run=False,
        help="save the crash-safe training state every STEPS steps (and at every epoch end)",
    )
    steps_per_execution: int = setting(
        16,
        check=positive,
        defines_run=False,
        help="training steps run per compiled call (fewer Python round trips)",
    )
    export: bool = setting(
        True, defines_run=False, help="export a SavedModel to OUT/saved_model/1/"
    )
    verbose: str | int = dataclasses.field(default="auto", metadata={"defines_run": False})
