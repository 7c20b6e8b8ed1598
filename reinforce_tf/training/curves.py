"""Learning curves from run folders: the stop rule's statistic against env steps, per seed,
then mean and spread across seeds.

For a run with episodes ending at steps s_1 ≤ s_2 ≤ … with returns G_1, G_2, …, its curve at
x is the mean of the last (up to) `window` returns of episodes with s_i ≤ x: what the trainer
compares with the target. Runs of one experiment (configs equal but for the seed and the
run's paths and budget) are put on one grid and reduced to mean, min and max.
"""

import json
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from reinforce_tf.errors import InputError
from reinforce_tf.training.episode_log import EPISODES_NAME, read_episodes
from reinforce_tf.training.run_folder import CONFIG_NAME

# Config fields that do not make a different experiment: runs differing only in these are
# seeds of one curve.
NOT_THE_EXPERIMENT = frozenset(
    {
        "seed",
        "logdir",
        "save_path",
        "resume",
        "total_steps",
        "checkpoint_every",
        "eval_every",
        "eval_episodes",
        "target_return",
    }
)


class Run(NamedTuple):
    """One run folder's episodes.

    Attributes:
        folder: the run folder.
        config: its config.json ({} if absent).
        steps: [E] int64 step counter at each episode's end.
        returns: [E] float64 episode returns.
    """

    folder: Path
    config: dict
    steps: np.ndarray
    returns: np.ndarray


class Curve(NamedTuple):
    """An experiment's curve over seeds: x [P] steps; mean, low, high [P]; label; seeds."""

    label: str
    env: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def read_run(folder: str | Path) -> Run:
    """Reads `folder/episodes.csv` (and config.json).

    Raises:
        InputError: the folder has no episodes.csv or no episode in it.
    """
    folder = Path(folder)
    if not (folder / EPISODES_NAME).is_file():
        raise InputError(f"{str(folder)!r} is not a run folder: it has no {EPISODES_NAME}")
    episodes = read_episodes(folder / EPISODES_NAME)
    if len(episodes["step"]) == 0:
        raise InputError(f"{str(folder / EPISODES_NAME)!r} holds no finished episode yet")
    config_path = folder / CONFIG_NAME
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return Run(folder, config, episodes["step"], episodes["return"])


def running_mean(steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: int):
    """[P] mean of the last (up to) `window` returns of episodes ended by each grid step.

    NaN where no episode has ended yet. E.g. steps [10, 30, 60], returns [10, 20, 30],
    window 2, grid [5, 30, 100] → [nan, 15, 25].
    """
    cumulative = np.concatenate([[0.0], np.cumsum(returns)])  # [E + 1]
    ended = np.searchsorted(steps, grid, side="right")  # [P] episodes with s_i <= x
    first = np.maximum(ended - window, 0)
    count = ended - first
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (cumulative[ended] - cumulative[first]) / count, np.nan)


def curves(runs: list[Run], points: int = 200, window: int = 100) -> list[Curve]:
    """Groups runs into experiments and reduces each over its seeds.

    The grid spans 0 … the smallest last step among the group's runs, so every seed
    contributes at every point.
    """
    groups: dict[str, list[Run]] = {}
    for run in runs:
        key = {k: v for k, v in run.config.items() if k not in NOT_THE_EXPERIMENT}
        groups.setdefault(json.dumps(key, sort_keys=True), []).append(run)
    labels = _labels([json.loads(key) for key in groups])
    result = []
    for label, members in zip(labels, groups.values()):
        grid = np.linspace(0, min(int(run.steps[-1]) for run in members), points)
        values = np.stack([running_mean(r.steps, r.returns, grid, window) for r in members])
        with warnings.catch_warnings():  # columns before any episode ended are all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = (np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0))
        env = members[0].config.get("env", "")
        result.append(Curve(label, env, grid, mean, low, high, len(members)))
    return result


def _labels(configs: list[dict]) -> list[str]:
    """The env, plus the fields whose values differ between experiments of that env."""
    labels = []
    for config in configs:
        same_env = [other for other in configs if other.get("env") == config.get("env")]
        differing = sorted(
            field for field in config if any(o.get(field) != config[field] for o in same_env)
        )
        extra = ", ".join(f"{field}={config[field]}" for field in differing)
        labels.append(f"{config.get('env', 'run')}" + (f" ({extra})" if extra else ""))
    return labels
