"""The run's CSV logs, for people without TensorBoard: episodes.csv and evaluations.csv.

episodes.csv, one row per finished episode: episode (1, 2, …), step (env steps of counted
episodes when it ended, in the order the trainer counts them), return, length, wall_time
(Unix seconds when it was logged).

evaluations.csv, one row per evaluation during training (`--eval_every`): step (the step
counter when it ran), mode (sampled or greedy), mean, std, min and max of its returns,
episodes, wall_time.

Rows of one update go to a file in a single `write` on a descriptor opened with O_APPEND,
and the files are synced before each checkpoint, so a killed process leaves every row the
checkpoint counts whole. Resuming drops any partial last line and every row past the
checkpoint (episodes past its episode counter, evaluations from the first past its step
counter on), so the files and the checkpoint agree; and refuses a file whose counted rows
are not all there, whole, numbers, and (episodes) numbered 1, 2, …: rows lost for good, or
garbage kept among them.
"""

import csv
import io
import os
import time
from pathlib import Path

import numpy as np

from reinforce_tf.config import EVAL_MODES, quoted
from reinforce_tf.errors import InputError
from reinforce_tf.training.saving import write_text_atomically

EPISODES_NAME = "episodes.csv"
COLUMNS = ("episode", "step", "return", "length", "wall_time")
EVALUATIONS_NAME = "evaluations.csv"
EVALUATION_COLUMNS = ("step", "mode", "mean", "std", "min", "max", "episodes", "wall_time")


class _CsvLog:
    """An append-only CSV file: a header, the kept rows, then rows appended in single writes.

    Args:
        path: the file, rewritten (atomically) with its header and `kept` rows.
        columns: the header.
        kept: the rows it starts with.
    """

    def __init__(self, path: Path, columns: tuple[str, ...], kept: list[list[str]]):
        self.path = Path(path)
        lines = [",".join(columns) + "\n", *(",".join(row) + "\n" for row in kept)]
        write_text_atomically(self.path, "".join(lines))
        self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def _append(self, rows: list[list]) -> None:
        """Writes `rows` (each a list of cell values) in one `write`."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        data = buffer.getvalue().encode()
        if data:
            os.write(self._descriptor, data)

    def sync(self) -> None:
        """Flushes the rows to disk (called before each checkpoint)."""
        os.fsync(self._descriptor)

    def close(self) -> None:
        os.close(self._descriptor)


class EpisodeLog(_CsvLog):
    """Appends episode rows to `folder/episodes.csv`.

    Args:
        folder: the run folder.
        keep_episodes: None starts a new file; an int resumes, keeping the first
            `keep_episodes` rows of the existing file (the episodes the checkpoint counts).

    Raises:
        InputError: (field resume) resuming, the file is missing, not text, or holds fewer
            whole rows than `keep_episodes`, or one of those is not numbers or not numbered
            by its place.
    """

    def __init__(self, folder: Path, keep_episodes: int | None = None):
        path = Path(folder) / EPISODES_NAME
        kept = [] if keep_episodes is None else _counted_episodes(path, keep_episodes)
        self._returns = [float(row[2]) for row in kept]
        super().__init__(path, COLUMNS, kept)

    @property
    def returns(self) -> np.ndarray:
        """[episodes] the returns in the file when it was opened."""
        return np.asarray(self._returns, np.float64)

    def append(
        self, first_episode: int, end_steps: np.ndarray, returns: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Appends one row per episode, numbered from `first_episode`, in one write.

        Args:
            end_steps: [E] the step counter at each episode's end.
            returns: [E] undiscounted returns.
            lengths: [E] episode lengths.
        """
        now = f"{time.time():.3f}"
        self._append(
            [
                [first_episode + offset, int(step), repr(float(value)), int(length), now]
                for offset, (step, value, length) in enumerate(zip(end_steps, returns, lengths))
            ]
        )


class EvaluationLog(_CsvLog):
    """Appends evaluation rows to `folder/evaluations.csv`.

    Args:
        folder: the run folder.
        keep_steps: None starts a new file; an int resumes, keeping the rows of the existing
            file before the first whose step is past `keep_steps` (the checkpoint's).

    Raises:
        InputError: (field resume) resuming, a row before those is damaged (not whole, or
            not numbers), or the file is not text.
    """

    def __init__(self, folder: Path, keep_steps: int | None = None):
        path = Path(folder) / EVALUATIONS_NAME
        kept = [] if keep_steps is None else _counted_evaluations(path, keep_steps)
        super().__init__(path, EVALUATION_COLUMNS, kept)

    def append(self, step: int, mode: str, returns: np.ndarray) -> None:
        """One row: the evaluation at step counter `step` in `mode`, its [episodes] returns."""
        returns = np.asarray(returns, np.float64)
        self._append(
            [
                [step, mode]
                + [repr(float(f(returns))) for f in (np.mean, np.std, np.min, np.max)]
                + [len(returns), f"{time.time():.3f}"]
            ]
        )


