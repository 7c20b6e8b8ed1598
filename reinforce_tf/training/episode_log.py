"""episodes.csv: one row per finished episode, for people without TensorBoard.

Columns: episode (1, 2, …), step (env steps of counted episodes when it ended, in the order
the trainer counts them), return, length, wall_time (Unix seconds when it was logged).

Rows of one update go to the file in a single `write` on a descriptor opened with O_APPEND,
so a killed process leaves whole rows; resuming first drops any partial last line and every
row past the checkpoint's episode counter, so the file and the checkpoint agree.
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


class EpisodeLog:
    """Appends episode rows to `folder/episodes.csv`.

    Args:
        folder: the run folder.
        keep_episodes: None starts a new file; an int resumes, keeping the first
            `keep_episodes` whole rows of the existing file.

    Raises:
        InputError: (field resume) a kept row is not numbers, or the file is not text.
    """

    def __init__(self, folder: Path, keep_episodes: int | None = None):
        self.path = Path(folder) / EPISODES_NAME
        header = ",".join(COLUMNS) + "\n"
        kept = [] if keep_episodes is None else read_rows(self.path)[:keep_episodes]
        self._returns = [_row_return(self.path, number, row) for number, row in enumerate(kept, 1)]
        lines = [",".join(row) + "\n" for row in kept]
        write_text_atomically(self.path, header + "".join(lines))
        self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND)

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
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for offset, (step, value, length) in enumerate(zip(end_steps, returns, lengths)):
            writer.writerow(
                [first_episode + offset, int(step), repr(float(value)), int(length), now]
            )
        data = buffer.getvalue().encode()
        if data:
            os.write(self._descriptor, data)

    def sync(self) -> None:
        """Flushes the rows to disk (called before each checkpoint)."""
        os.fsync(self._descriptor)

    def close(self) -> None:
        os.close(self._descriptor)


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


def read_rows(path: Path) -> list[list[str]]:
    """The whole rows of an episodes.csv (no header); a partial last line is dropped.

    Raises:
        InputError: the file is not UTF-8 text.
    """
    if not Path(path).is_file():
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not UTF-8 text (a damaged episodes.csv)") from None
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text)))
    return [row for row in rows[1:] if len(row) == len(COLUMNS)]


def read_episodes(path: Path) -> dict[str, np.ndarray]:
    """episodes.csv as columns: {"episode", "step", "length": int64, "return", "wall_time": float64}."""
    rows = read_rows(path)
    columns = list(zip(*rows)) if rows else [()] * len(COLUMNS)
    types = (np.int64, np.int64, np.float64, np.int64, np.float64)
    return {name: np.asarray(column, dtype) for name, column, dtype in zip(COLUMNS, columns, types)}
