"""The CLI answers a person in one line and a non-zero exit, never a traceback: a service that
is not running, a path that cannot be read; and it reads pages as the service would (``-`` is
standard input, a page over the fetcher's limit or a binary file is refused)."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

import pytest

from atlas_codex.engine.pages.fetch import FetchLimits
from atlas_codex_local.cli import main


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_extract_against_a_stopped_service_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATLAS_API_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("ATLAS_API_KEY", "ack_abcdefghijkl_" + "x" * 43)

    code = main(["extract", "https://shop.example/item/1"])

    err = capsys.readouterr().err
    assert code == 2
    assert "cannot reach" in err
    assert "make run" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_markdown_reads_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"<h1>From a pipe</h1><p>Read from stdin.</p>"))
    monkeypatch.setattr(sys, "stdin", stdin)

    assert main(["markdown", "-"]) == 0
    assert "# From a pipe" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["markdown", "extract-page"])
def test_an_oversized_or_binary_page_is_refused_like_the_service_refuses_it(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.html"
    big.write_bytes(b"<p>" + b"x" * (FetchLimits().max_bytes + 10) + b"</p>")
    binary = tmp_path / "doc.pdf"
    binary.write_bytes(b"%PDF-1.7\n\x00\x01\x02binary")
    extra = ["--url", "https://shop.example/p", "--selectors", str(tmp_path / "s.json")]
    (tmp_path / "s.json").write_text('{"fields": {"t": {"selector": "h1"}}}')

    code = main([command, str(big), str(binary), *(extra if command == "extract-page" else [])])

    err = capsys.readouterr().err
    assert code == 1
    assert "pages over" in err
    assert "only web pages are read" in err
    assert "Traceback" not in err


def test_the_client_reads_the_local_run_s_info_file_when_nothing_else_names_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_codex_local import client

    info = tmp_path / "local-info.json"
    info.write_text('{"api_url": "http://127.0.0.1:8123/", "api_key": "ack_abcdefghijkl_key"}')
    monkeypatch.setattr(client, "INFO_FILE", info)
    monkeypatch.delenv("ATLAS_API_URL", raising=False)
    monkeypatch.delenv("ATLAS_API_KEY", raising=False)

    assert client.endpoint_and_key(None, None, None) == (
        "http://127.0.0.1:8123",
        "ack_abcdefghijkl_key",
    )
    monkeypatch.setenv("ATLAS_API_URL", "http://elsewhere.test")
    monkeypatch.setenv("ATLAS_API_KEY", "ack_zzzzzzzzzzzz_key")
    assert client.endpoint_and_key(None, None, None) == (
        "http://elsewhere.test",
        "ack_zzzzzzzzzzzz_key",
    )


@pytest.mark.parametrize(
    ("job", "code", "words"),
    [
        (
            {"job_id": "j1", "status": "completed", "quality": "complete"},
            0,
            "j1: completed, quality complete",
        ),
        (
            {
                "job_id": "j2",
                "status": "completed",
                "quality": "partial",
                "quality_reasons": ["9 of 12 pages were empty"],
            },
            3,
            "quality partial: 9 of 12 pages were empty",
        ),
        (
            {
                "job_id": "j3",
                "status": "failed",
                "error": {"code": "dns_error", "message": "no host"},
            },
            1,
            "j3: failed: dns_error: no host",
        ),
        ({"job_id": "j4", "status": "processing"}, 0, "still running"),
    ],
)
def test_the_cli_says_how_a_job_ended_and_exits_by_it(
    job: dict[str, object], code: int, words: str
) -> None:
    """A partial crawl is never printed like a success: its own exit code (3) and reasons."""
    from atlas_codex_local.client import summary

    line, exit_code = summary(job)
    assert exit_code == code
    assert words in line
