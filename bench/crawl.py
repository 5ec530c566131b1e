"""Crawl throughput: our crawler and Scrapy on the same generated 600-page site on loopback,
with the same concurrency, each in its own process (the site in a third one)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import loopback

ROOT = Path(__file__).resolve().parent.parent
PAGES = 600
CONCURRENCY = 8


def page(n: int) -> bytes:
    links = sorted(
        {(n * 2 + 1) % PAGES, (n * 2 + 2) % PAGES, (n * 7 + 3) % PAGES, (n + 1) % PAGES, 0}
    )
    anchors = "".join(f"<li><a href='/p/{i}'>Page {i}</a></li>" for i in links)
    body = (
        f"<h1>Page {n}</h1>" + "<p>Some text about this page, long enough to look real. </p>" * 20
    )
    return f"<!doctype html><html><head><title>Page {n}</title></head><body>{body}<ul>{anchors}</ul></body></html>".encode()


def route(path: str) -> tuple[int, bytes]:
    parts = path.strip("/").split("/")
    ok = len(parts) == 2 and parts[0] == "p" and parts[1].isdigit() and int(parts[1]) < PAGES
    return (200, page(int(parts[1]))) if ok else (404, b"not found")


def ours(port: int) -> dict[str, float]:
    from atlas_codex.engine.pages.crawler import Crawler
    from atlas_codex.engine.pages.fetch import Fetcher, FetchLimits
    from atlas_codex.extraction.request import CrawlOptions
    from atlas_codex.ground.netguard import NetPolicy

    fetcher = Fetcher(
        policy=NetPolicy.from_host_ports([f"127.0.0.1:{port}"]),
        limits=FetchLimits(per_host_concurrency=CONCURRENCY),
    )
    options = CrawlOptions(max_pages=PAGES, max_depth=20, follow_pagination=False)
    started = time.perf_counter()
    pages = sum(
        1
        for p in Crawler(fetcher, options, respect_robots=False, concurrency=CONCURRENCY).crawl(
            [f"http://127.0.0.1:{port}/p/0"]
        )
        if p.page is not None
    )
    return {"pages": pages, "seconds": time.perf_counter() - started}


def scrapy_crawl(port: int) -> dict[str, float]:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    seen: list[str] = []

    class Everything(scrapy.Spider):
        name = "everything"

        def parse(self, response: Any) -> Any:
            seen.append(response.url)
            yield from response.follow_all(css="a")

    process = CrawlerProcess(
        settings={
            "LOG_LEVEL": "ERROR",
            "ROBOTSTXT_OBEY": False,
            "CONCURRENT_REQUESTS": CONCURRENCY,
            "CONCURRENT_REQUESTS_PER_DOMAIN": CONCURRENCY,
            "DOWNLOAD_DELAY": 0,
            "CLOSESPIDER_PAGECOUNT": PAGES,
            "TELNETCONSOLE_ENABLED": False,
        }
    )
    process.crawl(Everything, start_urls=[f"http://127.0.0.1:{port}/p/0"])
    started = time.perf_counter()
    process.start()
    return {"pages": len(seen), "seconds": time.perf_counter() - started}


def _in_subprocess(which: str, port: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.crawl", which, str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run() -> str:
    server, port = loopback.start(route)
    try:
        results = {name: _in_subprocess(name, port) for name in ("ours", "scrapy")}
    finally:
        server.terminate()
    rate = {k: v["pages"] / v["seconds"] for k, v in results.items()}
    return "\n".join(
        [
            "## Crawl throughput",
            "",
            f"A generated {PAGES}-page site on loopback (its own process); each crawler in its own process, "
            f"concurrency {CONCURRENCY}, robots.txt off for both, same start page.",
            "",
            "| crawler | pages | seconds | pages/s |",
            "|---|---:|---:|---:|",
            f"| atlas-codex crawler | {results['ours']['pages']:.0f} | {results['ours']['seconds']:.2f} | {rate['ours']:.0f} |",
            f"| Scrapy | {results['scrapy']['pages']:.0f} | {results['scrapy']['seconds']:.2f} | {rate['scrapy']:.0f} |",
            "",
            f"Target: at least Scrapy's pages/s. Measured: **{rate['ours'] / rate['scrapy']:.2f}x** Scrapy.",
        ]
    )


if __name__ == "__main__":
    which, port_text = sys.argv[1], sys.argv[2]
    sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
    print(json.dumps(ours(int(port_text)) if which == "ours" else scrapy_crawl(int(port_text))))
