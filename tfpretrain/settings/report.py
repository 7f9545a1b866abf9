"""Settings of `tfpretrain report`: which runs to compare and where the report goes."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import Settings, setting


@dataclasses.dataclass(kw_only=True)
class ReportRun(Settings):
    """Settings of `tfpretrain report`: run directories (or folders searched for them) and the
    output folder."""

    runs: list[str] = setting(
        positional=True, help="run directories, or folders holding run directories"
    )
    out_dir: str = setting(flag="--out", help="where report.md, report.json and comparison.png go")

    def check(self) -> None:
        if not self.runs:
            raise ValueError("Name at least one run directory or folder of runs.")
