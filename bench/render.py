"""Rendering pages built by JavaScript: the browser's cold path, a warm page, its memory.

The render function's first request unpacks Chromium (brotli, into a fresh folder); every
render then launches a browser of its own on a fresh profile and kills it after (no state
of one owner's page reaches the next), so a warm render includes a launch. Pages come from the
tests' loopback site (a shell filled after a fetch, after a timer, and a client-side route),
through the SSRF proxy as deployed. Peak memory is the browser process's high-water mark.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

PAGES = ("/js/fetched", "/js/delayed", "/js/routed")
WARM_ROUNDS = 10


def _launch_s() -> float:
    """Median time from a browser's start to its first answer, plus killing it."""
    from atlas_codex.render import chromium
    from atlas_codex.render.cdp import Browser

    installed = chromium.install(chromium.locate())
    times = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            browser = Browser(
                str(installed.executable),
                [*chromium.FLAGS, f"--user-data-dir={folder}/profile"],
                installed.environment(),
                f"{folder}/browser.log",
            )
            browser.send("Browser.getVersion")
            browser.kill()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> str:
    from atlas_codex.ground.netguard import NetPolicy
    from atlas_codex.render import chromium
    from atlas_codex.render.renderer import Renderer
    from tests.site import Site

    try:
        source = chromium.locate()
    except chromium.ChromiumMissing as exc:
        return f"## Rendering\n\nSkipped: {exc}"
    size_mb = sum((source / n).stat().st_size for n in chromium.BIN_FILES) / 1e6
    with tempfile.TemporaryDirectory() as fresh:
        started = time.perf_counter()
        chromium.install(source, Path(fresh) / "chromium")
        unpack_s = time.perf_counter() - started
    site = Site()
    renderer = Renderer(NetPolicy.from_host_ports([site.host_port]))
    try:
        started = time.perf_counter()
        renderer.render(f"{site.url}/js/fetched", wait_for=None, timeout_s=15, max_bytes=1 << 22)
        first_s = time.perf_counter() - started
        peak = renderer.peak_mb
        by_page: dict[str, list[float]] = {p: [] for p in PAGES}
        waits: dict[str, float] = {}
        for _ in range(WARM_ROUNDS):
            for path in PAGES:
                wait_for = None if path == "/js/fetched" else ".price"
                started = time.perf_counter()
                done = renderer.render(
                    f"{site.url}{path}", wait_for=wait_for, timeout_s=15, max_bytes=1 << 22
                )
                by_page[path].append(time.perf_counter() - started)
                waits[path] = float(done.elapsed_ms)
                peak = max(peak, renderer.peak_mb)
        launch_s = _launch_s()
    finally:
        renderer.close()
        site.close()
    lines = [
        "## Rendering (pages built by JavaScript)",
        "",
        "The render function's path on this machine (`bench/render.py`): the browser of "
        f"`@sparticuz/chromium` ({size_mb:.0f} MB compressed in the asset), pages from the "
        "tests' loopback site through the SSRF proxy.",
        "",
        "| step | time |",
        "|---|---:|",
        f"| unpack the browser (brotli, once per execution environment) | {unpack_s:.2f} s |",
        f"| launch and render the first page (browser already unpacked) | {first_s:.2f} s |",
        f"| a browser's launch to its first answer, and its kill (part of every render), "
        f"median of 5 | {launch_s * 1000:.0f} ms |",
    ]
    for path, times in by_page.items():
        what = {
            "/js/fetched": "a shell filled from a fetch (waits for an idle network)",
            "/js/delayed": "a shell filled after a 300 ms timer (waits for its selector)",
            "/js/routed": "a client-side route (waits for its selector)",
        }[path]
        lines.append(
            f"| {what}, warm, median of {WARM_ROUNDS} | {statistics.median(times) * 1000:.0f} ms |"
        )
    lines += [
        "",
        f"Peak memory of a render's browser process over {1 + WARM_ROUNDS * len(PAGES)} "
        f"renders: {peak:.0f} MB (one process: `--single-process`; one browser a render). The network-idle wait is "
        "500 ms after the last request, so a page waited for by its selector is read sooner. "
        "The function's memory (`functions.render.memory_mb`, 2,048 by default) leaves room "
        "for heavier pages; its timeout (30 s) covers a render's limit (15 s) and a cold start.",
    ]
    return "\n".join(lines)
