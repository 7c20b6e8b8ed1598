"""Checkpoints and resume: a killed run resumes to the same result; Ctrl-C stops cleanly;
damaged checkpoints, a busy folder and foreign files are refused or survived, never silently
discarded."""

import dataclasses
import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO

from reinforce_tf import InputError, TrainConfig, load_policy, train
from reinforce_tf.training import progress as progress_lib
from reinforce_tf.training import run_folder
from reinforce_tf.training.checkpoints import CHECKPOINT_FOLDER, Counters, RunCheckpoint
from reinforce_tf.training.episode_log import (
    EpisodeLog,
    EvaluationLog,
    read_episodes,
    read_evaluations,
)
from reinforce_tf.training.learner import make_agent
from reinforce_tf.training.run_folder import load_run_config, start_run_folder

# A run that never stops early, with a checkpoint (and an env reseed) every 1,500 steps.
RUN_FLAGS = ["--seed=3", "--total_steps=200000", "--checkpoint_every=1500", "--target_return=inf"]


def start_train(cwd, *flags):
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), *flags],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def wait_for_checkpoint(process, run, timeout=120.0):
    """Returns once `run` has a checkpoint (the process still running)."""
    index = run / CHECKPOINT_FOLDER / "checkpoint"
    deadline = time.monotonic() + timeout
    while not index.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def checkpoint_steps(run) -> list[int]:
    names = (run / CHECKPOINT_FOLDER).glob("ckpt-*.index")
    return sorted(int(name.stem.split("-")[1]) for name in names)