def _counted_episodes(path: Path, count: int) -> list[list[str]]:
    """The first `count` rows of episodes.csv, each checked to be whole, of numbers, and
    numbered by its place (1 = the first after the header).

    Raises:
        InputError: (field resume) naming the file and the first row that is missing,
            damaged or misnumbered.
    """
    if count == 0:
        return []
    if not path.is_file():
        raise _refused(path, f"is missing, but the checkpoint counts {count:,} episodes")
    rows = _whole_rows(path)[:count]
    for number, row in enumerate(rows, 1):
        values = _parsed(row, _EPISODE_TYPES)
        if values is None:
            raise _damaged(path, number, row)
        if values[0] != number:
            raise _refused(
                path,
                f"row {number:,} is episode {values[0]:,}, not {number:,}: rows are missing, "
                "doubled or out of order",
            )
    if len(rows) < count:
        raise _refused(
            path, f"holds {len(rows):,} whole rows, but the checkpoint counts {count:,} episodes"
        )
    return rows


def _counted_evaluations(path: Path, steps: int) -> list[list[str]]:
    """The rows of evaluations.csv before the first whose step is past `steps`, each checked
    to be whole and of numbers (rows are written in step order).

    Raises:
        InputError: (field resume) naming the file and the first damaged row among them.
    """
    kept = []
    for number, row in enumerate(_whole_rows(path), 1):
        values = _parsed(row, _EVALUATION_TYPES)
        if values is None:
            raise _damaged(path, number, row)
        if values[0] > steps:
            break
        kept.append(row)
    return kept


def _mode(cell: str) -> str:
    if cell not in EVAL_MODES:
        raise ValueError(cell)
    return cell


# The type of each column, to check a row read back.
_EPISODE_TYPES = (int, int, float, int, float)
_EVALUATION_TYPES = (int, _mode, float, float, float, float, int, float)


def _parsed(row: list[str], types: tuple) -> list | None:
    """The cells of `row` as `types`, or None when it is not a whole row of them."""
    if len(row) != len(types):
        return None
    try:
        return [kind(cell) for kind, cell in zip(types, row)]
    except ValueError:
        return None


def _refused(path: Path, what: str, advice: str = "restore it from a copy") -> InputError:
    return InputError(
        f"{str(path)!r} {what}; {advice} or start a new run in another folder", field="resume"
    )


def _damaged(path: Path, number: int, row: list[str]) -> InputError:
    return _refused(path, f"row {number:,} is damaged ({quoted(','.join(row))})", "fix the row")


def _whole_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV log after its header, as cells; a partial last line is dropped.

    Raises:
        InputError: the file is not UTF-8 text.
    """
    if not Path(path).is_file():
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not UTF-8 text (a damaged {path.name})") from None
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.reader(io.StringIO(text)))[1:]


def read_rows(path: Path, columns: tuple[str, ...] = COLUMNS) -> list[list[str]]:
    """The whole rows of an episodes.csv (or a log of other `columns`), without the header;
    a partial last line, and rows of another number of cells, are dropped.

    Raises:
        InputError: the file is not UTF-8 text.
    """
    return [row for row in _whole_rows(path) if len(row) == len(columns)]


def read_episodes(path: Path) -> dict[str, np.ndarray]:
    """episodes.csv as columns: {"episode", "step", "length": int64, "return", "wall_time": float64}."""
    rows = read_rows(path)
    columns = list(zip(*rows)) if rows else [()] * len(COLUMNS)
    types = (np.int64, np.int64, np.float64, np.int64, np.float64)
    return {name: np.asarray(column, dtype) for name, column, dtype in zip(COLUMNS, columns, types)}


def read_evaluations(path: Path) -> dict[str, np.ndarray]:
    """evaluations.csv as columns: {"step", "episodes": int64, "mode": str, "mean", "std",
    "min", "max", "wall_time": float64}; rows that are not whole numbers are skipped."""
    types = {"step": np.int64, "mode": str, "episodes": np.int64}
    rows = []
    for row in read_rows(path, EVALUATION_COLUMNS):
        try:
            rows.append(
                [types.get(name, np.float64)(cell) for name, cell in zip(EVALUATION_COLUMNS, row)]
            )
        except ValueError:
            continue
    columns = list(zip(*rows)) if rows else [()] * len(EVALUATION_COLUMNS)
    return {
        name: np.asarray(column, types.get(name, np.float64))
        for name, column in zip(EVALUATION_COLUMNS, columns)
    }
