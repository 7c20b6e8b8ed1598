"""Memory: peak resident set size of `scripts/train.py` runs, each in its own process."""

import os
import subprocess
import sys
from pathlib import Path

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"


def peak_rss_mib(env_id: str, steps: int, workdir: Path) -> float:
    """Peak RSS in MiB of `scripts/train.py` trained for `steps` env steps.

    `--target_return=inf`, so the run never stops early; the policy goes to `workdir`.

    Raises:
        RuntimeError: the run failed (with its stderr).
    """
    command = [
        sys.executable,
        str(TRAIN_SCRIPT),
        f"--env={env_id}",
        f"--total_steps={steps}",
        "--target_return=inf",
        f"--save_path={workdir / 'memory.keras'}",
    ]
    # stderr to a file, not a pipe: a pipe nobody reads while waiting could fill and block.
    with open(workdir / "memory.stderr", "w+") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        # wait4 rather than wait: it also returns the child's resource usage (ru_maxrss).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {stderr.read()}")
    return usage.ru_maxrss / 1024  # Linux reports KiB
