"""Lambda packaging without Docker: one asset, bundled locally with pip for the Lambda platform.

The asset is the runtime package ``lambdas/atlas_codex`` (never the local-mode tooling beside
it) plus its locked third-party dependencies (``requirements/lambda.txt``), installed as
binary wheels for the function's architecture and Python version. CDK runs the bundling
once per app (the asset's hash is the same for every function and stage); synthesis with
``aws:cdk:bundling-stacks`` empty (the tests) or ``-c atlas-codex:bundle=false`` (review)
skips it and needs no network.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from atlas_codex_stage.settings import LAMBDA_ARCHITECTURE

ROOT: Final = Path(__file__).resolve().parent.parent
LAMBDAS_DIR: Final = ROOT / "lambdas"
RUNTIME_PACKAGE: Final = "atlas_codex"
LOCK_FILE: Final = ROOT / "requirements" / "lambda.txt"

RUNTIME: Final = lambda_.Runtime.PYTHON_3_13
PYTHON_VERSION: Final = "3.13"
"""The runtime's Python version: pip selects wheels for it, the bundled bytecode is made by
it, and the tests run on it (the Makefile reads it from here). 3.13 is the newest Lambda
Python whose interpreter these machines can install (docs/ARCHITECTURE.md, "Python")."""
RUNTIME_ROOT: Final = "/var/task"
"""Where Lambda unpacks the asset: the bytecode names its sources there."""
ARCHITECTURE: Final = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}[
    LAMBDA_ARCHITECTURE
]
PIP_PLATFORMS: Final = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
"""Wheel platforms the arm64 runtime (Amazon Linux 2023, glibc 2.34) can load."""
RENDER_PLATFORMS: Final = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
"""The render function is x86-64: the browser has no arm64 build."""
RENDER_LOCK_FILE: Final = ROOT / "requirements" / "render.txt"
"""The render function's own closure (pydantic, Powertools, brotli to unpack the browser):
``make lock`` writes it from ``[tool.atlas-codex] render-dependencies``. The runtime's lock
(openai, lxml, trafilatura, babel...) is not installed in the render asset: the render
function imports none of it, and the asset is near Lambda's 250 MB unzipped limit."""
CHROMIUM_BIN: Final = ROOT / "node_modules" / "@sparticuz" / "chromium" / "bin"
"""The browser's files, from the npm package pinned in package-lock.json."""
PACKAGE_LOCK: Final = ROOT / "package-lock.json"

EXCLUDED: Final = ("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")

Runner = Callable[[Sequence[str]], None]


def _run(command: Sequence[str]) -> None:
    subprocess.run(command, check=True)  # noqa: S603 - our own pip command, no shell


def pip_command(
    output_dir: str, lock_file: Path = LOCK_FILE, pip_platforms: Sequence[str] = PIP_PLATFORMS
) -> list[str]:
    """The one pip call that installs the locked dependencies for the Lambda platform."""
    platforms = [arg for p in pip_platforms for arg in ("--platform", p)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-deps",  # the lock file is the whole closure, pinned
        "--no-compile",
        "--target",
        output_dir,
        "--requirement",
        str(lock_file),
    ]


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundling:
    """CDK local bundling: copy the runtime package, then pip-install the locked wheels."""

    def __init__(
        self,
        run: Runner = _run,
        lambdas_dir: Path = LAMBDAS_DIR,
        *,
        pip_platforms: Sequence[str] = PIP_PLATFORMS,
        lock_files: Sequence[Path] = (LOCK_FILE,),
        browser: Path | None = None,
    ) -> None:
        self._run = run
        self._lambdas_dir = lambdas_dir
        self._platforms = tuple(pip_platforms)
        self._locks = tuple(lock_files)
        self._browser = browser

    def try_bundle(self, output_dir: str, *, image: Any, **_options: Any) -> bool:
        target = Path(output_dir)
        shutil.copytree(
            self._lambdas_dir / RUNTIME_PACKAGE,
            target / RUNTIME_PACKAGE,
            ignore=shutil.ignore_patterns(*EXCLUDED),
            dirs_exist_ok=True,
        )
        for lock in self._locks:
            self._run(pip_command(output_dir, lock, self._platforms))
        if self._browser is not None:
            from atlas_codex.render.chromium import ASSET_DIR, BIN_FILES

            browser = target / ASSET_DIR
            browser.mkdir(exist_ok=True)
            for name in BIN_FILES:  # missing: `make setup` was not run; fail the synth
                shutil.copy2(self._browser / name, browser / name)
        self._run(compile_command(output_dir))
        return True


