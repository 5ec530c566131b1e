"""Every dev page of the HTML collections read side by side in threads, as the worker runs
its jobs: parse, main content (both readers), the model's view and its token count, and the
deterministic strategies (``extract_page``). Run as a program so that a crash in native code
ends this process, not the test runner; it prints one JSON line: pages, rounds, seconds, and
whether every threaded reading equals the sequential one.

``python -m tests.support.thread_stress THREADS ROUNDS [EVERY]``: ``EVERY`` > 1 reads every
n-th page only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from atlas_codex.engine.offline import extract_page
from atlas_codex.extraction.request import JobRequest
from bench.data import benchdata

REQUEST = JobRequest.model_validate(
    {
        "urls": ["https://shop.example/item/1"],
        "json_schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "price": {"type": "number"},
                "sku": {"type": "string"},
                "availability": {"type": "string"},
            },
        },
    }
)


def dev_pages(root: Path | None = None) -> list[str]:
    """The HTML of every dev page of the four HTML collections."""
    root = root or benchdata()
    found: list[Path] = []
    for folder in ("content-extraction/html", "news-articles/html", "product-pages/html"):
        found += sorted((root / folder).iterdir())
    found += sorted((root / "readability-pages/pages").glob("*/source.html"))
    pages = []
    for path in found:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        pages.append(raw.decode("utf-8", "replace"))
    return pages


def reading(html: str) -> str:
    """A digest of everything ``extract_page`` gives for the page."""
    report = extract_page(html, REQUEST)
    return hashlib.sha256(report.model_dump_json().encode()).hexdigest()


def main(argv: list[str]) -> int:
    threads, rounds = int(argv[0]), int(argv[1])
    every = int(argv[2]) if len(argv) > 2 else 1
    pages = dev_pages()[::every]
    started = time.monotonic()
    alone = [reading(html) for html in pages]
    sequential_s = time.monotonic() - started
    same = True
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(rounds):
            same = same and list(pool.map(reading, pages)) == alone
    threaded_s = time.monotonic() - started
    print(
        json.dumps(
            {
                "pages": len(pages),
                "threads": threads,
                "rounds": rounds,
                "sequential_s": round(sequential_s, 2),
                "threaded_s": round(threaded_s, 2),
                "same": same,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
