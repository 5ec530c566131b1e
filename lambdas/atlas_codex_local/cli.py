"""The ``atlas-codex`` command: local mode and offline tools."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path


def _local_up(args: argparse.Namespace) -> int:
    from atlas_codex_local.local import LocalModeError, install_signal_handlers, up

    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        up(
            port=args.port,
            demo=not args.no_demo,
            allow_fetch=args.allow_fetch,
            info_file=args.info_file,
            stop=stop,
            monthly_budget=args.monthly_budget,
            verbose=args.verbose,
        )
    except LocalModeError as exc:
        print(f"atlas-codex local up: {exc}", file=sys.stderr)
        return 1
    print("Stopped.", flush=True)
    return 0


def _dollars(value: str) -> float:
    try:
        amount = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of dollars: {value!r}") from None
    if not 0 < amount < float("inf"):
        raise argparse.ArgumentTypeError(f"a budget is more than $0: {value!r}")
    return amount


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


class _Unreadable(Exception):
    """A page file the offline commands refuse, as the service would refuse the page."""


def _page_bytes(name: str) -> bytes:
    """A page file's bytes (``-``: standard input), refused like a fetched page: larger than
    the fetcher's limit, or not a document (binary). A gzipped file is unpacked, bounded."""
    import gzip

    from atlas_codex.engine.pages.fetch import FetchLimits, Page, not_a_document

    limit = FetchLimits().max_bytes
    if name == "-":
        body = sys.stdin.buffer.read(limit + 1)
    else:
        path = Path(name)
        size = path.stat().st_size
        if size > limit:
            raise _Unreadable(f"{size:,} bytes; pages over {limit:,} bytes are refused")
        body = path.read_bytes()
    if len(body) > limit:
        raise _Unreadable(f"more than {limit:,} bytes; pages over that are refused")
    if body[:2] == b"\x1f\x8b":  # a page saved gzipped
        try:
            with gzip.GzipFile(fileobj=__import__("io").BytesIO(body)) as packed:
                body = packed.read(limit + 1)
        except (OSError, EOFError) as exc:
            raise _Unreadable(f"not a readable gzip file: {exc}") from None
        if len(body) > limit:
            raise _Unreadable(f"unpacks to more than {limit:,} bytes; pages over that are refused")
    head = body[:1024].decode("latin-1")
    why = not_a_document(Page(url="", status=200, content_type="", text=head, encoding=""))
    if why is not None:
        raise _Unreadable(f"{why}; only web pages are read")
    return body


def _markdown(args: argparse.Namespace) -> int:
    from atlas_codex.engine.pages.fetch import decode
    from atlas_codex.engine.reading.consensus import main_markdown
    from atlas_codex.engine.reading.markdown import to_markdown

    status = 0
    for name in args.files:
        try:
            # The page's own <meta charset>, else UTF-8 (or Latin-1), as the fetcher reads it.
            html, _ = decode(_page_bytes(name), "")
        except OSError as exc:
            print(f"atlas-codex markdown: {name}: {exc.strerror}", file=sys.stderr)
            status = 1
            continue
        except _Unreadable as exc:
            print(f"atlas-codex markdown: {name}: {exc}", file=sys.stderr)
            status = 1
            continue
        started = time.perf_counter()
        base = args.base_url or ""
        markdown = main_markdown(html, base) if args.main_content else to_markdown(html, base)
        ms = (time.perf_counter() - started) * 1000
        if args.jsonl:
            print(
                json.dumps(
                    {"file": name, "markdown": markdown, "ms": round(ms, 3)}, ensure_ascii=False
                )
            )
        else:
            if len(args.files) > 1:
                print(f"<!-- {name} -->")
            print(markdown)
    return status


