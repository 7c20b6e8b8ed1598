"""Shared test helpers: running the scripts as a user would, importing a benchmarks/ module."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# The threading the tools give TensorFlow (reinforce_tf/cli/common.py), set before any test
# runs an op: a run in this process must match the same run in a script's process bit for bit.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def run_script(
    name: str,
    *args: str,
    cwd: Path,
    timeout: float = 300,
    folder: str = "scripts",
    pythonpath: str | None = None,
) -> subprocess.CompletedProcess:
    """Runs `python <folder>/<name> args...` in `cwd` and returns the finished process;
    `pythonpath` goes before the inherited PYTHONPATH (e.g. "." for a user's env module)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(REPO / folder / name), *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_python(code: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh Python process in `cwd`, as a user pastes a snippet."""
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def benchmark_module(name: str):
    """Imports benchmarks/<name>.py (a script folder, not a package; its modules import
    each other by name, as when a script there runs)."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs_in_plain_keras(
    path: Path, observations: np.ndarray, cwd: Path, output: str | None = None
) -> np.ndarray:
    """Loads the policy file in a fresh process with Keras alone and returns its outputs
    (the entry `output` of a dict of outputs, such as a Gaussian policy's "mean").

    Fails if that process ever imports reinforce_tf.
    """
    np.save(cwd / "observations.npy", observations)
    code = (
        "import sys, json, keras, numpy as np\n"
        f"m = keras.saving.load_model({str(path)!r})\n"
        f"p = m(np.load({str(cwd / 'observations.npy')!r}))\n"
        f"p = np.asarray(p[{output!r}] if {output!r} else p)\n"
        "assert not any(name.startswith('reinforce_tf') for name in sys.modules)\n"
        "print(json.dumps(p.tolist()))\n"
    )
    done = run_python(code, cwd)
    assert done.returncode == 0, done.stderr
    return np.array(json.loads(done.stdout.splitlines()[-1]))


@pytest.fixture
def script():
    return run_script
