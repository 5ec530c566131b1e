"""The browser: Chromium for Lambda from the npm package ``@sparticuz/chromium``.

The package ships four brotli files: the browser (x86-64 only), the NSS/NSPR/expat
libraries of Amazon Linux 2023 it links against, its fonts, and SwiftShader (software GL,
which must sit beside the binary). They are unpacked once per execution environment under
the temporary directory; Node is not needed to run them.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PACKAGE: Final = "@sparticuz/chromium"
BIN_FILES: Final = ("chromium.br", "al2023.tar.br", "fonts.tar.br", "swiftshader.tar.br")
ASSET_DIR: Final = "chromium"
"""Where the render function's asset holds the package's ``bin`` files."""

FLAGS: Final = (
    # One process, no sandbox: Lambda runs as root with no user namespaces.
    "--no-sandbox",
    "--no-zygote",
    "--single-process",
    "--disable-setuid-sandbox",
    "--disable-dev-shm-usage",  # /dev/shm is small or read-only in Lambda
    "--no-startup-window",
    # Software GL in the browser's own process (SwiftShader beside the binary).
    "--in-process-gpu",
    "--ignore-gpu-blocklist",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-webgl",
    # Nothing the browser does on its own: no updates, pings, sync, extensions or prefetch.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-extensions",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
    "--disable-quic",
    "--mute-audio",
    "--hide-scrollbars",
    "--font-render-hinting=none",
    "--disable-features=AudioServiceOutOfProcess,IsolateOrigins,site-per-process,"
    "NetworkPrediction,DnsOverHttps,Translate,OptimizationHints,MediaRouter",
)


@dataclass(frozen=True)
class Installed:
    executable: Path
    lib_dir: Path
    fonts_dir: Path

    def environment(self) -> dict[str, str]:
        """The browser's environment: its libraries first, its fonts, a writable home."""
        inherited = os.environ.get("LD_LIBRARY_PATH", "")
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LD_LIBRARY_PATH": ":".join(p for p in (str(self.lib_dir), inherited) if p),
            "FONTCONFIG_PATH": str(self.fonts_dir),
            "HOME": tempfile.gettempdir(),
            "TMPDIR": tempfile.gettempdir(),
        }


class ChromiumMissing(Exception):
    """The package's files are not where the function or local mode looks for them."""


def locate(explicit: str | None = None) -> Path:
    """The folder holding the package's brotli files: ``explicit`` (the configured one), the
    function's asset, or the repository's ``node_modules`` (local mode)."""
    here = Path(__file__).resolve()
    candidates = [Path(explicit)] if explicit else []
    candidates += [
        here.parent.parent.parent / ASSET_DIR,  # the asset root, beside atlas_codex/
        here.parents[3] / "node_modules" / PACKAGE / "bin",  # the repository (local mode)
    ]
    for folder in candidates:
        if all((folder / name).is_file() for name in BIN_FILES):
            return folder
    raise ChromiumMissing(
        f"no Chromium: {PACKAGE}'s {', '.join(BIN_FILES)} are in none of "
        + ", ".join(str(c) for c in candidates)
        + " (`make setup` installs the package; the render function's asset carries them)"
    )


_LOCK = threading.Lock()


@contextlib.contextmanager
def _across_processes(into: Path) -> Iterator[None]:
    """One unpacking at a time across processes too (local mode's and the tests' workers
    share the folder): a browser launched from files another process is rewriting dies."""
    into.mkdir(parents=True, exist_ok=True)
    with open(into.parent / f".{into.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(source: Path, into: Path | None = None) -> Installed:
    """Unpack the browser from ``source`` (once: a marker names what was unpacked)."""
    import brotli  # type: ignore[import-untyped]

    into = into or Path(tempfile.gettempdir()) / "atlas-chromium"
    stamp = "|".join(f"{n}:{(source / n).stat().st_size}" for n in BIN_FILES)
    marker = into / ".unpacked"
    installed = Installed(into / "chromium", into / "al2023" / "lib", into / "fonts")
    with _LOCK, _across_processes(into):
        if marker.is_file() and marker.read_text() == stamp and installed.executable.is_file():
            return installed
        marker.unlink(missing_ok=True)  # half unpacked until the marker says otherwise
        binary = brotli.decompress((source / "chromium.br").read_bytes())
        partial = into / "chromium.part"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        partial.replace(installed.executable)
        for name, where in (
            ("swiftshader.tar.br", into),  # beside the binary, where Chromium looks for it
            ("al2023.tar.br", into / "al2023"),
            ("fonts.tar.br", into / "fonts-package"),
        ):
            raw = brotli.decompress((source / name).read_bytes())
            with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
                archive.extractall(where, filter="data")
        # The package's fonts.conf names /tmp/fonts; ours names where they are.
        installed.fonts_dir.mkdir(exist_ok=True)
        fonts = into / "fonts-package" / "fonts"
        (installed.fonts_dir / "fonts.conf").write_text(
            '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
            f"  <dir>{fonts}</dir>\n  <cachedir>{into / 'fonts-cache'}</cachedir>\n"
            "</fontconfig>\n"
        )
        marker.write_text(stamp)
    return installed
