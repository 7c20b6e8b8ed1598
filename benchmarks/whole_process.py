"""`scripts/train.py` as a user runs it, each run in its own process: wall seconds from
process start to exit (TensorFlow's import, tracing, training, saving) and peak RSS."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"


class Process(NamedTuple):
    seconds: float  # wall time from process start to exit
    peak_rss_mib: float  # the process's peak resident set size


def run_train(flags: list[str], workdir: Path) -> Process:
    """Runs `python scripts/train.py FLAGS` in `workdir` and measures it.

    Raises:
        RuntimeError: the run failed (with its stderr).
    """
    command = [sys.executable, str(TRAIN_SCRIPT), *flags]
    # stderr to a file, not a pipe: a pipe nobody reads while waiting could fill and block.
    with open(workdir / "train.stderr", "w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr)
        # wait4 rather than wait: it also returns the child's resource usage (ru_maxrss).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {stderr.read()}")
    return Process(seconds, usage.ru_maxrss / 1024)  # Linux reports KiB


def peak_rss_mib(env_id: str, steps: int, workdir: Path) -> float:
    """Peak RSS in MiB of a run of `steps` env steps that never stops early."""
    flags = [f"--env={env_id}", f"--total_steps={steps}", "--target_return=inf"]
    folder = f"memory_{steps}"  # one run folder per length: a folder holding a run is refused
    return run_train([*flags, f"--save_path={folder}.keras", f"--logdir={folder}"], workdir)[1]


def start_to_exit_seconds(env_id: str, seed: int, steps: int, workdir: Path) -> float:
    """Wall seconds of the quick start's command for `env_id` and `seed` (its defaults, a run
    folder, stopping at the target or after `steps` env steps), process start to exit."""
    flags = [f"--env={env_id}", f"--seed={seed}", f"--total_steps={steps}"]
    folder = f"startup_{seed}"
    return run_train([*flags, f"--save_path={folder}.keras", f"--logdir={folder}"], workdir)[0]
