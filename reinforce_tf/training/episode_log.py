"""The run's CSV logs, for people without TensorBoard: episodes.csv and evaluations.csv.

episodes.csv, one row per finished episode: episode (1, 2, …), step (env steps of counted
episodes when it ended, in the order the trainer counts them), return, length, wall_time
(Unix seconds when it was logged).

evaluations.csv, one row per evaluation during training (`--eval_every`): step (the step
counter when it ran), mode (sampled or greedy), mean, std, min and max of its returns,
episodes, wall_time.

Rows of one update go to a file in a single `write` on a descriptor opened with O_APPEND,
so a killed process leaves whole rows; resuming first drops any partial last line and every
row past the checkpoint (episodes past its episode counter, evaluations past its step
counter), so the files and the checkpoint agree.
"""

import csv
import io
import os
import time
from pathlib import Path

import numpy as np

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
            `keep_episodes` whole rows of the existing file.

    Raises:
        InputError: (field resume) a kept row is not numbers, or the file is not text.
    """

    def __init__(self, folder: Path, keep_episodes: int | None = None):
        path = Path(folder) / EPISODES_NAME
        kept = [] if keep_episodes is None else read_rows(path)[:keep_episodes]
        self._returns = [_row_return(path, number, row) for number, row in enumerate(kept, 1)]
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
        keep_steps: None starts a new file; an int resumes, keeping the whole rows of the
            existing file whose step is at most `keep_steps`.
    """

    def __init__(self, folder: Path, keep_steps: int | None = None):
        path = Path(folder) / EVALUATIONS_NAME
        kept = []
        if keep_steps is not None:
            kept = [
                row
                for row in read_rows(path, EVALUATION_COLUMNS)
                if row[0].isdigit() and int(row[0]) <= keep_steps
            ]
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


def _row_return(path: Path, number: int, row: list[str]) -> float:
    """The return of row `number` (1 = the first after the header), checking its numbers."""
    try:
        int(row[0]), int(row[1]), int(row[3]), float(row[4])
        return float(row[2])
    except ValueError:
        raise InputError(
            f"{str(path)!r} row {number} is damaged ({','.join(row)!r}); fix the row or start "
            "a new run in another folder",
            field="resume",
        ) from None


def read_rows(path: Path, columns: tuple[str, ...] = COLUMNS) -> list[list[str]]:
    """The whole rows of an episodes.csv (or a log of other `columns`), without the header;
    a partial last line is dropped.

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
    rows = list(csv.reader(io.StringIO(text)))
    return [row for row in rows[1:] if len(row) == len(columns)]


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
