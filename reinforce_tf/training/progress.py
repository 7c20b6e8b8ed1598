"""Showing a run's progress: Keras's progress bar on a terminal, plain lines elsewhere.

`train(config, progress=...)` takes any object with the `Progress` methods; `for_stdout()`
picks `Bar` when stdout is a terminal and `Lines` otherwise (CI logs, files).
"""

import math
import sys
import time
from collections.abc import Callable
from typing import Protocol

import keras


class Progress(Protocol):
    """Receives the trainer's progress."""

    def start(self, steps: int, total_steps: int) -> None:
        """The run starts (or resumes) at env step `steps` of `total_steps`."""

    def update(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        """After each update: counters, mean return of the last 100 episodes, throughput."""

    def note(self, text: str) -> None:
        """A one-off line (an evaluation, a best policy saved)."""

    def end(self) -> None:
        """The run is over; leave the terminal on a fresh line."""


class Bar:
    """`keras.utils.Progbar` over the env steps still to run: steps, ETA, mean return, steps/s.

    (Progbar prints every metric with 4 decimals.)
    """

    def __init__(self):
        self._bar = None
        self._offset = 0
        self._current = 0

    def start(self, steps: int, total_steps: int) -> None:
        self._offset = steps
        self._bar = keras.utils.Progbar(
            max(total_steps - steps, 1),
            interval=0.5,
            stateful_metrics=["return", "steps/s"],
            unit_name="step",
        )
        if steps:
            print(f"resuming at step {steps:,} of {total_steps:,}", flush=True)

    def update(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        values = [("return", mean_return), ("steps/s", steps_per_second)]
        # The bar's own clamping would hide the last update's overshoot past the budget.
        self._current = min(steps - self._offset, self._bar.target)
        self._bar.update(self._current, values=values)

    def note(self, text: str) -> None:
        print(f"\n{text}", flush=True)

    def end(self) -> None:
        # At the target the bar has finished itself; before it (solved, interrupted) it has not.
        if self._bar is not None and self._current < self._bar.target:
            self._bar.update(self._current, finalize=True)


class Lines:
    """A plain line every `seconds`: episodes, steps of total, mean return, steps/s, ETA.

    Args:
        write: receives each line (e.g. `print`).
        seconds: the least time between lines; the last update always gets one in `end`.
    """

    def __init__(self, write: Callable[[str], None] = print, seconds: float = 2.0):
        self._write = write
        self._seconds = seconds
        self._last_line = None
        self._pending = None

    def start(self, steps: int, total_steps: int) -> None:
        self._total = total_steps
        self._first_steps = steps
        self._start = self._last_line = time.perf_counter()
        if steps:
            self._write(f"resuming at step {steps:,} of {total_steps:,}")

    def update(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        self._pending = (steps, episodes, mean_return, steps_per_second)
        if time.perf_counter() - self._last_line >= self._seconds:
            self._emit()

    def note(self, text: str) -> None:
        self._write(text)

    def end(self) -> None:
        if self._pending is not None:
            self._emit()

    def _emit(self) -> None:
        steps, episodes, mean_return, steps_per_second = self._pending
        self._pending = None
        self._last_line = time.perf_counter()
        left = max(self._total - steps, 0)
        eta = left / steps_per_second if steps_per_second > 0 else math.inf
        self._write(
            f"episodes {episodes:>6,}  steps {steps:>10,}/{self._total:,}  "
            f"return(last 100) {mean_return:9.2f}  steps/s {steps_per_second:>8,.0f}  "
            f"ETA {_duration(eta)}"
        )


def for_stdout() -> Progress:
    """`Bar` on a terminal, else `Lines` printing to stdout."""
    if sys.stdout.isatty():
        return Bar()
    return Lines(lambda line: print(line, flush=True))


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
