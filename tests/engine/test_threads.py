"""Jobs side by side in one process: the page readers hold no state two threads can meet in.

trafilatura's own lxml parser is shared by every thread, and the trees it makes share one
unlocked dictionary; each thread now parses with its own (``consensus._thread_parser``). The
stress run reads every dev page in 8 threads in a child process (a crash in native
code ends that process with a signal, which the test reports), and every threaded reading
must equal the sequential one. ``make bench`` repeats it (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from atlas_codex.engine.reading import consensus
from bench.data import benchdata
from tests.support.thread_stress import dev_pages

BENCHDATA = benchdata()


def test_each_thread_parses_with_a_parser_of_its_own() -> None:
    seen: list[object] = []

    def take() -> None:
        seen.append(consensus._thread_parser())
        seen.append(consensus._thread_parser())

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen[0] is seen[1]  # one per thread, kept
    assert seen[2] is seen[3]
    assert seen[0] is not seen[2]  # never another thread's


def test_trafilatura_reads_a_tree_this_thread_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    import trafilatura

    given: list[object] = []
    real = trafilatura.extract

    def spy(source: object, **kwargs: object) -> object:
        given.append(source)
        return real(source, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trafilatura, "extract", spy)
    html = (
        "<html><body><article><h1>T</h1>"
        + "<p>Some words here.</p>" * 20
        + "</article></body></html>"
    )

    assert "Some words here." in consensus.trafilatura_markdown(html, "https://x.example/")
    assert not isinstance(given[0], str)  # a tree, never text for its shared parser


@pytest.mark.skipif(not BENCHDATA.exists(), reason="../shared/benchdata is not on this machine")
def test_every_dev_page_read_in_8_threads_crashes_nothing_and_reads_the_same() -> None:
    assert len(dev_pages()) > 400
    run = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "tests.support.thread_stress", "8", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert run.returncode == 0, f"the readers crashed ({run.returncode}): {run.stderr[-3000:]}"
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["same"] is True