def test_sigkill_then_resume_replays_the_uninterrupted_run(script, tmp_path):
    run = tmp_path / "run"
    evaluations = ["--eval_every=20000", "--greedy_eval_every=40000", "--eval_episodes=2"]
    process = start_train(
        tmp_path, *RUN_FLAGS, *evaluations, f"--logdir={run}", "--save_path=resumed.keras"
    )
    wait_for_checkpoint(process, run)
    time.sleep(0.1)  # somewhere inside the next interval (the run takes seconds: 200,000 steps)
    assert process.poll() is None  # still training: the kill lands mid-run
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL  # killed before it finished
    # The checkpoint the index names: a kill between a checkpoint's files and the index's
    # update (likelier on a loaded machine) leaves a newer ckpt-N that resume rightly skips.
    killed_at = int(tf.train.latest_checkpoint(run / CHECKPOINT_FOLDER).rsplit("-", 1)[1])
    assert killed_at < 200_000
    # The killed trainer's pid stays in the lock file, but the kernel dropped its lock.
    assert (run / "lock").read_text() == f"{process.pid}\n"

    done = script("train.py", "--resume", f"--logdir={run}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"resuming at step {killed_at:,} of 200,000" in done.stdout

    # The same run, never interrupted, in this process.
    reference = train(
        TrainConfig.for_env(
            "CartPole-v1",
            seed=3,
            total_steps=200_000,
            checkpoint_every=1_500,
            target_return=float("inf"),
            eval_every=20_000,
            greedy_eval_every=40_000,
            eval_episodes=2,
            logdir=str(tmp_path / "reference"),
            save_path=str(tmp_path / "reference.keras"),
        ),
        progress=None,
    )
    # Every evaluation once, at the same steps with the same returns: rows the kill left past
    # the checkpoint were dropped and played again.
    resumed, expected = (
        read_evaluations(folder / "evaluations.csv") for folder in (run, tmp_path / "reference")
    )
    assert list(resumed["mode"]) == list(expected["mode"])
    modes = list(expected["mode"])  # one evaluation per multiple of its interval passed
    assert modes.count("sampled") == reference.steps // 20_000 >= 9
    assert modes.count("greedy") == reference.steps // 40_000
    for column in ("step", "mean", "std", "min", "max", "episodes"):
        np.testing.assert_array_equal(resumed[column], expected[column])
    resumed = read_episodes(run / "episodes.csv")
    expected = read_episodes(tmp_path / "reference" / "episodes.csv")
    # Every finished episode once, in order: none lost or doubled by the kill.
    np.testing.assert_array_equal(resumed["episode"], np.arange(1, reference.episodes + 1))
    for column in ("step", "return", "length"):
        np.testing.assert_array_equal(resumed[column], expected[column])
    assert resumed["step"][-1] == reference.steps
    # Weights, optimizer state and sampling all continued: the same final policy.
    weights = load_policy(tmp_path / "resumed.keras").get_weights()
    for got, want in zip(weights, load_policy(reference.save_path).get_weights()):
        np.testing.assert_array_equal(got, want)


def test_sigint_stops_cleanly_with_checkpoint_and_policy(script, tmp_path):
    run = tmp_path / "run"
    process = start_train(
        tmp_path, "--total_steps=1000000", "--checkpoint_every=1000", f"--logdir={run}"
    )
    wait_for_checkpoint(process, run)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr == ""  # no traceback
    lines = stdout.strip().splitlines()
    # "interrupted at step N; policy saved to policy.keras"
    steps = int(lines[-2].split("interrupted at step ")[1].split(";")[0].replace(",", ""))
    assert lines[-2].endswith("policy saved to policy.keras")
    assert lines[-1] == (
        f"checkpoint {run}/checkpoints/ckpt-{steps}; continue with: python "
        f"{REPO / 'scripts' / 'train.py'} --resume --logdir={run}"
    )
    assert max(checkpoint_steps(run)) == steps
    assert read_episodes(run / "episodes.csv")["step"][-1] == steps
    assert load_policy(tmp_path / "policy.keras").output_shape == (None, 2)

    # Resuming it with a budget already spent just writes the policy again.
    done = script("train.py", "--resume", f"--logdir={run}", f"--total_steps={steps}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"after {steps:,} steps" in done.stdout


def short_config(tmp_path, **overrides):
    values = {
        "total_steps": 1_000,
        "checkpoint_every": 500,
        "logdir": str(tmp_path / "run"),
        "save_path": str(tmp_path / "p.keras"),
        **overrides,
    }
    return TrainConfig(**values)


def test_resume_refuses_a_different_run_or_nothing_to_resume(tmp_path):
    with pytest.raises(InputError, match="nothing to resume in .*: it has no config.json"):
        train(short_config(tmp_path, resume=True), progress=None)
    train(short_config(tmp_path), progress=None)
    with pytest.raises(InputError, match="already holds a run; continue it with --resume"):
        train(short_config(tmp_path), progress=None)
    with pytest.raises(InputError, match="has env='CartPole-v1', this one 'Acrobot-v1'") as error:
        train(short_config(tmp_path, resume=True, env="Acrobot-v1"), progress=None)
    assert error.value.field == "resume"
    with pytest.raises(InputError, match="has seed=0, this one 1"):
        train(short_config(tmp_path, resume=True, seed=1), progress=None)
    # A larger budget is allowed: the run goes on from its counters.
    result = train(short_config(tmp_path, resume=True, total_steps=2_000), progress=None)
    assert 1_000 < result.steps <= 2_000
    episodes = read_episodes(tmp_path / "run" / "episodes.csv")
    np.testing.assert_array_equal(episodes["episode"], np.arange(1, result.episodes + 1))
    np.testing.assert_array_equal(episodes["return"], result.episode_returns)


def test_resume_refuses_other_env_kwargs_and_reads_configs_from_before_them(tmp_path):
    start_run_folder(short_config(tmp_path, env_kwargs={"sutton_barto_reward": True}))
    for kwargs, shown in (
        (None, "None"),
        ({"sutton_barto_reward": False}, "{'sutton_barto_reward': False}"),
    ):
        with pytest.raises(
            InputError,
            match="has env_kwargs={'sutton_barto_reward': True}, this one " + re.escape(shown),
        ):
            run_folder.check_run_folder(short_config(tmp_path, resume=True, env_kwargs=kwargs))
    run_folder.check_run_folder(
        short_config(tmp_path, resume=True, env_kwargs={"sutton_barto_reward": True})
    )
    # A config.json written before env_kwargs, preset, torso and target_kl existed resumes
    # as those runs ran: no kwargs, the default preset, the automatic torso, no KL target.
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    added = ("env_kwargs", "preset", "torso", "target_kl")
    path.write_text(json.dumps({k: v for k, v in saved.items() if k not in added}))
    loaded = load_run_config(str(tmp_path / "run"))
    assert [loaded[name] for name in added] == [None, None, "auto", None]


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path):
    start_run_folder(short_config(tmp_path))  # config.json only, as a kill at start leaves
    (tmp_path / "run" / "episodes.csv").write_text("episode,step,return,length,wall_time\n1,1")
    result = train(short_config(tmp_path, resume=True), progress=None)
    (tmp_path / "fresh").mkdir()
    fresh = train(short_config(tmp_path / "fresh"), progress=None)
    np.testing.assert_array_equal(result.episode_returns, fresh.episode_returns)
    episodes = read_episodes(tmp_path / "run" / "episodes.csv")
    np.testing.assert_array_equal(episodes["return"], fresh.episode_returns)


def test_resume_cli_refusal_is_one_line(script, tmp_path):
    done = script("train.py", "--resume", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --resume: needs --logdir, the run folder to continue"
    done = script("train.py", "--resume", "--logdir=nowhere", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --resume: nothing to resume in 'nowhere': it has no config.json"
    )
    assert list(tmp_path.iterdir()) == []


def test_episode_log_resume_drops_partial_and_uncounted_rows(tmp_path):
    log = EpisodeLog(tmp_path)
    log.append(1, np.array([10, 30, 60]), np.array([10.0, 20.0, 30.0]), np.array([10, 20, 30]))
    log.close()
    with open(tmp_path / "episodes.csv", "a") as file:
        file.write("4,100,40.0,4")  # a row cut short by a crash: no newline
    # The checkpoint counted 2 episodes: rows 3 (whole) and 4 (partial) go.
    log = EpisodeLog(tmp_path, keep_episodes=2)
    np.testing.assert_array_equal(log.returns, [10.0, 20.0])
    log.append(3, np.array([55]), np.array([25.0]), np.array([25]))
    log.close()
    episodes = read_episodes(tmp_path / "episodes.csv")
    np.testing.assert_array_equal(episodes["episode"], [1, 2, 3])
    np.testing.assert_array_equal(episodes["step"], [10, 30, 55])
    np.testing.assert_array_equal(episodes["return"], [10.0, 20.0, 25.0])


def test_evaluation_log_resume_drops_partial_rows_and_rows_past_the_checkpoint(tmp_path):
    log = EvaluationLog(tmp_path)
    log.append(1_000, "sampled", np.array([10.0, 20.0]))  # mean 15, std 5, min 10, max 20
    log.append(1_000, "greedy", np.array([30.0, 30.0]))
    log.append(2_500, "sampled", np.array([40.0]))
    log.close()
    with open(tmp_path / "evaluations.csv", "a") as file:
        file.write("3000,sampled,1.0")  # a row cut short by a crash: no newline
    # The checkpoint was written at step 2,000: the rows of step 2,500 and 3,000 go.
    EvaluationLog(tmp_path, keep_steps=2_000).close()
    logged = read_evaluations(tmp_path / "evaluations.csv")
    np.testing.assert_array_equal(logged["step"], [1_000, 1_000])
    assert list(logged["mode"]) == ["sampled", "greedy"]
    np.testing.assert_array_equal(logged["mean"], [15.0, 30.0])
    np.testing.assert_array_equal(logged["std"], [5.0, 0.0])
    np.testing.assert_array_equal(logged["min"], [10.0, 30.0])
    np.testing.assert_array_equal(logged["max"], [20.0, 30.0])
    np.testing.assert_array_equal(logged["episodes"], [2, 2])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"checkpoint_every": 0}, "checkpoint_every: must be an integer > 0; got 0"),
        (
            {"greedy_eval_every": 5_000},
            "greedy_eval_every: must be unset without --eval_every; got 5000",
        ),
        ({"eval_every": 1, "best_by": "mean"}, "best_by: must be one of sampled, greedy"),
        ({"final_eval_episodes": -1}, "final_eval_episodes: must be an integer >= 0; got -1"),
        ({"eval_every": 0}, "eval_every: must be an integer > 0; got 0"),
        ({"eval_episodes": -1}, "eval_episodes: must be an integer > 0; got -1"),
        ({"logdir": ""}, "logdir: must be a folder path; got ''"),
        ({"resume": True}, "resume: must be used with --logdir, the run folder to continue"),
        (
            {"eval_every": 10, "save_path": "runs/best.keras"},
            "save_path: must be a name other than 'best.keras' when evaluating",
        ),
    ],
)
def test_run_fields_are_checked(values, message):
    with pytest.raises(InputError) as error:
        TrainConfig(**values)
    assert str(error.value).startswith(message)


