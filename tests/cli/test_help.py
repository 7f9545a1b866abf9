"""Every command's --help renders and lists every setting of its dataclass."""

import dataclasses

import pytest

from tfpretrain.cli.main import COMMANDS, build_parser
from tfpretrain.settings import flag_name, user_fields


def _subparser(command):
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_renders_without_format_escapes(command):
    sub = _subparser(command)
    text = sub.format_help()
    assert "%%" not in text and "%(" not in text, text
    assert sub.description, f"tfpretrain {command} has no description"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_setting(command):
    sub = _subparser(command)
    settings = sub.get_default("settings_class")
    if settings is None:
        pytest.skip(f"tfpretrain {command} has no settings dataclass")
    text = sub.format_help()
    fields = user_fields(settings)
    assert fields and all(dataclasses.is_dataclass(settings) for _ in fields)
    missing = [flag_name(f) for f in fields if flag_name(f) not in text]
    assert not missing, f"tfpretrain {command} --help lacks {missing}"


def test_precision_defaults_to_auto_and_says_what_auto_does():
    checked = []
    for command in COMMANDS:
        sub = _subparser(command)
        settings = sub.get_default("settings_class")
        fields = {f.name: f for f in user_fields(settings)} if settings else {}
        if "precision" not in fields:
            continue  # e.g. report, predict: nothing is trained
        assert fields["precision"].default == "auto", command
        action = next(a for a in sub._actions if "--precision" in a.option_strings)
        assert action.choices == ("auto", "fp32", "bf16", "fp16") and action.default == "auto"
        assert "auto: bf16 on a CPU with AMX or AVX512-BF16" in action.help
        assert "else fp32" in action.help
        checked.append(command)
    for training in ("autoencoder", "clm", "mlm", "seq2seq", "finetune", "distill"):
        assert training in checked
