"""A file never chooses code to import: the module of a "module:EnvId" that a policy's note or
a run's config.json records is imported only when the user names that id with --env; and a
user's module that exits or is interrupted while importing stops the script in one line."""

import json
import textwrap
from pathlib import Path

import gymnasium as gym
from test_cli import assert_one_line_error

from reinforce_tf.config import TrainConfig
from reinforce_tf.policy import build_policy
from reinforce_tf.training.run_folder import config_as_json
from reinforce_tf.training.saving import save_policy

# A module that leaves a marker file beside itself when imported (its env is CartPole-v1,
# already registered): the marker is the proof that a script ran its code.
MARKING = """
from pathlib import Path

Path(__file__).with_name("imported.marker").write_text("imported")
"""
MARKED_ENV = "marking_env:CartPole-v1"


def user_module(tmp_path: Path, name: str, source: str) -> tuple[Path, Path]:
    """Writes module `name` in tmp_path/modules (for PYTHONPATH) and returns that folder and
    an empty working folder tmp_path/work, kept apart so the work folder shows what a
    script wrote."""
    modules, work = tmp_path / "modules", tmp_path / "work"
    modules.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    (modules / f"{name}.py").write_text(textwrap.dedent(source))
    return modules, work


def marked_policy(tmp_path: Path) -> tuple[Path, Path]:
    """A CartPole policy whose note records MARKED_ENV, in the work folder; the modules folder."""
    modules, work = user_module(tmp_path, "marking_env", MARKING)
    cartpole = gym.make("CartPole-v1")
    policy = build_policy(cartpole.observation_space, cartpole.action_space, (4,))
    save_policy(policy, work / "policy.keras", {"env": MARKED_ENV})
    return modules, work


def refusal(source: str) -> str:
    return (
        f"--env: {source} records the env {MARKED_ENV!r}, which would import the module "
        "'marking_env'; a file never chooses code to import: if you trust that module, add "
        f"--env={MARKED_ENV}"
    )


def test_evaluate_imports_the_notes_module_only_when_env_names_it(script, tmp_path):
    modules, work = marked_policy(tmp_path)
    args = ("evaluate.py", "--episodes=1", "--mode=greedy")
    done = script(*args, cwd=work, pythonpath=str(modules))
    assert done.returncode == 2
    assert_one_line_error(done, refusal("the policy file"))
    assert not (modules / "imported.marker").exists()
    done = script(*args, f"--env={MARKED_ENV}", cwd=work, pythonpath=str(modules))
    assert done.returncode == 0, done.stderr
    assert (modules / "imported.marker").exists()
    assert done.stdout.startswith(f"{MARKED_ENV}, 1 episodes, greedy actions: return ")


def test_export_imports_the_notes_module_only_when_env_names_it(script, tmp_path):
    modules, work = marked_policy(tmp_path)
    args = ("export.py", "--format=saved_model", "--output=exported")
    done = script(*args, cwd=work, pythonpath=str(modules))
    assert done.returncode == 2
    assert_one_line_error(done, refusal("the policy file"))
    assert not (modules / "imported.marker").exists()
    assert sorted(path.name for path in work.iterdir()) == ["policy.keras"]
    done = script(*args, f"--env={MARKED_ENV}", cwd=work, pythonpath=str(modules))
    assert done.returncode == 0, done.stderr
    assert (modules / "imported.marker").exists()
    assert (work / "exported" / "saved_model.pb").is_file()


def test_resume_imports_the_configs_module_only_when_env_names_it(script, tmp_path):
    modules, work = user_module(tmp_path, "marking_env", MARKING)
    run = work / "run"
    run.mkdir()
    # A run stopped before its first checkpoint: only its config.json; it resumes from step 0.
    config = TrainConfig.for_env(MARKED_ENV, total_steps=200, logdir="run", save_path="p.keras")
    (run / "config.json").write_text(json.dumps(config_as_json(config)))
    args = ("train.py", "--resume", "--logdir=run")
    done = script(*args, cwd=work, pythonpath=str(modules))
    assert done.returncode == 2
    assert_one_line_error(done, refusal("'run/config.json'"))
    assert not (modules / "imported.marker").exists()
    assert sorted(path.name for path in work.iterdir()) == ["run"]
    assert [path.name for path in run.iterdir()] == ["config.json"]
    done = script(*args, f"--env={MARKED_ENV}", cwd=work, pythonpath=str(modules))
    assert done.returncode == 0, done.stderr
    assert (modules / "imported.marker").exists()
    assert (work / "p.keras").is_file()


def test_a_module_exiting_while_imported_is_one_line_and_writes_nothing(script, tmp_path):
    modules, work = user_module(tmp_path, "exits_env", "import sys\n\nsys.exit(0)\n")
    done = script(
        "train.py", "--env=exits_env:Toy-v0", "--total_steps=200", cwd=work, pythonpath=str(modules)
    )
    assert done.returncode == 2
    assert_one_line_error(
        done, "--env: importing module 'exits_env' of 'exits_env:Toy-v0' called sys.exit(0)"
    )
    assert list(work.iterdir()) == []


def test_ctrl_c_while_a_module_imports_is_the_usual_interruption(script, tmp_path):
    source = "import os\nimport signal\n\nos.kill(os.getpid(), signal.SIGINT)\n"
    modules, work = user_module(tmp_path, "ctrl_c_env", source)
    done = script(
        "train.py",
        "--env=ctrl_c_env:Toy-v0",
        "--total_steps=200",
        cwd=work,
        pythonpath=str(modules),
    )
    assert done.returncode == 130
    assert done.stderr.strip() == "interrupted; nothing saved since the last checkpoint"
    assert list(work.iterdir()) == []