def _read_json(path: str, what: str) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _Refused(f"{what} {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Refused(f"{what} {path} is not JSON: {exc}") from None


class _Refused(Exception):
    """Bad input to an offline command: its message, exit status 2."""


def _extract_page(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from atlas_codex.engine.offline import extract_page
    from atlas_codex.engine.pages.fetch import decode
    from atlas_codex.extraction.request import JobRequest

    command = "atlas-codex extract-page"
    urls: list[str] = args.url
    if len(urls) not in (1, len(args.files)):
        print(
            f"{command}: give --url once (every file) or once per file, in order "
            f"({len(args.files)} files, {len(urls)} URLs)",
            file=sys.stderr,
        )
        return 2
    try:
        asks: dict[str, object] = {}
        if args.schema:
            asks["json_schema"] = _read_json(args.schema, "--schema")
        if args.selectors:
            asks["selectors"] = _read_json(args.selectors, "--selectors")
        requests = [
            JobRequest.model_validate({"urls": [url], **asks}) for url in dict.fromkeys(urls)
        ]
    except _Refused as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        print(f"{command}: {where}: {first['msg']}", file=sys.stderr)
        return 2
    by_url = {r.urls[0]: r for r in requests}
    status = 0
    for n, name in enumerate(args.files):
        try:
            body = _page_bytes(name)
        except OSError as exc:
            print(f"{command}: {name}: {exc.strerror}", file=sys.stderr)
            status = 1
            continue
        except _Unreadable as exc:
            print(f"{command}: {name}: {exc}", file=sys.stderr)
            status = 1
            continue
        html, _ = decode(body, "")
        request = by_url[urls[n] if len(urls) > 1 else urls[0]]
        report = extract_page(html, request, file=name, view=args.view)
        if args.jsonl:
            print(report.model_dump_json())
            continue
        if len(args.files) > 1:
            print(f"<!-- {name} -->")
        print(json.dumps(report.data, ensure_ascii=False, indent=2))
        if report.missing:
            print("missing: " + ", ".join(report.missing))
        print(
            f"--- the {report.view} view: {report.tokens:,} tokens "
            f"(the full page: {report.full_page_tokens:,}) ---"
        )
        print(report.markdown)
    return status


def _extract(args: argparse.Namespace) -> int:
    from atlas_codex_local.client import ClientError, build_request, endpoint_and_key, quote, run

    try:
        endpoint, key = endpoint_and_key(args.endpoint, args.api_key, args.info_file)
        body = build_request(
            args.url,
            schema=args.schema,
            selectors=args.selectors,
            instruction=args.instruction,
            crawl_pages=args.crawl_pages,
            crawl_depth=args.crawl_depth,
            max_cost_usd=args.max_cost,
            include_evidence=args.evidence,
        )
        if args.quote:
            return quote(body, endpoint=endpoint, api_key=key)
        return run(body, endpoint=endpoint, api_key=key, wait=args.wait)
    except ClientError as exc:
        print(f"atlas-codex extract: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """Every ``atlas-codex`` command and its arguments (the runbook's commands are checked
    against it)."""
    parser = argparse.ArgumentParser(
        prog="atlas-codex", description="Atlas Codex: web data extraction."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the service on this machine")
    local_sub = local.add_subparsers(dest="action", required=True)
    up = local_sub.add_parser(
        "up", help="start the local stack (AWS emulator, API, workers, demo site)"
    )
    up.add_argument(
        "--port", type=int, default=8000, help="API port (0 for a free one; default 8000)"
    )
    up.add_argument(
        "--no-demo", action="store_true", help="do not serve the demo site or run the demo job"
    )
    up.add_argument(
        "--allow-fetch",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="let jobs fetch this private host:port (repeatable; metadata addresses never)",
    )
    up.add_argument(
        "--info-file",
        metavar="PATH",
        help="write api_url, api_key, aws_endpoint_url, stage, demo_url as JSON",
    )
    up.add_argument(
        "--monthly-budget",
        type=_dollars,
        metavar="USD",
        help="the monthly model budget for this run (default: $ATLAS_MONTHLY_BUDGET_USD, "
        "else cdk.json's)",
    )
    up.add_argument(
        "--verbose",
        action="store_true",
        help="also show metrics (EMF), JSON logs, warnings and the emulator's output here "
        "(otherwise they go to the run's log files, named in the banner)",
    )
    up.set_defaults(run=_local_up)

    extract = sub.add_parser("extract", help="extract from a URL through an Atlas Codex API")
    extract.add_argument("url")
    extract.add_argument("--schema", metavar="FILE", help="a JSON schema of the data to extract")
    extract.add_argument("--selectors", metavar="FILE", help="a selector schema (CSS) as JSON")
    extract.add_argument("--instruction", metavar="TEXT", help="what to extract, in plain language")
    extract.add_argument(
        "--crawl-pages", type=int, metavar="N", help="crawl up to N pages of the site"
    )
    extract.add_argument(
        "--crawl-depth", type=int, metavar="D", help="follow links up to D levels deep"
    )
    extract.add_argument(
        "--wait", action="store_true", help="queue the job and follow it to the end"
    )
    extract.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="stop the job before its model spend could pass USD (it fails with its partial result)",
    )
    extract.add_argument(
        "--evidence", action="store_true", help="show each field's evidence in the result"
    )
    extract.add_argument(
        "--quote",
        action="store_true",
        help="only print what the job would cost (pages are fetched, no model is called)",
    )
    extract.add_argument("--endpoint", help="the API URL (default: $ATLAS_API_URL or --info-file)")
    extract.add_argument("--api-key", help="the API key (default: $ATLAS_API_KEY or --info-file)")
    extract.add_argument("--info-file", help="the file `atlas-codex local up --info-file` wrote")
    extract.set_defaults(run=_extract)

    markdown = sub.add_parser("markdown", help="convert HTML files to markdown")
    markdown.add_argument(
        "files", nargs="+", metavar="FILE", help="HTML files (- reads standard input)"
    )
    markdown.add_argument(
        "--main-content", action="store_true", help="drop navigation, footers, banners and the like"
    )
    markdown.add_argument(
        "--jsonl", action="store_true", help='one line per file: {"file", "markdown", "ms"}'
    )
    markdown.add_argument(
        "--base-url",
        type=_http_url,
        metavar="URL",
        help="the page's address: relative links are made absolute against it",
    )
    markdown.set_defaults(run=_markdown)

    page = sub.add_parser(
        "extract-page",
        help="run the deterministic strategies on saved HTML and show what a model would read",
        description="Offline: no service, no network. Selectors (direct CSS) or a JSON schema "
        "(JSON-LD, microdata, OpenGraph, meta tags) run on each file; the text a model would "
        "read for the job is printed with its tokens beside the full page's. Gzipped files "
        "are read as such.",
    )
    page.add_argument(
        "files", nargs="+", metavar="FILE", help="saved pages (- reads standard input)"
    )
    page.add_argument(
        "--url",
        type=_http_url,
        action="append",
        required=True,
        metavar="URL",
        help="the page's address (once for every file, or once per file in order)",
    )
    asks = page.add_mutually_exclusive_group(required=True)
    asks.add_argument("--schema", metavar="S.json", help="a JSON schema of the data")
    asks.add_argument("--selectors", metavar="S.json", help="CSS selectors of the data")
    page.add_argument(
        "--view",
        choices=("model", "main", "full"),
        default="model",
        help="the text shown: what a model reads for the job (default), the main content, "
        "or the full page",
    )
    page.add_argument(
        "--jsonl",
        action="store_true",
        help='one line per file: {"file", "url", "data", "evidence", "missing", "view", '
        '"markdown", "tokens", "full_page_tokens"}',
    )
    page.set_defaults(run=_extract_page)

    from atlas_codex_local import migrate, ops, validate

    ops.register(sub)
    migrate.register(sub)
    validate.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = f"atlas-codex {args.command}"
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a path that cannot be read or written: one line, never a trace
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        import httpx

        if isinstance(exc, httpx.TransportError):
            target = str(exc.request.url) if exc._request is not None else "the API"
            print(
                f"{command}: cannot reach {target}: {exc or type(exc).__name__} "
                "(is the service running? `make run` starts it locally)",
                file=sys.stderr,
            )
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
