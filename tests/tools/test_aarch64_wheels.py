"""tools/aarch64_wheels.py (issue 14 item 7a) offline: the tag list, and a real `pip download`
against a local folder of fake wheels (`--no-index --find-links`), so a dependency without an
aarch64 wheel is named and one tagged manylinux_2_28 only is found. The check against PyPI runs
in CI: `make aarch64-check`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "aarch64_wheels.py"
sys.path.insert(0, str(TOOL.parent))
try:
    import aarch64_wheels as aw
finally:
    sys.path.remove(str(TOOL.parent))


def fake_wheel(folder: Path, name: str, tag: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal valid wheel NAME-1.0-TAG.whl whose metadata requires ``requires``."""
    dist = f"{name}-1.0.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n"
    path = folder / f"{name}-1.0-{tag}.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}/METADATA", meta)
        z.writestr(f"{dist}/WHEEL", wheel)
        z.writestr(f"{dist}/RECORD", "")
    return path


def test_tags_cover_every_glibc_from_2_17_to_2_36():
    tags = aw.platform_tags()
    for minor in range(17, 37):
        assert f"manylinux_2_{minor}_aarch64" in tags
    assert "manylinux_2_37_aarch64" not in tags and "manylinux_2_16_aarch64" not in tags
    assert {"manylinux2014_aarch64", "any"} <= set(tags)
    assert not any("x86_64" in t for t in tags)
    args = aw.pip_args(["numpy"], Path("/d"))
    assert args.count("--platform") == len(tags) == 22
    assert "--only-binary=:all:" in args and args[args.index("--abi") + 1] == "cp311"


def test_requirements_are_read_from_pyproject(tmp_path):
    p = tmp_path / "pyproject.toml"
    p.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.26", "Foo_Bar[x]~=1.0"]\n')
    assert [aw.requirement_name(r) for r in aw.project_dependencies(p)] == ["numpy", "foo-bar"]


@pytest.fixture
def index(tmp_path):
    """Local wheels: good (pure), litert-like (manylinux_2_28 only; pulls good), x86only
    (no aarch64 wheel), needsx86 (pure, but requires x86only)."""
    d = tmp_path / "index"
    d.mkdir()
    fake_wheel(d, "good", "py3-none-any")
    fake_wheel(d, "litertlike", "cp311-cp311-manylinux_2_28_aarch64", ("good",))
    fake_wheel(d, "x86only", "cp311-cp311-manylinux_2_28_x86_64")
    fake_wheel(d, "needsx86", "py3-none-any", ("x86only",))
    return d


def run(tmp_path, index, reqs):
    return aw.check(reqs, tmp_path / "dest", extra=["--no-index", "--find-links", str(index)])


def test_a_manylinux_2_28_only_wheel_resolves_with_its_dependency(tmp_path, index):
    res = run(tmp_path, index, ["litertlike"])
    assert res.ok, res.report()
    assert res.wheels == {"litertlike": "litertlike-1.0-cp311-cp311-manylinux_2_28_aarch64.whl",
                          "good": "good-1.0-py3-none-any.whl"}
    assert "aarch64 check: ok" in res.report() and "pulled in:" in res.report()


def test_a_dependency_without_an_aarch64_wheel_is_named(tmp_path, index):
    res = run(tmp_path, index, ["good", "x86only>=1", "litertlike"])
    assert not res.ok
    assert list(res.missing) == ["x86only>=1"]
    report = res.report()
    assert "FAILED: no aarch64 cp311 wheel for x86only>=1" in report
    assert "litertlike-1.0-cp311-cp311-manylinux_2_28_aarch64.whl" in report  # others still shown


def test_a_transitive_dependency_without_a_wheel_is_named(tmp_path, index):
    res = run(tmp_path, index, ["good", "needsx86"])
    assert not res.ok
    assert any(k.startswith("x86only") and "pulled in" in k for k in res.missing), res.missing


def test_command_line_exit_status(tmp_path, index):
    p = tmp_path / "pyproject.toml"
    p.write_text('[project]\nname = "x"\ndependencies = ["good"]\n')
    base = [sys.executable, str(TOOL), "--pyproject", str(p), "--dest", str(tmp_path / "d"),
            "--pip-arg=--no-index", f"--pip-arg=--find-links={index}"]
    ok = subprocess.run([*base, "--planned", "litertlike"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "planned litertlike" in ok.stdout
    bad = subprocess.run([*base, "--planned", "x86only"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[-2].endswith("no aarch64 cp311 wheel for x86only")
