"""Shared test helpers: running the scripts as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_script(
    name: str, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Runs `python scripts/<name> args...` in `cwd` and returns the finished process."""
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.fixture
def script():
    return run_script
