"""Local mode's faults are loud and leave nothing behind: a ``local up`` killed with -9 takes
its AWS emulator with it, and an emulator that dies stops local mode with one line that
says so (no route answering 500, no stream of tracebacks)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from atlas_codex_local.local import spawn, wait_for_info

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def _emulator_of(pid: int) -> int:
    for child in _children(pid):
        if b"atlas_codex_local.emulator" in Path(f"/proc/{child}/cmdline").read_bytes():
            return child
    raise AssertionError("local up started no emulator")


def _gone(pid: int, within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie (dead, not yet reaped by init) counts as gone
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "gone"
    return f"state {fields[0]}, parent {fields[1]}"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_killing_local_up_takes_its_emulator_with_it(tmp_path: Path) -> None:
    proc = spawn(tmp_path / "info.json", "--no-demo", capture=True)
    wait_for_info(proc, tmp_path / "info.json")
    emulator = _emulator_of(proc.pid)

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    assert _gone(emulator, within_s=30), f"the emulator outlived local up: {_state(emulator)}"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_an_emulator_that_dies_stops_local_mode_with_one_line(tmp_path: Path) -> None:
    proc = spawn(tmp_path / "info.json", "--no-demo", capture=True)
    wait_for_info(proc, tmp_path / "info.json")

    os.kill(_emulator_of(proc.pid), signal.SIGKILL)

    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert output.count("the AWS emulator stopped") >= 1
    assert "Traceback" not in output
