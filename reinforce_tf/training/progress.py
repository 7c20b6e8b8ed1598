"""Showing a run's progress: a one-line bar on a terminal, plain lines elsewhere.

`train(config, progress=...)` takes any object with the `Progress` methods; `for_stdout()`
picks `Bar` when stdout is a terminal and `Lines` otherwise (CI logs, files). Both show the
env steps done of the budget, the mean return of the last 100 episodes, the steps per second
and the time left at that rate: "≤" before it when a target return may end the run sooner.
"""

import math
import shutil
import sys
import time
from collections.abc import Callable
from typing import Protocol


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


def rounded(value: float) -> str:
    """A return as people read it: 7,971 · 158.5 · 9.50 · -0.53 (4 significant digits at
    most below 1,000, whole numbers above); "–" before any episode (NaN)."""
    if not math.isfinite(value):
        return "–" if math.isnan(value) else str(value)
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def duration(seconds: float) -> str:
    """h:mm:ss or m:ss; "?" when unknown."""
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class _Shown:
    """What Bar and Lines share: the budget, the updates held back between shows (at most
    one show every `seconds`; `end` shows the last), and the ETA at the current rate
    (`stops_early`: a target return may end the run before its budget)."""

    def __init__(self, seconds: float, stops_early: bool):
        self._seconds = seconds
        self._stops_early = stops_early
        self._last_shown = -math.inf
        self._pending = None
        self._total = 1

    def start(self, steps: int, total_steps: int) -> None:
        self._total = total_steps
        self._pending = None
        if steps:
            self._write_line(f"resuming at step {steps:,} of {total_steps:,}")

    def update(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        self._pending = (steps, episodes, mean_return, steps_per_second)
        if time.perf_counter() - self._last_shown >= self._seconds:
            self._show_pending()

    def note(self, text: str) -> None:
        self._write_line(text)

    def end(self) -> None:
        if self._pending is not None:
            self._show_pending()

    def _show_pending(self) -> None:
        pending, self._pending = self._pending, None
        self._last_shown = time.perf_counter()
        self._show(*pending)

    def _eta(self, steps: int, steps_per_second: float) -> str:
        left = max(self._total - steps, 0)
        seconds = left / steps_per_second if steps_per_second > 0 else math.inf
        return ("≤" if self._stops_early and left else "") + duration(seconds)

    def _show(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        raise NotImplementedError

    def _write_line(self, text: str) -> None:
        raise NotImplementedError


class Bar(_Shown):
    """One line redrawn in place at most every `seconds`:
    `  12,000/20,000 [=========>.........]  60%  return 158.5  18,235 steps/s  ETA ≤0:03`.

    Args:
        stream: where to draw (stdout).
        seconds: the least time between redraws; the last update is drawn by `end`.
        stops_early: a target return may end the run first: the ETA is an upper bound.
    """

    WIDTH = 24

    def __init__(self, stream=None, seconds: float = 0.5, stops_early: bool = False):
        super().__init__(seconds, stops_early)
        self._stream = stream or sys.stdout
        self._drawn = False  # the cursor is at the end of a bar line
        self._length = 0  # of the bar line on the screen

    def end(self) -> None:
        super().end()
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def _show(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        done = min(steps / max(self._total, 1), 1.0)
        filled = int(done * self.WIDTH)
        arrow = ">" if filled < self.WIDTH else ""
        bar = "=" * filled + arrow + "." * (self.WIDTH - filled - len(arrow))
        text = (
            f"{min(steps, self._total):>{len(f'{self._total:,}')},}/{self._total:,} [{bar}] "
            f"{done:4.0%}  return {rounded(mean_return)}  {steps_per_second:,.0f} steps/s  "
            f"ETA {self._eta(steps, steps_per_second)}"
        )
        line = text[: shutil.get_terminal_size((100, 20)).columns - 1]
        # Blanks over what a longer line drawn before left on the screen.
        self._stream.write("\r" + line + " " * max(self._length - len(line), 0))
        self._stream.flush()
        self._drawn, self._length = True, len(line)

    def _write_line(self, text: str) -> None:
        """A line of its own, below the bar (redrawn at the next update)."""
        self._stream.write(("\n" if self._drawn else "") + text + "\n")
        self._stream.flush()
        self._drawn, self._length = False, 0


class Lines(_Shown):
    """A plain line every `seconds`: episodes, steps of total, mean return, steps/s, ETA.

    Args:
        write: receives each line (e.g. `print`).
        seconds: the least time between lines; the last update always gets one in `end`.
        stops_early: a target return may end the run first: the ETA is an upper bound.
    """

    def __init__(
        self, write: Callable[[str], None] = print, seconds: float = 2.0, stops_early: bool = False
    ):
        super().__init__(seconds, stops_early)
        self._write = write

    def start(self, steps: int, total_steps: int) -> None:
        super().start(steps, total_steps)
        self._last_shown = time.perf_counter()  # the first line after `seconds`

    def _show(self, steps: int, episodes: int, mean_return: float, steps_per_second: float):
        self._write(
            f"episodes {episodes:>6,}  steps {steps:>10,}/{self._total:,}  "
            f"return(last 100) {rounded(mean_return):>8}  steps/s {steps_per_second:>8,.0f}  "
            f"ETA {self._eta(steps, steps_per_second)}"
        )

    def _write_line(self, text: str) -> None:
        self._write(text)


def for_stdout(stops_early: bool = False) -> Progress:
    """`Bar` on a terminal, else `Lines` printing to stdout."""
    if sys.stdout.isatty():
        return Bar(stops_early=stops_early)
    return Lines(lambda line: print(line, flush=True), stops_early=stops_early)
