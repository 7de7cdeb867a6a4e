"""Imports run one way, as docs/architecture.md lays out (issue 13, item 10).

Every module of ``detak`` is parsed with `ast`; every import counts, at module level and inside
functions alike (a function-level import is still an arrow: it runs when the function does).
Relative imports are resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import detak

PACKAGE = Path(detak.__file__).parent
# (importer's part, parts it must not import, why)
RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("calibration", ("device",), "calibration is pure counts→mV; device imports it, not back"),
    ("calibration", ("export", "models"), "calibration sits below models and export"),
    ("models", ("export",), "export (with inference) sits above models"),
]
# parts nothing below them may import (they stack on top of everything else)
TOP_PARTS = ("kiosk", "sync", "server")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere in its body (absolute names).

    >>> sorted(imported_modules(PACKAGE / "calibration" / "leads.py"))[:1]
    ['__future__']
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            # `from detak import export` names a sub-package too
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def part_of(module: str) -> str | None:
    """``detak.models.cnn_data`` → ``models``; None outside detak and for detak's top-level
    modules (``detak.cli``, the command that wires every part together)."""
    parts = module.split(".")
    if parts[0] != "detak" or len(parts) < 2 or not (PACKAGE / parts[1]).is_dir():
        return None
    return parts[1]


def _graph() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in sorted(PACKAGE.rglob("*.py"))}


GRAPH = _graph()


def test_the_graph_sees_every_part_and_function_level_imports() -> None:
    parts = {part_of(m) for m in GRAPH}
    assert {"calibration", "device", "models", "export", "signal", "data"} <= parts
    # a function-level import is found (detak/cli.py imports its commands inside functions)
    assert any(part_of(m) == "signal" for m in GRAPH["detak.cli"])


def test_module_names_and_parts() -> None:
    assert module_name(PACKAGE / "models" / "__init__.py") == "detak.models"
    assert module_name(PACKAGE / "models" / "cnn_data.py") == "detak.models.cnn_data"
    assert part_of("detak.device") == "device" and part_of("detak.cli") is None
    assert part_of("numpy.linalg") is None


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    pkg = tmp_path / "detak" / "models"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text("def f():\n    from ..export import bundle\n"
                              "from . import cnn_data\n")
    globals()["PACKAGE"], old = tmp_path / "detak", PACKAGE
    try:
        got = imported_modules(pkg / "m.py")
    finally:
        globals()["PACKAGE"] = old
    assert {"detak.export", "detak.export.bundle", "detak.models.cnn_data"} <= got


@pytest.mark.parametrize(("importer", "forbidden", "why"), RULES)
def test_imports_run_one_way(importer: str, forbidden: tuple[str, ...], why: str) -> None:
    bad = sorted(f"{mod} imports {dep}" for mod, deps in GRAPH.items()
                 if part_of(mod) == importer for dep in deps if part_of(dep) in forbidden)
    assert not bad, f"{why}:\n" + "\n".join(bad)


def test_nothing_below_kiosk_sync_server_imports_them() -> None:
    # detak/cli.py (part None, the command on top of every part) may wire their commands
    bad = sorted(f"{mod} imports {dep}" for mod, deps in GRAPH.items()
                 if part_of(mod) is not None and part_of(mod) not in TOP_PARTS
                 for dep in deps if part_of(dep) in TOP_PARTS)
    assert not bad, "kiosk, sync and server stack on top:\n" + "\n".join(bad)


def test_nothing_imports_server_but_the_cli() -> None:
    # the clinic server stacks on everything; the kiosk and its sync client never pull it in
    # (the kiosk install has no server extra), only the `detak` command wires its sub-command
    bad = sorted(f"{mod} imports {dep}" for mod, deps in GRAPH.items()
                 if part_of(mod) != "server" and mod != "detak.cli"
                 for dep in deps if part_of(dep) == "server")
    assert not bad, "only detak.cli may import detak.server:\n" + "\n".join(bad)
    assert any(part_of(dep) == "server" for dep in GRAPH["detak.cli"])  # the check can see it
