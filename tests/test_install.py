"""The package as a user installs it: the wheel with no extras, in a fresh venv, used from a
folder that is not the checkout. It pulls the core dependencies and nothing else, its console
scripts train and save a policy that plain Keras loads, and a feature whose extra is missing
is one line naming the extra, with nothing written.

Slow (about a minute and a half: the venv's install of TensorFlow, from pip's cache once
`pip install -r requirements.txt` has run), so it is marked slow; `python -m pytest` runs it.
"""

import json
import os
import subprocess
import sys
import venv

import pytest
from conftest import REPO

CORE = {"tensorflow", "tensorboard", "gymnasium", "numpy", "absl-py"}
EXTRAS_ONLY = {
    "ray",
    "onnx",
    "onnxruntime",
    "tf2onnx",
    "ai-edge-litert",
    "ale-py",
    "minatar",
    "opencv-python-headless",
    "moviepy",
    "pygame",
    "matplotlib",
    "mujoco",
}


def _run(*command, cwd, timeout=600) -> subprocess.CompletedProcess:
    # A clean environment: no PYTHONPATH pointing into the checkout.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, a work folder outside the checkout) with the wheel installed."""
    root = tmp_path_factory.mktemp("install")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", "wheel", REPO, cwd=root
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "wheel").glob("reinforce_tf-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin = root / "venv" / "bin"
    done = _run(bin / "pip", "install", "-q", wheel, cwd=root)
    assert done.returncode == 0, done.stderr
    work = root / "work"
    work.mkdir()
    return bin, work


@pytest.mark.slow
@pytest.mark.xdist_group("install")  # one venv, on one worker
def test_the_core_install_has_the_core_dependencies_and_no_extra(installed):
    bin, work = installed
    listed = _run(bin / "pip", "list", "--format=json", cwd=work)
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert CORE <= names
    assert not names & EXTRAS_ONLY, names & EXTRAS_ONLY


@pytest.mark.slow
@pytest.mark.xdist_group("install")  # one venv, on one worker
def test_the_console_script_trains_cartpole_and_plain_keras_loads_the_policy(installed):
    bin, work = installed
    done = _run(bin / "reinforce-tf-train", "--logdir=run", cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "reached the target" in done.stdout
    assert (work / "policy.keras").is_file()
    code = (
        "import keras, numpy as np\n"
        "policy = keras.saving.load_model('policy.keras')\n"
        "print(policy(np.zeros((1, 4), np.float32)).numpy().sum())\n"
    )
    loaded = _run(bin / "python", "-c", code, cwd=work)
    assert loaded.returncode == 0, loaded.stderr
    assert abs(float(loaded.stdout.split()[-1]) - 1.0) < 1e-5  # probabilities of 2 actions
    # The module form of the same tool, on a short budget.
    done = _run(
        bin / "python", "-m", "reinforce_tf.cli.train", "--total_steps=2000", "--save_path=p.keras",
        "--logdir=run2", cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and (work / "p.keras").is_file()


@pytest.mark.slow
@pytest.mark.xdist_group("install")  # one venv, on one worker
@pytest.mark.parametrize(
    "tool, flags, message, written",
    [
        (
            "reinforce-tf-train",
            ["--workers=2", "--save_path=w.keras", "--logdir=w"],
            'error: --workers: needs Ray: install the extra reinforce_tf[ray] (in the checkout: pip install ".[ray]")',
            ["w.keras", "w"],
        ),
        (
            "reinforce-tf-export",
            ["--policy=policy.keras", "--format=onnx", "--output=p.onnx"],
            'error: --format: exporting to ONNX needs tf2onnx, onnx and onnxruntime: install the extra reinforce_tf[export] (in the checkout: pip install ".[export]")',
            ["p.onnx"],
        ),
    ],
)  # fmt: skip
def test_a_feature_without_its_extra_is_one_line_naming_it(
    installed, tool, flags, message, written
):
    bin, work = installed
    if not (work / "policy.keras").exists():  # the export needs a policy to refuse
        assert _run(bin / "reinforce-tf-train", "--total_steps=1000", cwd=work).returncode == 0
    done = _run(bin / tool, *flags, cwd=work)
    assert done.returncode == 2
    assert done.stderr == message + "\n"  # (the trainer's stdout has its summary line first)
    assert not any((work / name).exists() for name in written)