def test_bad_run_flag_is_one_line(script, tmp_path):
    done = script("train.py", "--checkpoint_every=0", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --checkpoint_every: must be an integer > 0; got 0"
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_episodes_csv_is_named_in_one_line(tmp_path):
    # Before: ValueError / UnicodeDecodeError tracebacks when a resume re-read the rows.
    path = tmp_path / "episodes.csv"
    path.write_text("episode,step,return,length,wall_time\n1,10,10.0,10,0.0\n2,30,twenty,20,0.0\n")
    with pytest.raises(InputError) as error:
        EpisodeLog(tmp_path, keep_episodes=2)
    assert str(error.value) == (
        f"resume: '{path}' row 2 is damaged ('2,30,twenty,20,0.0'); fix the row or start a new "
        "run in another folder"
    )
    EpisodeLog(tmp_path, keep_episodes=1).close()  # the damaged row is past the checkpoint
    assert read_episodes(path)["return"].tolist() == [10.0]
    path.write_bytes(b"\x80\xff\x00")
    with pytest.raises(InputError, match="episodes.csv' is not UTF-8 text"):
        EpisodeLog(tmp_path, keep_episodes=1)


def saved_config(tmp_path) -> dict:
    start_run_folder(short_config(tmp_path))
    return json.loads((tmp_path / "run" / "config.json").read_text())


def config_with(saved: dict, **changes) -> str:
    return json.dumps({**saved, **changes})


# Hand edits of config.json → what the refusal says after naming the file.
DAMAGED_CONFIGS = {
    "unknown field": (
        lambda saved: config_with(saved, colour="red"),
        "has unknown field 'colour'; a run's config has exactly the fields of TrainConfig",
    ),
    "missing fields": (
        lambda saved: json.dumps({k: v for k, v in saved.items() if k not in ("gamma", "seed")}),
        "lacks fields seed, gamma",
    ),
    "wrong type": (
        lambda saved: config_with(saved, gamma="high"),
        "has a bad value: field gamma must be in [0, 1]; got 'high'",
    ),
    "number for a list": (
        lambda saved: config_with(saved, hidden_sizes=3),
        "has a bad value: field hidden_sizes must be a tuple of positive integers; got 3",
    ),
    "float for an int": (
        lambda saved: config_with(saved, total_steps=1.5),
        "has a bad value: field total_steps must be an integer > 0; got 1.5",
    ),
    "number for a path": (
        lambda saved: config_with(saved, save_path=7),
        'has a bad value: field save_path must be a path ending in ".keras"; got 7',
    ),
    "malformed JSON": (
        lambda saved: "{",
        (
            "is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
            "column 2 (char 1))"
        ),
    ),
    "a list": (lambda saved: "[1, 2]", "must hold a JSON object of config fields; got a JSON list"),
    "binary bytes": (lambda saved: b"\x80\xff\x00PK", "is not UTF-8 text"),
    # Before: a RecursionError traceback.
    "nested too deep": (
        lambda saved: config_with(saved, env_kwargs="DEEP").replace(
            '"DEEP"', "[" * 10_000 + "]" * 10_000
        ),
        "nests 10,001 levels deep (at most 33)",
    ),
    "too large": (
        lambda saved: config_with(saved, colour="x" * 2**20),
        "is larger than 1 MiB (a run's config takes a few KB)",
    ),
    # Text from the file is quoted short: its repr's first 80 characters, the last "…".
    "a long bad value": (
        lambda saved: config_with(saved, gamma="\x1b" * 10_000),
        "has a bad value: field gamma must be in [0, 1]; got " + ("'" + "\\x1b" * 20)[:79] + "…",
    ),
    "long unknown fields": (
        lambda saved: config_with(saved, **{"c" * 10_000: 1}),
        f"has unknown field '{'c' * 78}…; a run's config has exactly the fields of TrainConfig",
    ),
}


@pytest.mark.parametrize("damage", DAMAGED_CONFIGS)
def test_a_damaged_config_json_is_named_in_one_line(tmp_path, damage):
    # Before: tracebacks (KeyError, TypeError, JSONDecodeError, UnicodeDecodeError).
    edit, problem = DAMAGED_CONFIGS[damage]
    path = tmp_path / "run" / "config.json"
    text = edit(saved_config(tmp_path))
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    expected = f"resume: '{path}' {problem}; fix it or start a new run in another folder"
    with pytest.raises(InputError) as error:
        load_run_config(str(tmp_path / "run"))
    assert str(error.value) == expected
    with pytest.raises(InputError) as error:  # the library's resume reads it too
        train(short_config(tmp_path, resume=True), progress=None)
    assert str(error.value) == expected


def test_a_damaged_config_json_on_the_command_line_is_one_line(tmp_path, script):
    path = tmp_path / "run" / "config.json"
    path.write_text(config_with(saved_config(tmp_path), colour="red"))
    done = script("train.py", "--resume", "--logdir=run", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "error: --resume: 'run/config.json' has unknown field 'colour'; a run's config has "
        "exactly the fields of TrainConfig; fix it or start a new run in another folder\n"
    )


# Faults in the run folder.


# A finished run, shared by the tests that damage a copy of it: checkpoints (and env
# reseeds) every 500 steps; batch updates of 16 episodes (~400 steps) pass 500, 1,000,
# 1,500 and 2,000, and the last 3 of these checkpoints are kept, the newest the run's end.
FINISHED = {"seed": 3, "total_steps": 2_000, "checkpoint_every": 500, "target_return": math.inf}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    config = TrainConfig(
        **FINISHED, logdir=str(folder / "run"), save_path=str(folder / "policy.keras")
    )
    return train(config, progress=None)


def copy_run(finished, tmp_path):
    """A copy of the finished run in tmp_path/run; returns its folder."""
    shutil.copytree(finished.logdir, tmp_path / "run")
    return tmp_path / "run"


def resume_config(run, **overrides):
    values = {"logdir": str(run), "resume": True, "save_path": str(run.parent / "resumed.keras")}
    return TrainConfig(**FINISHED, **{**values, **overrides})


def assert_same_weights(path, want_path):
    for got, want in zip(load_policy(path).get_weights(), load_policy(want_path).get_weights()):
        np.testing.assert_array_equal(got, want)


def assert_same_episodes(run, finished):
    resumed = read_episodes(run / "episodes.csv")
    expected = read_episodes(finished.logdir / "episodes.csv")
    for column in ("episode", "step", "return", "length"):
        np.testing.assert_array_equal(resumed[column], expected[column])


def recorded_progress():
    lines = []
    return progress_lib.Lines(lines.append, seconds=3600.0), lines


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_damaged_index_resumes_from_the_newest_checkpoint_on_disk(finished_run, tmp_path, damage):
    # Before: the garbage (or missing) index read as "no checkpoint", so the run started
    # over at step 0 and rewrote episodes.csv without its rows.
    run = copy_run(finished_run, tmp_path)
    newest = max(checkpoint_steps(run))
    index = run / CHECKPOINT_FOLDER / "checkpoint"
    if damage == "garbage":
        index.write_text("garbage\n")
    else:
        index.unlink()
    progress, lines = recorded_progress()
    result = train(resume_config(run), progress=progress)
    problem = "is not a checkpoint index" if damage == "garbage" else "is missing"
    assert lines[:2] == [
        f"the index checkpoints/checkpoint {problem}; resuming from ckpt-{newest}",
        f"resuming at step {newest:,} of 2,000",
    ]
    # The budget was spent at the newest checkpoint: nothing replayed, nothing lost.
    assert result.steps == finished_run.steps == newest
    assert_same_episodes(run, finished_run)
    assert_same_weights(result.save_path, finished_run.save_path)
    # The index was rewritten to name it, and lists the older ones the manager keeps.
    assert tf.train.latest_checkpoint(run / CHECKPOINT_FOLDER) == f"{run}/checkpoints/ckpt-{newest}"
    assert len(checkpoint_steps(run)) == 3


def test_resume_refuses_to_start_over_on_a_run_without_checkpoints(finished_run, tmp_path, script):
    # Before: with checkpoints/ deleted, resume started at step 0 and emptied episodes.csv.
    run = copy_run(finished_run, tmp_path)
    shutil.rmtree(run / CHECKPOINT_FOLDER)
    before = folder_contents(run)
    episodes = finished_run.episodes
    done = script("train.py", "--resume", f"--logdir={run}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: --resume: '{run}' holds {episodes:,} episodes in episodes.csv but no checkpoint "
        "(checkpoints/ is missing or empty); resuming would start over and discard them: "
        "restore the checkpoints or start a new run in another folder\n"
    )
    assert folder_contents(run) == before


def test_a_corrupt_latest_checkpoint_falls_back_to_the_newest_intact_one(
    finished_run, tmp_path, script
):
    # Before: a traceback (exit 1), though two intact older checkpoints were there.
    run = copy_run(finished_run, tmp_path)
    older, previous, newest = checkpoint_steps(run)
    os.truncate(run / CHECKPOINT_FOLDER / f"ckpt-{newest}.data-00000-of-00001", 100)
    done = script(
        "train.py", "--resume", f"--logdir={run}", "--save_path=resumed.keras", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[1:3] == [
        (
            f"checkpoint ckpt-{newest} is damaged (Read less bytes than requested); resuming "
            f"from ckpt-{previous}"
        ),
        f"resuming at step {previous:,} of 2,000",
    ]
    # From a periodic checkpoint the run replays exactly: the rows past it were cut and
    # played again, and the end is the uninterrupted run's.
    assert_same_episodes(run, finished_run)
    assert_same_weights(tmp_path / "resumed.keras", finished_run.save_path)
    assert checkpoint_steps(run) == [older, previous, newest]  # the damaged one written anew


def test_resume_refuses_when_no_checkpoint_is_intact(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    steps = checkpoint_steps(run)
    for number in steps:
        os.truncate(run / CHECKPOINT_FOLDER / f"ckpt-{number}.data-00000-of-00001", 10)
    before = folder_contents(run)
    with pytest.raises(InputError) as error:
        train(resume_config(run), progress=None)
    damaged = "; ".join(
        f"checkpoint ckpt-{number} is damaged (Read less bytes than requested)"
        for number in steps[::-1]
    )
    assert str(error.value) == (
        f"resume: no intact checkpoint in '{run}/checkpoints' ({damaged}); the run cannot be "
        "resumed: restore the checkpoints or start a new run in another folder"
    )
    assert folder_contents(run) == before
    # The refusal came after the lock was taken, and released it.
    descriptor = os.open(run / "lock", os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(descriptor)


def test_a_deleted_latest_checkpoint_falls_back_to_the_one_before(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    _, previous, newest = checkpoint_steps(run)
    for path in (run / CHECKPOINT_FOLDER).glob(f"ckpt-{newest}.*"):
        path.unlink()
    config = TrainConfig(**FINISHED)
    checkpoint = RunCheckpoint(
        run, make_agent(config, *gym_spaces(config)), tf.random.Generator.from_seed(0), 100
    )
    assert checkpoint.restore().steps == previous
    assert checkpoint.note == f"checkpoint ckpt-{newest} is missing; resuming from ckpt-{previous}"
    assert checkpoint.latest == f"{run}/checkpoints/ckpt-{previous}"
    assert tf.train.latest_checkpoint(run / CHECKPOINT_FOLDER) == checkpoint.latest


def test_a_checkpoint_of_another_shape_is_skipped_before_anything_is_assigned(
    finished_run, tmp_path
):
    # ckpt-<newest> replaced by a well-formed checkpoint of a 16-unit policy: its checksums
    # are good, but restoring it would assign some variables before failing on others.
    run = copy_run(finished_run, tmp_path)
    _, previous, newest = checkpoint_steps(run)
    config = TrainConfig(**FINISHED)
    other = dataclasses.replace(config, hidden_sizes=(16,))
    space = gym_spaces(config)
    stranger = RunCheckpoint(
        tmp_path / "other", make_agent(other, *space), tf.random.Generator.from_seed(1), 100
    )
    stranger.save(Counters(steps=newest, episodes=1, recent=[1.0]))
    for path in (tmp_path / "other" / CHECKPOINT_FOLDER).glob(f"ckpt-{newest}.*"):
        shutil.copy(path, run / CHECKPOINT_FOLDER / path.name)

    agent, rng = make_agent(config, *space), tf.random.Generator.from_seed(0)
    checkpoint = RunCheckpoint(run, agent, rng, 100)
    counters = checkpoint.restore()
    name = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"
    assert checkpoint.note == (
        f"checkpoint ckpt-{newest} is damaged ({name} is float32 [4, 16], this run's is "
        f"float32 [4, 32]); resuming from ckpt-{previous}"
    )
    assert counters.steps == previous
    # The whole state is ckpt-<previous>'s: saved again, every tensor is the same.
    copy = RunCheckpoint(tmp_path / "copy", agent, rng, 100)
    written = tf.train.load_checkpoint(copy.save(counters))
    original = tf.train.load_checkpoint(str(run / CHECKPOINT_FOLDER / f"ckpt-{previous}"))
    names = set(original.get_variable_to_shape_map()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert len(names) > 10
    # Not state: the save counter, and the record of the config (of the folder saved in).
    bookkeeping = {"save_counter", "run_config"}
    for name in names - {f"{name}/.ATTRIBUTES/VARIABLE_VALUE" for name in bookkeeping}:
        np.testing.assert_array_equal(written.get_tensor(name), original.get_tensor(name))


def gym_spaces(config):
    env = gym.make(config.env)
    return env.observation_space, env.action_space


def folder_contents(folder) -> dict:
    """Every file under `folder` and its bytes, to show a refusal wrote nothing."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_second_trainer_is_refused_while_the_first_runs(script, tmp_path):
    # Before: the second --resume was accepted and both appended to episodes.csv.
    run = tmp_path / "run"
    process = start_train(
        tmp_path,
        "--total_steps=1000000",
        "--checkpoint_every=1000",
        "--target_return=inf",
        f"--logdir={run}",
    )
    try:
        wait_for_checkpoint(process, run)
        events = sorted(run.glob("events.out.tfevents.*"))
        done = script("train.py", "--resume", f"--logdir={run}", cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr == (
            f"error: --logdir: '{run}' is in use by another trainer (pid {process.pid}, holding "
            f"'{run}/lock'); wait for it to end or stop it\n"
        )
        assert sorted(run.glob("events.out.tfevents.*")) == events  # it wrote nothing
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    assert process.returncode == 130
    episodes = read_episodes(run / "episodes.csv")
    np.testing.assert_array_equal(episodes["episode"], np.arange(1, len(episodes["episode"]) + 1))
    assert (run / "lock").read_text() == ""  # released at the end


def test_lock_held_by_a_live_process_refuses_a_stale_one_does_not(tmp_path):
    train(short_config(tmp_path), progress=None)
    run = tmp_path / "run"
    before = folder_contents(run)
    descriptor = os.open(run / "lock", os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    try:
        with pytest.raises(InputError) as error:
            train(short_config(tmp_path, resume=True, total_steps=2_000), progress=None)
    finally:
        os.close(descriptor)
    assert str(error.value) == (
        f"logdir: '{run}' is in use by another trainer (pid {os.getpid()}, holding "
        f"'{run}/lock'); wait for it to end or stop it"
    )
    assert folder_contents(run) == {**before, "lock": f"{os.getpid()}\n".encode()}
    # Unlocked, the file still naming a pid (as after kill -9) does not block.
    result = train(short_config(tmp_path, resume=True, total_steps=2_000), progress=None)
    assert 1_000 < result.steps <= 2_000


@pytest.mark.parametrize(
    "files, listed",  # files written in the folder → how the refusal lists them
    [
        (
            {"episodes.csv": "episode,step,return,length,wall_time\n1,20,20.0,20,0.0\n"},
            "episodes.csv",
        ),
        ({"checkpoints/checkpoint": 'model_checkpoint_path: "ckpt-9"\n'}, "checkpoints/"),
        ({"events.out.tfevents.1.host.1.0.v2": "x"}, "TensorBoard events"),
        ({"evaluations.csv": "step,mode,mean,std,min,max,episodes,wall_time\n"}, "evaluations.csv"),
    ],
)
def test_a_new_run_refuses_a_folder_with_files_of_another_run(tmp_path, files, listed):
    # Before: a new run overwrote episodes.csv (or took over the checkpoint index).
    run = tmp_path / "run"
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    before = folder_contents(run)
    with pytest.raises(InputError) as error:
        train(short_config(tmp_path), progress=None)
    assert str(error.value) == (
        f"logdir: '{run}' holds {listed} but no config.json: files of another run, or unknown "
        "files a new run would overwrite; choose another folder"
    )
    assert folder_contents(run) == before


def test_a_logdir_under_a_file_is_one_line(tmp_path, script):
    (tmp_path / "notes.txt").write_text("not a folder")
    done = script("train.py", "--logdir=notes.txt/run", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "error: --logdir: cannot create 'notes.txt/run': 'notes.txt' is a file, not a folder\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a chmod 0500 folder")
def test_a_read_only_logdir_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(InputError) as error:
        train(short_config(tmp_path, logdir=str(locked / "run")), progress=None)
    assert str(error.value) == (
        f"logdir: '{locked}/run' cannot be created: '{locked}' is not writable"
    )


def test_a_write_refused_by_the_system_is_one_line(tmp_path, monkeypatch):
    # What a read-only file system or missing permission does to the first write, even
    # for root: the folder passes the checks, then config.json cannot be written.
    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(run_folder, "write_text_atomically", refuse)
    with pytest.raises(InputError) as error:
        train(short_config(tmp_path), progress=None)
    run = tmp_path / "run"
    assert str(error.value) == (
        f"logdir: cannot write in '{run}' (Permission denied: {run}/config.json)"
    )
    assert (run / "lock").read_text() == ""  # released


def test_resume_messages_quote_long_values_short(tmp_path):
    start_run_folder(short_config(tmp_path))
    kwargs = {"map": "x" * 100_000}
    with pytest.raises(InputError) as error:
        run_folder.check_run_folder(short_config(tmp_path, resume=True, env_kwargs=kwargs))
    assert str(error.value).startswith(
        f"resume: the run in '{tmp_path}/run' has env_kwargs=None, this one {{'map': 'xxx"
    )
    assert len(str(error.value)) < 400


# Damage to a finished run's episodes.csv (its lines, the header first) → what the refusal
# says after naming the file; N: the episodes its newest checkpoint counts (over 41).
RESTORE = "restore it from a copy"
DAMAGED_EPISODES = {
    "rows deleted": (
        lambda lines: lines[:20] + lines[41:],
        f"row 20 is episode 41, not 20: rows are missing, doubled or out of order; {RESTORE}",
    ),
    "emptied": (
        lambda lines: [],
        f"holds 0 whole rows, but the checkpoint counts {{N:,}} episodes; {RESTORE}",
    ),
    "header only": (
        lambda lines: lines[:1],
        f"holds 0 whole rows, but the checkpoint counts {{N:,}} episodes; {RESTORE}",
    ),
    # A kill mid-write cuts only rows past the checkpoint: it wrote them after its last sync.
    "last counted row cut short": (
        lambda lines: [*lines[:-1], lines[-1][:-4]],
        f"holds {{whole:,}} whole rows, but the checkpoint counts {{N:,}} episodes; {RESTORE}",
    ),
    "garbage row": (
        lambda lines: [*lines[:30], "garbage\n", *lines[30:]],
        "row 30 is damaged ('garbage'); fix the row",
    ),
    "a row doubled": (
        lambda lines: [*lines[:31], *lines[30:]],
        f"row 31 is episode 30, not 31: rows are missing, doubled or out of order; {RESTORE}",
    ),
    "removed": (None, f"is missing, but the checkpoint counts {{N:,}} episodes; {RESTORE}"),
}


@pytest.mark.parametrize("damage", DAMAGED_EPISODES)
def test_resume_refuses_an_episodes_csv_without_the_rows_its_checkpoint_counts(
    finished_run, tmp_path, damage
):
    # Before: each resumed (exit 0), and the lost rows were lost for good (the garbage row
    # was kept, and plotted).
    run = copy_run(finished_run, tmp_path)
    path = run / "episodes.csv"
    episodes = finished_run.episodes
    assert episodes > 41
    edit, problem = DAMAGED_EPISODES[damage]
    if edit is None:
        path.unlink()
    else:
        path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))
    before = folder_contents(run)
    with pytest.raises(InputError) as error:
        train(resume_config(run), progress=None)
    problem = problem.format(N=episodes, whole=episodes - 1)
    assert str(error.value) == f"resume: '{path}' {problem} or start a new run in another folder"
    assert folder_contents(run) == before


def test_evaluation_log_resume_refuses_a_damaged_row_before_the_checkpoint(tmp_path):
    # Before: the garbage row was dropped silently, with the evaluation it replaced.
    log = EvaluationLog(tmp_path)
    log.append(1_000, "sampled", np.array([10.0]))
    log.append(2_000, "sampled", np.array([20.0]))
    log.close()
    path = tmp_path / "evaluations.csv"
    header, first, second = path.read_text().splitlines(keepends=True)
    for garbage in ("1500,sampled,oops,0.0,1.0,1.0,1,0.0\n", "garbage\n"):
        path.write_text(header + first + garbage + second)
        with pytest.raises(InputError) as error:
            EvaluationLog(tmp_path, keep_steps=2_000)
        assert str(error.value) == (
            f"resume: '{path}' row 2 is damaged ({garbage.strip()!r}); fix the row or start a "
            "new run in another folder"
        )
    # Past the checkpoint (from the first row after it on) rows go, damaged or not.
    path.write_text(header + first + second + "garbage\n")
    EvaluationLog(tmp_path, keep_steps=1_500).close()
    assert path.read_text() == header + first


# Hand edits of a finished run's config.json that make it another experiment: field → the
# edited value, and the value its checkpoints were made with (as shown).
EDITED_CONFIGS = {
    "env": ("CartPole-v0", "'CartPole-v1'"),
    "env_kwargs": ({"sutton_barto_reward": True}, "None"),
    # Before: "no intact checkpoint (checkpoint ckpt-2000 is damaged (… float32 [4, 16] …"
    "hidden_sizes": ([16], "[32]"),
    "seed": (4, "3"),
}


@pytest.mark.parametrize("field", EDITED_CONFIGS)
def test_resume_refuses_a_config_json_edited_after_its_checkpoints(finished_run, tmp_path, field):
    # Before: the edited run resumed (exit 0): another experiment in the same folder.
    run = copy_run(finished_run, tmp_path)
    value, recorded = EDITED_CONFIGS[field]
    path = run / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    # As scripts/train.py resumes: the saved config, with flags over it.
    saved = load_run_config(str(run))
    flags = {"resume": True, "logdir": str(run), "save_path": str(tmp_path / "r.keras")}
    config = TrainConfig(**{**saved, **flags})
    before = folder_contents(run)
    with pytest.raises(InputError) as error:
        train(config, progress=None)
    resumable = ", ".join(sorted(run_folder.RESUMABLE_FIELDS - {"resume", "logdir"}))
    assert str(error.value) == (
        f"resume: '{path}' has {field}={value!r}, but the run's checkpoints were made with "
        f"{field}={recorded}; put it back or start a new run in another folder (only "
        f"{resumable} may change on resume)"
    )
    assert folder_contents(run) == before


def test_a_config_json_edit_on_the_command_line_is_one_line(finished_run, tmp_path, script):
    run = copy_run(finished_run, tmp_path)
    path = run / "config.json"
    path.write_text(path.read_text().replace('"CartPole-v1"', '"CartPole-v0"'))
    done = script("train.py", "--resume", "--logdir=run", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --resume: 'run/config.json' has env='CartPole-v0', but the run's checkpoints "
        "were made with env='CartPole-v1'; put it back"
    )
    assert len(done.stderr.splitlines()) == 1


def test_checkpoints_from_before_the_config_record_still_resume(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    newest = max(checkpoint_steps(run))
    config = TrainConfig(**FINISHED)
    agent, rng = make_agent(config, *gym_spaces(config)), tf.random.Generator.from_seed(0)
    counters = RunCheckpoint(run, agent, rng, 100).restore()
    # The newest checkpoint written again as runs wrote them before checkpoints recorded
    # their config: these objects, nothing else.
    shutil.rmtree(run / CHECKPOINT_FOLDER)
    recent = np.zeros(100)
    recent[: len(counters.recent)] = list(counters.recent)
    old = tf.train.Checkpoint(
        policy=agent.policy,
        optimizer=agent.optimizer,
        rng=rng,
        steps=tf.Variable(counters.steps, dtype=tf.int64),
        episodes=tf.Variable(counters.episodes, dtype=tf.int64),
        recent=tf.Variable(recent),
        best_eval=tf.Variable(counters.best_eval, dtype=tf.float64),
    )
    tf.train.CheckpointManager(old, run / CHECKPOINT_FOLDER, 3).save(checkpoint_number=newest)
    result = train(resume_config(run), progress=None)
    assert result.steps == newest == finished_run.steps
    assert_same_episodes(run, finished_run)
    assert_same_weights(result.save_path, finished_run.save_path)


def test_a_logdir_through_a_dangling_or_looping_link_names_it_once(tmp_path):
    # Before: "cannot create 'LINK': 'LINK' is a file, not a folder".
    dangling, loop, other = tmp_path / "dangling", tmp_path / "loop", tmp_path / "other"
    dangling.symlink_to(tmp_path / "missing" / "run")
    loop.symlink_to(other)
    other.symlink_to(loop)
    for logdir, message in (
        (
            dangling,
            f"'{dangling}' is a symbolic link to '{tmp_path}/missing/run', which does not exist",
        ),
        (
            dangling / "run",
            (
                f"cannot create '{dangling}/run': '{dangling}' is a symbolic link to "
                f"'{tmp_path}/missing/run', which does not exist"
            ),
        ),
        (loop, f"'{loop}' is a symbolic link that loops"),
    ):
        with pytest.raises(InputError) as error:
            train(short_config(tmp_path, logdir=str(logdir)), progress=None)
        assert str(error.value) == f"logdir: {message}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dangling", "loop", "other"]
