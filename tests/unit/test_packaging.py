"""Lambda packaging without Docker: what goes into the asset and how pip is asked for it."""

from __future__ import annotations

import ast
import importlib.util
import marshal
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pytest

from stacks import packaging

RUNTIME_MAGIC = {"3.12": 3531, "3.13": 3571}
"""CPython's bytecode magic numbers (importlib/_bootstrap_external.py), fixed for a minor
version from its first release on: a Lambda runtime of that version loads these pycs."""


def _lambdas(tmp_path: Path) -> Path:
    root = tmp_path / "lambdas"
    (root / "atlas_codex" / "handlers").mkdir(parents=True)
    (root / "atlas_codex" / "__init__.py").write_text("")
    (root / "atlas_codex" / "handlers" / "api.py").write_text("handler = None\n")
    (root / "atlas_codex" / "__pycache__").mkdir()
    (root / "atlas_codex" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "atlas_codex_local").mkdir()
    (root / "atlas_codex_local" / "local.py").write_text("")
    return root


def test_the_asset_holds_the_runtime_package_and_the_locked_wheels_only(tmp_path: Path) -> None:
    calls: list[Sequence[str]] = []
    out = tmp_path / "asset"
    out.mkdir()
    bundler = packaging.LocalPipBundling(run=calls.append, lambdas_dir=_lambdas(tmp_path))

    assert bundler.try_bundle(str(out), image=None) is True

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["atlas_codex/__init__.py", "atlas_codex/handlers/api.py"]
    assert len(calls) == 2
    assert calls[0][-4:] == ["--target", str(out), "--requirement", str(packaging.LOCK_FILE)]
    assert calls[1] == packaging.compile_command(str(out))  # after pip: the wheels' too


def test_the_asset_carries_bytecode_the_runtime_s_python_uses_as_is(tmp_path: Path) -> None:
    out = tmp_path / "asset"
    out.mkdir()
    bundler = packaging.LocalPipBundling(
        run=lambda command: None if "pip" in command else _run(command),
        lambdas_dir=_lambdas(tmp_path),
    )
    bundler.try_bundle(str(out), image=None)

    pycs = sorted(out.rglob("*.pyc"))
    assert [p.relative_to(out).as_posix() for p in pycs] == [
        f"atlas_codex/__pycache__/__init__.{sys.implementation.cache_tag}.pyc",
        f"atlas_codex/handlers/__pycache__/api.{sys.implementation.cache_tag}.pyc",
    ]
    for pyc in pycs:
        header = pyc.read_bytes()[:16]
        # The magic number of the runtime's Python (the tests run on it: checked below).
        assert header[:4] == importlib.util.MAGIC_NUMBER
        assert header[:4] == RUNTIME_MAGIC[packaging.PYTHON_VERSION].to_bytes(2, "little") + b"\r\n"
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01  # hash-based, not checked against the source: used as it is
        code = marshal.loads(pyc.read_bytes()[16:])
        assert code.co_filename.startswith(f"{packaging.RUNTIME_ROOT}/atlas_codex/")


def test_the_tests_run_on_the_python_the_functions_run_on() -> None:
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == packaging.PYTHON_VERSION
    assert packaging.RUNTIME.name == f"python{packaging.PYTHON_VERSION}"


def test_bytecode_from_another_python_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "PYTHON_VERSION", "3.9")
    with pytest.raises(packaging.WrongPython, match=r"Python 3\.9"):
        packaging.compile_command("/out")


def _run(command: Sequence[str]) -> None:
    subprocess.run(command, check=True)


def test_pip_is_asked_for_binary_wheels_of_the_lambda_platform_and_python() -> None:
    command = packaging.pip_command("/out")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert f"--python-version {packaging.PYTHON_VERSION}" in joined
    assert "--only-binary=:all:" in command
    assert "--no-deps" in command  # the lock file is the closure
    assert packaging.RUNTIME.name == f"python{packaging.PYTHON_VERSION}"
    assert packaging.ARCHITECTURE.name == "arm64"


def test_the_asset_hash_follows_the_code_and_the_lock_file(tmp_path: Path) -> None:
    lambdas = _lambdas(tmp_path)
    lock = tmp_path / "lambda.txt"
    lock.write_text("pydantic==2.0\n")
    first = packaging.asset_hash(lambdas, lock)
    (lambdas / "atlas_codex_local" / "local.py").write_text("changed = True\n")
    (lambdas / "atlas_codex" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"1")
    assert packaging.asset_hash(lambdas, lock) == first  # not part of the asset
    lock.write_text("pydantic==2.1\n")
    second = packaging.asset_hash(lambdas, lock)
    assert second != first
    (lambdas / "atlas_codex" / "handlers" / "api.py").write_text("handler = 1\n")
    assert packaging.asset_hash(lambdas, lock) != second