class WrongPython(RuntimeError):
    """Bytecode made by another Python than the runtime's would be ignored by Lambda."""


def compile_command(output_dir: str, python: str = sys.executable) -> list[str]:
    """Bytecode for every module of the asset, made by the runtime's Python.

    Lambda's ``/var/task`` is read-only, so without shipped bytecode every cold start
    compiles every module it imports. Unchecked hash-based pycs are used as they are (no
    source timestamp is compared) and are the same on every machine: the embedded paths are
    the runtime's (``/var/task/...``), not the build directory's."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        raise WrongPython(
            f"the asset's bytecode must be made by Python {PYTHON_VERSION} (the functions' "
            f"runtime), not {sys.version.split()[0]}: run `make` targets, which use it"
        )
    return [
        python,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        output_dir,
        "-p",
        RUNTIME_ROOT,
        output_dir,
    ]


def asset_hash(
    lambdas_dir: Path = LAMBDAS_DIR,
    lock_file: Path = LOCK_FILE,
    *,
    pip_platforms: Sequence[str] = PIP_PLATFORMS,
    extra: Sequence[bytes] = (),
) -> str:
    """Changes when the runtime code, the lock file or the target platform changes (and
    ``extra``: what else goes in, such as the browser's pinned version)."""
    digest = hashlib.sha256()
    digest.update(f"{PYTHON_VERSION}|{'|'.join(pip_platforms)}\n".encode())
    digest.update(lock_file.read_bytes())
    for more in extra:
        digest.update(more)
    package = lambdas_dir / RUNTIME_PACKAGE
    for path in sorted(package.rglob("*")):
        if path.is_file() and not any(path.match(p) or p in path.parts for p in EXCLUDED):
            digest.update(path.relative_to(lambdas_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


BUNDLE_CONTEXT_KEY: Final = "atlas-codex:bundle"
"""``-c atlas-codex:bundle=false``: templates only (review, snapshots); the template is the
same either way because the asset hash is computed from the sources."""


def skip_bundling_if_asked(app: cdk.App) -> None:
    """Honour ``-c atlas-codex:bundle=false`` (the CDK CLI refuses ``aws:`` context keys)."""
    if app.node.try_get_context(BUNDLE_CONTEXT_KEY) in (False, "false"):
        app.node.set_context("aws:cdk:bundling-stacks", [])


def runtime_code() -> lambda_.Code:
    """The function code of every Atlas Codex function."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        # Only the runtime package is the asset's source; local-mode tooling stays out.
        exclude=["*", f"!{RUNTIME_PACKAGE}", f"!{RUNTIME_PACKAGE}/**", *EXCLUDED],
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=asset_hash(),
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,
            local=LocalPipBundling(),
            command=["false"],  # Docker is never used: local bundling always succeeds or fails
        ),
    )


def _browser_pin(package_lock: Path = PACKAGE_LOCK) -> bytes:
    """The pinned browser package (version and integrity) from package-lock.json."""
    import json

    from atlas_codex.render.chromium import PACKAGE

    entry = json.loads(package_lock.read_text())["packages"][f"node_modules/{PACKAGE}"]
    return f"{entry['version']}|{entry['integrity']}".encode()


def render_code() -> lambda_.Code:
    """The render function's code: the runtime package, the render function's own closure
    for x86-64, and the browser's four files from the npm package (no Docker, no download at
    synth)."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        exclude=["*", f"!{RUNTIME_PACKAGE}", f"!{RUNTIME_PACKAGE}/**", *EXCLUDED],
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=asset_hash(
            lock_file=RENDER_LOCK_FILE, pip_platforms=RENDER_PLATFORMS, extra=(_browser_pin(),)
        ),
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,
            local=LocalPipBundling(
                pip_platforms=RENDER_PLATFORMS,
                lock_files=(RENDER_LOCK_FILE,),
                browser=CHROMIUM_BIN,
            ),
            command=["false"],
        ),
    )
