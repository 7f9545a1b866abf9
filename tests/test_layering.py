"""The floors of ARCHITECTURE.md: a module imports only from its own floor and the floors below.

Every import counts, lazy ones inside functions included, so an import loop cannot hide in a
function body.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tfpretrain"


def floor_table(text: str) -> dict[str, int]:
    """ARCHITECTURE.md's `floor N  entry entry ...` lines as {module prefix: N}."""
    table = {}
    for number, entries in re.findall(r"^floor (\d+) +(.+)$", text, flags=re.MULTILINE):
        for entry in entries.split():
            name = entry.removesuffix("/").removesuffix(".py")
            table[PACKAGE if name == "__init__" else f"{PACKAGE}.{name}"] = int(number)
    return table


def package_sources() -> dict[str, tuple[str, bool]]:
    """Every module of the package by dotted name: (source, whether it is a package)."""
    sources = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        sources[".".join(parts[:-1] if is_package else parts)] = (path.read_text(), is_package)
    return sources


def imported_modules(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules that `source`, the module `name`, imports anywhere."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from this module's package, up `level - 1` packages
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {module for module in found if module == PACKAGE or module.startswith(f"{PACKAGE}.")}


def floor_of(module: str, table: dict[str, int]) -> int | None:
    """The floor of the longest table entry that is `module` or a package holding it."""
    for prefix in sorted(table, key=len, reverse=True):
        if module == prefix or module.startswith(f"{prefix}."):
            return table[prefix]
    return None


def upward_imports(sources: dict[str, tuple[str, bool]], table: dict[str, int]) -> list[str]:
    """Every import of a module on a higher floor than the importer's."""
    known = set(sources)
    found = []
    for name, (source, is_package) in sources.items():
        floor = floor_of(name, table)
        for target in sorted(imported_modules(name, source, is_package, known)):
            target_floor = floor_of(target, table)
            if target_floor is not None and floor is not None and target_floor > floor:
                found.append(f"{name} (floor {floor}) imports {target} (floor {target_floor})")
    return found


def test_architecture_gives_every_module_a_floor():
    table = floor_table((ROOT / "ARCHITECTURE.md").read_text())
    assert table, "ARCHITECTURE.md lists no floors"
    missing = [name for name in package_sources() if floor_of(name, table) is None]
    assert not missing, f"modules without a floor in ARCHITECTURE.md: {missing}"


def test_no_import_runs_up_the_floors():
    table = floor_table((ROOT / "ARCHITECTURE.md").read_text())
    assert upward_imports(package_sources(), table) == []


def test_the_rule_catches_an_upward_import():
    table = floor_table("floor 2  models/\nfloor 1  generation.py layers/\n")
    sources = {
        "tfpretrain.layers": ("", True),
        "tfpretrain.layers.attention": ("", False),
        "tfpretrain.models": ("", True),
        "tfpretrain.models.gpt": ("from tfpretrain.layers import attention\n", False),
        # A lazy import inside a function, and a relative one: both count.
        "tfpretrain.generation": ("def f():\n    from tfpretrain.models.gpt import X\n", False),
        "tfpretrain.layers.embedding": ("from ..models import gpt\n", False),
    }
    assert upward_imports(sources, table) == [
        "tfpretrain.generation (floor 1) imports tfpretrain.models.gpt (floor 2)",
        "tfpretrain.layers.embedding (floor 1) imports tfpretrain.models.gpt (floor 2)",
    ]
