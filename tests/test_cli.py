"""The scripts as a user runs them: bad input gives one clean line and no file."""

import dataclasses
import signal
import subprocess
import sys
import time

import gymnasium as gym
import pytest
from conftest import REPO

from reinforce_tf.config import TrainConfig, flag_help
from reinforce_tf.policy import build_policy
from reinforce_tf.training.saving import save_policy

# Each kind of failure once, through the script: absl's parsing (type, enum, unknown flag,
# flagfile), the env, the output path, a field rule and a cross-field rule of the config,
# memory. Every field's own rule and message is checked in-process by tests/test_config.py.
BAD_TRAIN_FLAGS = [
    (["--env=NoSuchEnv-v0"], "--env: unknown environment id 'NoSuchEnv-v0'"),
    (["--env=Blackjack-v1"], "--env: observation space Tuple("),
    (["--env=FrozenLake-v1"], "--env: observation space Discrete(16) is not supported"),
    (["--gamma=1.5"], "--gamma: must be in [0, 1]; got 1.5"),
    (["--hidden_sizes=64,x"], "--hidden_sizes: must be a comma list of positive integers"),
    (["--update=sometimes"], "flag --update=sometimes: value should be one of"),
    (["--gamma=abc"], "flag --gamma=abc: could not convert string to float"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--save_path=policy.h5"], '--save_path: must be a path ending in ".keras"'),
    (["--save_path=missing/policy.keras"], "--save_path: folder 'missing' does not exist"),
    (
        ["--baseline=mean", "--update=episode"],
        "--baseline: must be none or value unless --update=batch with --batch_episodes >= 2",
    ),
    (["--hidden_sizes=100000,100000"], "--hidden_sizes: a network of these widths needs about"),
    (["--workers=2", "--ray_address=127.0.0.1:1"], "--ray_address: nothing answers at 127.0.0.1:1"),
    (["--workers=2", "--vectorization=async"], "--vectorization: must be sync with --workers"),
    (["--flagfile=missing.flags"], "--flagfile: cannot open it: [Errno 2]"),
    (["--flagfile=binary.flags"], "--flagfile: must be a text file of --flag=value lines"),
    # Any env, and the ways its id, module, kwargs or images can be wrong.
    (["--env=no_such_module:Toy-v0"], "--env: cannot import module 'no_such_module'"),
    (["--env=json:Toy-v0"], "--env: importing 'json' registered no environment 'Toy-v0'"),
    (['--env_kwargs={"length": 5'], "--env_kwargs: must be a JSON object such as"),
    (
        ['--env_kwargs={"colour": "red"}'],
        (
            "--env_kwargs: making 'CartPole-v1' with env_kwargs {'colour': 'red'} (preset none) "
            "failed: TypeError"
        ),
    ),
    (  # also: the ALE's start-up banner stays off stderr
        ["--env=ALE/Pong-v5", "--normalize_observations"],
        "--normalize_observations: must be off for image observations",
    ),
    (
        ["--env=MinAtar/Breakout-v1", "--torso=nature"],
        "--torso: the nature torso needs images of at least 36×36 pixels; the env's are 10×10",
    ),
]


def assert_one_line_error(done, expected):
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "flags, expected", BAD_TRAIN_FLAGS, ids=[" ".join(f[0]) for f in BAD_TRAIN_FLAGS]
)
def test_train_bad_input(script, tmp_path, flags, expected):
    # A small budget first, so a check that failed to fire ends quickly; later flags win.
    given = []
    if "--flagfile=binary.flags" in flags:
        (tmp_path / "binary.flags").write_bytes(b"\x00\xff\xfe--seed=1\n")
        given.append(tmp_path / "binary.flags")
    done = script("train.py", "--total_steps=1000", *flags, cwd=tmp_path)
    assert_one_line_error(done, expected)
    assert list(tmp_path.iterdir()) == given  # nothing written


def test_evaluate_missing_and_corrupt_policy(script, tmp_path):
    done = script("evaluate.py", "--policy=missing.keras", cwd=tmp_path)
    assert_one_line_error(done, "--policy: no such file: 'missing.keras'")
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04 truncated")
    done = script("evaluate.py", "--policy=corrupt.keras", cwd=tmp_path)
    assert_one_line_error(done, "--policy: 'corrupt.keras' is not a readable .keras model file")


def test_evaluate_bad_counts_and_spaces(script, tmp_path):
    cartpole = gym.make("CartPole-v1")
    policy = build_policy(cartpole.observation_space, cartpole.action_space, (4,))
    save_policy(policy, tmp_path / "policy.keras", {"env": "CartPole-v1"})
    done = script("evaluate.py", "--episodes=0", cwd=tmp_path)
    assert_one_line_error(done, "--episodes: must be an integer > 0; got 0")
    done = script("evaluate.py", "--seed=-3", cwd=tmp_path)
    assert_one_line_error(done, "--seed: must be an integer >= 0; got -3")
    done = script("evaluate.py", "--env=Acrobot-v1", cwd=tmp_path)
    assert_one_line_error(done, "--policy: was made for observations of size 4 and 2 action")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.keras"]


def test_train_flags_are_the_config_fields_with_their_help(script, tmp_path):
    done = script("train.py", "--helpfull", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""  # help asked for is no failure
    # absl wraps help at 80 columns (also after a hyphen): compare without whitespace.
    text = "".join(done.stdout.split())
    for field in dataclasses.fields(TrainConfig):
        # absl writes `--[no]name:` for a bool and `--name: <a|b|c>:` for an enum.
        name = f"[no]{field.name}" if field.type in (bool, bool | None) else field.name
        choices = "|".join(field.metadata["choices"])
        enum = f"<{choices}>:" if choices else ""
        assert f"--{name}:{enum}" + "".join(flag_help(field).split()) in text, field.name


def test_ctrl_c_while_starting_is_one_line(tmp_path):
    # SIGINT half a second in lands in the imports (TensorFlow's alone take seconds).
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), "--save_path=p.keras"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip() == "interrupted while starting; nothing was written"
    assert out == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv0, command",
    [
        ("/venv/bin/reinforce-tf-train", "reinforce-tf-train"),  # the console script
        (str(REPO / "reinforce_tf" / "cli" / "train.py"), "python -m reinforce_tf.cli.train"),
        ("scripts/train.py", "python scripts/train.py"),  # as typed in a checkout
    ],
)
def test_advice_repeats_the_command_the_user_ran(monkeypatch, argv0, command):
    from reinforce_tf.cli import common

    monkeypatch.setattr(sys, "argv", [argv0, "--resume"])
    assert common.invoked_as() == command
