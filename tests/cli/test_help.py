"""Every command's --help renders: argparse formats `help=` strings with % but not descriptions."""

import pytest

from tfpretrain.cli.main import COMMANDS, build_parser


@pytest.mark.parametrize("command", COMMANDS)
def test_help_renders_without_format_escapes(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = sub.format_help()
    assert "%%" not in text and "%(" not in text, text
    assert sub.description, f"tfpretrain {command} has no description"
