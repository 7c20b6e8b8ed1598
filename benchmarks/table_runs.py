"""One run of a result table (`table.py`: MuJoCo, MinAtar): train it (or resume it) through
scripts/train.py, then read what it reached: its evaluations during training, its training
curve and its saved policy's closing evaluation.

A run lives in RUNS/<name>/ (`run_name`): `run/` (the trainer's run folder:
config.json, episodes.csv, evaluations.csv, checkpoints), `policy.keras` (the final policy,
whose note holds the trainer's closing evaluation, sampled and greedy), `best.keras` (the best
sampled evaluation during training, with its return and step in the file's note),
`train.log` (the trainer's output), `wall.json` (wall seconds of each trainer process,
saved every WALL_SAVE_SECONDS while it runs, so a killed one keeps its time) and
`runner.lock` (held by the runner working on the run, see `claim`).
"""

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from reinforce_tf.config import EVAL_MODES
from reinforce_tf.errors import InputError
from reinforce_tf.training.episode_log import (
    EPISODES_NAME,
    EVALUATIONS_NAME,
    read_episodes,
    read_evaluations,
)
from reinforce_tf.training.saving import load_metadata, write_text_atomically

REPO = Path(__file__).resolve().parents[1]
POLICY_NAME = "policy.keras"
# The trainer's mean of the last 100 training episodes (Pendulum's target is on it).
LAST_EPISODES = 100
# How often a running trainer's wall time is saved: a kill loses at most this much of it.
WALL_SAVE_SECONDS = 30.0
# The trainer flags the runner sets for every run (from its own flags and the run's folder):
# a --train_flag may not set them.
RUNNER_FLAGS = frozenset(
    {
        "env", "seed", "total_steps", "eval_every", "greedy_eval_every", "eval_episodes",
        "final_eval_episodes", "target_return", "save_path", "logdir", "resume",
    }
)  # fmt: skip
# Points of a run's training curve (`training_curve`), at k / TRAINING_POINTS of its budget.
TRAINING_POINTS = 50


def run_name(env: str, seed: int, total_steps: int, train_flags: tuple[str, ...] = ()) -> str:
    """The run's folder name and results key: "Hopper-v5__seed0__3000000", and for a run
    with flags of its own "MinAtar/Breakout-v1__learning_rate=0.002__seed0__5000000"
    (`train_flags` without their dashes, joined by "__"; "/" makes a subfolder)."""
    variant = "".join(f"__{flag.lstrip('-')}" for flag in train_flags)
    return f"{env}{variant}__seed{seed}__{total_steps}"