def test_the_lock_file_ships_no_boto3_and_no_dev_tools() -> None:
    names = {
        line.split("==")[0].lower().replace("_", "-")
        for line in packaging.LOCK_FILE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {"pydantic", "aws-lambda-powertools"} <= names
    assert not names & {"boto3", "botocore", "pytest", "moto", "aws-cdk-lib"}


def test_the_lock_file_is_the_runtime_closure_with_extras() -> None:
    """What ships is exactly what the runtime dependencies need, extras included: jusText
    (under trafilatura) imports lxml.html.clean, which lxml 6 moved to lxml-html-clean."""
    root = Path(__file__).resolve().parents[2]
    made = subprocess.run(
        [sys.executable, "tools/runtime_lock.py", "requirements/constraints.txt"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert made == packaging.LOCK_FILE.read_text()
    assert "lxml_html_clean==" in made


def test_the_render_lock_is_the_closure_of_what_the_render_function_imports() -> None:
    """The render asset carries the render function's imports and nothing else: every
    third-party module the modules it loads import (at the top or inside a function) is in
    its lock, and the lock is exactly the closure ``make lock`` computes."""
    root = Path(__file__).resolve().parents[2]
    made = subprocess.run(
        [sys.executable, "tools/runtime_lock.py", "requirements/constraints.txt", "--render"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert made == packaging.RENDER_LOCK_FILE.read_text()
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, atlas_codex.handlers.render; "
            "print('\\n'.join(m.__file__ for n, m in list(sys.modules.items()) "
            "if n.startswith('atlas_codex') and getattr(m, '__file__', None)))",
        ],
        cwd=root / "lambdas",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    imported: set[str] = set()
    for path in loaded:
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    distributions = metadata.packages_distributions()
    third_party = {
        _canonical(d)
        for name in imported - set(sys.stdlib_module_names) - {"atlas_codex", "mypy_boto3_lambda"}
        for d in distributions.get(name, [name])
        if not name.startswith("mypy_boto3")
    }
    locked = {_canonical(line.split("==")[0]) for line in made.splitlines() if line}
    provided = {"boto3", "botocore"}  # the Lambda runtime's
    assert {"pydantic", "aws-lambda-powertools", "brotli"} <= third_party
    assert third_party - provided <= locked, third_party - provided - locked
    assert not locked & {"openai", "lxml", "trafilatura", "babel", "httpx", "selectolax"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_render_asset_is_built_for_x86_64_with_brotli_and_the_pinned_browser(
    tmp_path: Path,
) -> None:
    from atlas_codex.render.chromium import ASSET_DIR, BIN_FILES

    browser = tmp_path / "bin"
    browser.mkdir()
    for name in BIN_FILES:
        (browser / name).write_bytes(name.encode())
    calls: list[Sequence[str]] = []
    out = tmp_path / "asset"
    out.mkdir()
    bundler = packaging.LocalPipBundling(
        run=calls.append,
        lambdas_dir=_lambdas(tmp_path),
        pip_platforms=packaging.RENDER_PLATFORMS,
        lock_files=(packaging.RENDER_LOCK_FILE,),
        browser=browser,
    )
    assert bundler.try_bundle(str(out), image=None) is True
    assert sorted(p.name for p in (out / ASSET_DIR).iterdir()) == sorted(BIN_FILES)
    pips = [c for c in calls if "pip" in c]
    assert [c[-1] for c in pips] == [str(packaging.RENDER_LOCK_FILE)]
    for command in pips:
        assert "manylinux2014_x86_64" in command
        assert not any("aarch64" in part for part in command)
    assert "brotli==" in packaging.RENDER_LOCK_FILE.read_text()
    # A missing browser fails the bundling (and so the synth), never an asset without it.
    (browser / "chromium.br").unlink()
    with pytest.raises(FileNotFoundError):
        bundler.try_bundle(str(tmp_path / "asset"), image=None)


def test_the_render_asset_hash_follows_the_pinned_browser(tmp_path: Path) -> None:
    lock = tmp_path / "package-lock.json"
    lock.write_text(
        '{"packages": {"node_modules/@sparticuz/chromium": {"version": "1", "integrity": "a"}}}'
    )
    first = packaging._browser_pin(lock)
    lock.write_text(
        '{"packages": {"node_modules/@sparticuz/chromium": {"version": "2", "integrity": "b"}}}'
    )
    assert packaging._browser_pin(lock) != first
    assert packaging._browser_pin().startswith(b"153.0.0|sha512-")
