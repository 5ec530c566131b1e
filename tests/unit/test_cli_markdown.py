"""`atlas-codex markdown`: many files in one process, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_codex_local.cli import main

ARTICLE = (
    "<html><head><meta charset='iso-8859-1'><title>Bürgerhaus</title></head><body>"
    "<nav><a href='/'>Start</a> <a href='/kontakt'>Kontakt</a></nav>"
    "<article><h1>Das Bürgerhaus öffnet wieder</h1>"
    + "<p>Nach zwei Jahren Umbau öffnet das Bürgerhaus am Montag, und die Stadt lädt ein. </p>"
    * 4
    + "<p><a href='/programm'>Das Programm</a></p></article>"
    "<footer>Impressum</footer></body></html>"
)


def test_files_become_one_json_line_each_with_links_made_absolute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "a.html"
    first.write_bytes(ARTICLE.encode("iso-8859-1"))  # the page says so in its <meta charset>
    second = tmp_path / "b.html"
    second.write_text("<p>Plain <b>text</b></p>", encoding="utf-8")
    code = main(
        [
            "markdown",
            "--main-content",
            "--jsonl",
            "--base-url",
            "https://stadt.example/news/1",
            str(first),
            str(second),
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(first), str(second)]
    assert "# Das Bürgerhaus öffnet wieder" in lines[0]["markdown"]
    assert "Das Programm" in lines[0]["markdown"]  # main content: links as their text
    assert "Kontakt" not in lines[0]["markdown"]
    assert "Impressum" not in lines[0]["markdown"]
    assert lines[1]["markdown"].strip() == "Plain text"
    code = main(["markdown", "--base-url", "https://stadt.example/news/1", str(first)])
    assert code == 0
    assert "[Das Programm](https://stadt.example/programm)" in capsys.readouterr().out
    assert all(line["ms"] >= 0 for line in lines)


def test_full_page_mode_keeps_everything_and_a_missing_file_fails_without_stopping_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "a.html"
    page.write_text(ARTICLE, encoding="utf-8")
    code = main(["markdown", str(tmp_path / "missing.html"), str(page)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "missing.html" in err
    assert "Impressum" in out
    assert "Kontakt" in out


def test_a_base_url_that_is_not_http_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["markdown", "--base-url", "file:///etc", str(tmp_path / "a.html")])
    assert exit_.value.code == 2
    assert "not an http(s) URL" in capsys.readouterr().err