def claim(folder: Path):
    """The run in `folder` for this runner: an exclusive `flock` on `folder/runner.lock`,
    held until the returned file is closed (or the process ends: the kernel drops it, so a
    killed runner never leaves a run claimed). None when another runner holds it, so
    runners on one machine (one per core) can share an env × seed list.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "runner.lock", "a")  # noqa: SIM115 (held past this function)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def wait_while(lock: str | None, say) -> None:
    """Returns once `lock` does not exist (someone timing on this machine); None: at once."""
    if lock and os.path.exists(lock):
        say(f"waiting while {lock} exists")
        while os.path.exists(lock):
            time.sleep(15)


def train(
    env: str,
    seed: int,
    total_steps: int,
    folder: Path,
    *,
    eval_every: int,
    greedy_eval_every: int,
    eval_episodes: int,
    final_episodes: int,
    train_flags: tuple[str, ...] = (),
) -> float:
    """Trains the run in `folder` to `total_steps` with the env's defaults (and `train_flags`,
    e.g. ("--learning_rate=0.002",), over them): a new run, or, when `folder/run` holds one,
    its continuation from the last checkpoint. Sampled
    evaluations come every `eval_every` steps, greedy ones every `greedy_eval_every`, each of
    `eval_episodes`; the saved policy then plays `final_episodes` each way.

    Returns:
        Wall seconds of this trainer process.

    Raises:
        InputError: the trainer failed (exit status and the last line of its output).
    """
    folder.mkdir(parents=True, exist_ok=True)
    run = folder / "run"
    flags = [f"--logdir={run}"]
    if (run / "config.json").exists():
        flags += ["--resume"]
    else:
        flags += [
            f"--env={env}",
            f"--seed={seed}",
            f"--total_steps={total_steps}",
            f"--eval_every={eval_every}",
            f"--greedy_eval_every={greedy_eval_every}",
            f"--eval_episodes={eval_episodes}",
            f"--final_eval_episodes={final_episodes}",
            "--target_return=inf",
            f"--save_path={folder / POLICY_NAME}",
            *train_flags,
        ]
    returncode, seconds = run_timed(
        [sys.executable, str(REPO / "scripts" / "train.py"), *flags], folder
    )
    if returncode != 0:
        lines = (folder / "train.log").read_text(encoding="utf-8").strip().splitlines()
        raise InputError(
            f"training {folder.name} failed with exit status {returncode}: "
            f"{lines[-1] if lines else 'no output'} (see {folder / 'train.log'})"
        )
    return seconds


def run_timed(command: list[str], folder: Path) -> tuple[int, float]:
    """Runs `command` with its output appended to `folder/train.log`, and appends its wall
    seconds to `folder/wall.json`: saved every WALL_SAVE_SECONDS while it runs and once at its
    end, so a process killed with the runner (a session's stop) still counts. If the runner
    fails while waiting, the process is killed first, as `subprocess.run` does.

    Returns:
        (exit status, wall seconds).
    """
    walls = _walls(folder)
    start = time.perf_counter()

    def save_wall() -> float:
        seconds = time.perf_counter() - start
        write_text_atomically(folder / "wall.json", json.dumps(walls + [round(seconds, 1)]) + "\n")
        return seconds

    with (
        open(folder / "train.log", "a", encoding="utf-8") as log,
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as process,
    ):
        try:
            while True:
                try:
                    returncode = process.wait(timeout=WALL_SAVE_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    save_wall()
        except BaseException:
            process.kill()  # Popen's exit then waits for it
            raise
    return returncode, save_wall()


def _walls(folder: Path) -> list[float]:
    path = folder / "wall.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def result(folder: Path) -> dict:
    """What the finished run in `folder` reached, as the results JSON stores it.

    "evaluations" holds, per mode, the run's evaluation curve as [step, mean return] pairs;
    "best_<mode>_eval" (and its step) the best of each; "final_<mode>_mean" and "_std" the
    saved policy's closing evaluation, from its note; "training_curve" the mean return of
    the last 100 training episodes at every 1/TRAINING_POINTS of the budget (`training_curve`).

    Raises:
        InputError: the saved policy's note has no closing evaluation.
    """
    episodes = read_episodes(folder / "run" / EPISODES_NAME)
    evaluations = read_evaluations(folder / "run" / EVALUATIONS_NAME)
    config = json.loads((folder / "run" / "config.json").read_text(encoding="utf-8"))
    final = load_metadata(folder / POLICY_NAME).get("final_evaluation")
    if not final:
        raise InputError(f"{folder / POLICY_NAME} records no closing evaluation")
    walls = _walls(folder)
    entry = {
        "env": config["env"],
        "seed": config["seed"],
        "total_steps": config["total_steps"],
        "steps": int(episodes["step"][-1]),
        "episodes": len(episodes["return"]),
        "last_100_mean": float(np.mean(episodes["return"][-LAST_EPISODES:])),
        "final_episodes": final["episodes"],
        "training_curve": training_curve(episodes, config["total_steps"]),
        "evaluations": {},
    }
    for mode in EVAL_MODES:
        chosen = evaluations["mode"] == mode
        curve = [
            [int(s), float(m)]
            for s, m in zip(evaluations["step"][chosen], evaluations["mean"][chosen])
        ]
        best = max(curve, key=lambda point: point[1], default=[None, None])
        entry["evaluations"][mode] = curve
        entry[f"best_{mode}_eval"], entry[f"best_{mode}_eval_step"] = best[1], best[0]
        entry[f"final_{mode}_mean"] = final[mode]["mean"]
        entry[f"final_{mode}_std"] = final[mode]["std"]
    entry["preferred_mode"] = final.get("preferred_mode")
    entry.update(wall_seconds=round(sum(walls), 1), processes=len(walls), config=config)
    return entry


def training_curve(episodes: dict[str, np.ndarray], total_steps: int) -> list[list[float]]:
    """The training curve as [step, mean return] pairs: at each step b_k = k · total_steps /
    TRAINING_POINTS (k = 1 … TRAINING_POINTS) that episodes have passed, the mean return of
    the last LAST_EPISODES episodes ending at or before b_k (fewer at the start)."""
    ends, returns = episodes["step"], episodes["return"]
    curve = []
    for k in range(1, TRAINING_POINTS + 1):
        step = k * total_steps // TRAINING_POINTS
        count = int(np.searchsorted(ends, step, side="right"))  # episodes ended by `step`
        if count:
            curve.append([step, float(np.mean(returns[max(0, count - LAST_EPISODES) : count]))])
    return curve
