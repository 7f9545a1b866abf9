"""Settings of `tfpretrain report`: which runs to compare and where the report goes."""

from __future__ import annotations

import argparse
import dataclasses

from tfpretrain.settings import Settings, setting


@dataclasses.dataclass(kw_only=True)
class ReportRun(Settings):
    """Settings of `tfpretrain report`: run directories (or folders searched for them) and the
    output folder."""

    # Positional on the command line (`tfpretrain report RUN [RUN ...]`), which `add_arguments`
    # does not build: `tfpretrain.cli.report` adds it with this help.
    runs: list[str] = dataclasses.field(metadata={
        "positional_help": "run directories, or folders holding run directories"})
    out_dir: str = setting(flag="--out", help="where report.md, report.json and comparison.png go")

    def check(self) -> None:
        if not self.runs:
            raise ValueError("Name at least one run directory or folder of runs.")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ReportRun:
        return cls(runs=args.runs, out_dir=args.out_dir)
