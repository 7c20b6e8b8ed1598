"""Learning curves from run folders: the stop rule's statistic against env steps, per seed,
then mean and spread across seeds.

For a run with episodes ending at steps s_1 ≤ s_2 ≤ … with returns G_1, G_2, …, its curve at
x is the mean of the last (up to) `window` returns of episodes with s_i ≤ x: what the trainer
compares with the target. Runs of one experiment (configs equal but for the seed and the
run's paths and budget) are put on one grid and reduced to mean, min and max.
"""

import csv
import io
import json
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from reinforce_tf.errors import InputError, error_reason
from reinforce_tf.training.episode_log import COLUMNS, EPISODES_NAME
from reinforce_tf.training.run_folder import CONFIG_NAME
from reinforce_tf.training.saving import printable

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
        InputError: the folder has no episodes.csv or no episode in it, or one of the two
            files is unreadable or not what the trainer writes (named, with the reason).
    """
    folder = Path(folder)
    if not (folder / EPISODES_NAME).is_file():
        raise InputError(f"{str(folder)!r} is not a run folder: it has no {EPISODES_NAME}")
    steps, returns = _read_episodes(folder / EPISODES_NAME)
    if len(steps) == 0:
        raise InputError(f"{str(folder / EPISODES_NAME)!r} holds no finished episode yet")
    config_path = folder / CONFIG_NAME
    config = _read_config(config_path) if config_path.is_file() else {}
    return Run(folder, config, steps, returns)


def _read_episodes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """[E] int64 end steps and [E] float64 returns of an episodes.csv, checked strictly.

    A partial last line is ignored (the trainer may be writing it now), as the trainer
    does; anything else that is not the trainer's format is refused.
    """

    def refuse(why: str):
        raise InputError(f"{str(path)!r} is not a valid {EPISODES_NAME}: {printable(why)}")

    try:
        text = path.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text[: text.rfind("\n") + 1])))
    except UnicodeDecodeError:
        refuse("it is not UTF-8 text")
    except OSError as error:
        raise InputError(f"cannot read {str(path)!r}: {error_reason(error)}") from None
    except csv.Error as error:
        refuse(str(error))
    if not rows or tuple(rows[0]) != COLUMNS:
        refuse(f"its first line is not the header {','.join(COLUMNS)}")
    steps, returns = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS):
            refuse(f"line {line} has {len(row)} fields, not {len(COLUMNS)}")
        try:
            steps.append(int(row[1]))
            returns.append(float(row[2]))
        except ValueError:
            refuse(f"line {line} has a step or return that is not a number: {row[1:3]}")
    steps, returns = np.asarray(steps, np.int64), np.asarray(returns, np.float64)
    if np.any(np.diff(steps) < 0):
        line = int(np.argmax(np.diff(steps) < 0)) + 3  # header + 1-based + the later row
        refuse(f"its steps go down at line {line} (the trainer writes them in order)")
    return steps, returns


def _read_config(path: Path) -> dict:
    """A run's config.json, which must be a JSON object."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"cannot read {str(path)!r}: {error_reason(error)}") from None
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not valid JSON: it is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"{str(path)!r} is not valid JSON: {error.msg} at line {error.lineno} column "
            f"{error.colno}"
        ) from None
    if not isinstance(config, dict):
        raise InputError(f"{str(path)!r} is not a run's config: not a JSON object")
    if not isinstance(config.get("env", ""), str):
        raise InputError(f"{str(path)!r} is not a run's config: its env is not text")
    return config


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
