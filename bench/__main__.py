"""``make bench``: run every benchmark and write docs/PERFORMANCE.md.

``python -m bench [name ...]`` runs only the named benchmarks; the sections of the others
are kept from the previous docs/PERFORMANCE.md, so the file always describes everything.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    aws_use,
    capacity,
    cold_start,
    concurrency,
    content_extraction,
    crawl,
    dynamodb_calls,
    local_startup,
    product_facts,
    product_pages,
    quote_accuracy,
    quote_spread,
    readability_pages,
    reliability,
    render,
    synth,
    token_counts,
)

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "PERFORMANCE.md"

BENCHMARKS: dict[str, Callable[[], str]] = {
    "cold_start": cold_start.run,
    "dynamodb_calls": dynamodb_calls.run,
    "content_extraction": content_extraction.run,
    "readability_pages": readability_pages.run,
    "product_pages": product_pages.run,
    "product_facts": product_facts.run,
    "local_startup": local_startup.run,
    "crawl": crawl.run,
    "synth": synth.run,
    "token_counts": token_counts.run,
    "quote_spread": quote_spread.run,
    "quote_accuracy": quote_accuracy.run,
    "reliability": reliability.run,
    "aws_use": aws_use.run,
    "capacity": capacity.run,
    "render": render.run,
    "concurrency": concurrency.run,
}
_MARK = re.compile(
    r"<!-- bench:(?P<name>[a-z_]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->", re.S
)


def _previous_sections() -> dict[str, str]:
    if not OUTPUT.exists():
        return {}
    return {m["name"]: m["body"] for m in _MARK.finditer(OUTPUT.read_text())}


def _machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)"
    )
    args = parser.parse_args(argv)
    chosen = args.names or list(BENCHMARKS)
    sections = _previous_sections()
    for name in chosen:
        print(f"bench: running {name} ...", file=sys.stderr)
        sections[name] = BENCHMARKS[name]().rstrip() + "\n"
        print(sections[name])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand. Every figure is "
        "measured on the machine named below, in one run with its peers.",
        "",
        f"Last run: {when} on {_machine()}.",
        "",
    ]
    for name in BENCHMARKS:
        if name in sections:
            parts += [f"<!-- bench:{name} -->", sections[name] + f"<!-- /bench:{name} -->", ""]
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text("\n".join(parts))
    print(f"bench: wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
