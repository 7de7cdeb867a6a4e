"""Keep the README's tables equal to what their benchmark scripts wrote last.

A table (with the lines around it that belong to it) is a *block* between marker comments::

    <!-- table:NAME -->
    ...
    <!-- /table -->

Each benchmark writes its blocks into its results file under ``docs/results/`` (inside the
same markers); the README holds copies. ``--check`` lists every README block that differs from
its results file's block (or has none) and exits 1; ``--write`` copies the results files' blocks
into the README.

    .venv/bin/python benchmarks/readme_tables.py --check     # = make check-readme
    .venv/bin/python benchmarks/readme_tables.py --write     # = make readme

>>> text = "a\\n<!-- table:t -->\\n| x |\\n<!-- /table -->\\nb\\n"
>>> blocks(text)
{'t': '| x |'}
>>> replace_block(text, "t", "| y |")
'a\\n<!-- table:t -->\\n| y |\\n<!-- /table -->\\nb\\n'
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RESULTS = REPO / "docs" / "results"

_BLOCK = re.compile(r"<!-- table:(?P<name>[\w.-]+) -->\n(?P<body>.*?)\n?<!-- /table -->",
                    re.DOTALL)


class ReadmeTableError(ValueError):
    """A block is malformed or named twice."""


def blocks(text: str) -> dict[str, str]:
    """``{name: body}`` of every marked block in ``text`` (body without the marker lines)."""
    out: dict[str, str] = {}
    for m in _BLOCK.finditer(text):
        if m["name"] in out:
            raise ReadmeTableError(f"block {m['name']!r} appears twice")
        out[m["name"]] = m["body"]
    opened = len(re.findall(r"<!-- table:", text))
    if opened != len(out):
        raise ReadmeTableError(f"{opened} blocks opened, {len(out)} closed")
    return out


def wrap(name: str, body: str) -> str:
    """``body`` between the markers of block ``name``."""
    return f"<!-- table:{name} -->\n{body.strip(chr(10))}\n<!-- /table -->"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with block ``name``'s body replaced by ``body``."""
    pattern = re.compile(rf"<!-- table:{re.escape(name)} -->\n.*?\n?<!-- /table -->", re.DOTALL)
    if not pattern.search(text):
        raise ReadmeTableError(f"no block {name!r}")
    return pattern.sub(lambda _m: wrap(name, body), text, count=1)


def result_blocks(results: Path = RESULTS) -> dict[str, tuple[Path, str]]:
    """``{name: (file, body)}`` of the blocks in every ``.md`` file under ``results``."""
    out: dict[str, tuple[Path, str]] = {}
    for path in sorted(results.rglob("*.md")):
        for name, body in blocks(path.read_text(encoding="utf-8")).items():
            if name in out:
                raise ReadmeTableError(f"block {name!r} in both {out[name][0]} and {path}")
            out[name] = (path, body)
    return out


def drift(readme: Path = README, results: Path = RESULTS) -> list[str]:
    """One message per README block that differs from (or is missing in) the results files."""
    have = result_blocks(results)
    problems = []
    for name, body in blocks(readme.read_text(encoding="utf-8")).items():
        if name not in have:
            problems.append(f"{readme.name}: block {name!r} has no results file under "
                            f"{results} (run its benchmark)")
            continue
        path, want = have[name]
        if body.strip("\n") != want.strip("\n"):
            old = body.splitlines()
            new = want.splitlines()
            diff = [f"  README : {a}\n  results: {b}" for a, b in zip(old, new, strict=False)
                    if a != b]
            if len(old) != len(new):
                diff.append(f"  {len(old)} lines in the README, {len(new)} in the results")
            problems.append(f"{readme.name}: block {name!r} differs from {path}:\n"
                            + "\n".join(diff[:8]))
    return problems


def sync(readme: Path = README, results: Path = RESULTS) -> list[str]:
    """Copy every results block into the README's block of that name; the names updated."""
    text = readme.read_text(encoding="utf-8")
    have = result_blocks(results)
    changed = []
    for name, body in blocks(text).items():
        if name in have and body.strip("\n") != have[name][1].strip("\n"):
            text = replace_block(text, name, have[name][1])
            changed.append(name)
    readme.write_text(text, encoding="utf-8")
    return changed


def write_results(path: Path, title: str, provenance: str, full: str,
                  readme_blocks: dict[str, str]) -> Path:
    """A benchmark's results file: title, provenance line, the README blocks, the full output."""
    parts = [f"# {title}", "", provenance, ""]
    for name, body in readme_blocks.items():
        parts += [wrap(name, body), ""]
    parts += ["## Full output", "", full.strip("\n"), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a README block drifted")
    mode.add_argument("--write", action="store_true", help="copy the results into the README")
    args = ap.parse_args(argv)
    if args.write:
        changed = sync()
        print("updated: " + (", ".join(changed) if changed else "nothing"))
        return 0
    problems = drift()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"README tables match their results files ({len(blocks(README.read_text()))} "
              "blocks)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
