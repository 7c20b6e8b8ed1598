"""Progress output: plain lines off a terminal, a one-line bar on one."""

import io
import math
import sys

import pytest

from reinforce_tf import TrainConfig, train
from reinforce_tf.training import progress


def test_lines_show_steps_of_total_return_rate_and_eta():
    lines = []
    shown = progress.Lines(lines.append, seconds=0.0)
    shown.start(0, 3_000)
    # 1,000 of 3,000 steps at 500 steps/s: 2,000 left → ETA 4 s.
    shown.update(1_000, 40, 21.5, 500.0)
    shown.end()  # nothing pending: no second line
    assert lines == [
        (
            "episodes     40  steps      1,000/3,000  return(last 100)     21.5  steps/s      500  "
            "ETA 0:04"
        )
    ]


def test_lines_are_throttled_and_the_last_is_always_shown():
    lines = []
    shown = progress.Lines(lines.append, seconds=3600.0, stops_early=True)
    shown.start(500, 90_000)
    shown.update(1_000, 40, 21.5, 500.0)  # within the hour: held back
    shown.update(80_000, 900, 300.0, 2_000.0)
    shown.end()
    # 10,000 steps left at 2,000 steps/s → 5 s, or less: a target may end the run first.
    assert lines == [
        "resuming at step 500 of 90,000",
        (
            "episodes    900  steps     80,000/90,000  return(last 100)    300.0  steps/s    2,000  "
            "ETA ≤0:05"
        ),
    ]


def test_bar_redraws_one_line_notes_above_it_and_finishes(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # the bar is cut to the terminal's width
    stream = io.StringIO()
    bar = progress.Bar(stream, seconds=0.0)
    bar.start(0, 2_000)
    bar.update(1_000, 40, 21.5, 500.0)  # 1,000 left at 500 steps/s: 2 s
    bar.note("eval at step 1,000: sampled return 20.00 ± 1.00")
    bar.update(2_100, 90, 7971.0122, 600.0)  # the last update overshoots the budget
    bar.end()
    assert stream.getvalue() == (
        "\r1,000/2,000 [============>...........]  50%  return 21.5  500 steps/s  ETA 0:02"
        "\neval at step 1,000: sampled return 20.00 ± 1.00\n"
        "\r2,000/2,000 [========================] 100%  return 7,971  600 steps/s  ETA 0:00\n"
    )


@pytest.mark.parametrize(
    "value, shown",
    [
        (7971.0122, "7,971"),
        (-1234.5, "-1,234"),
        (158.54, "158.5"),
        (9.5, "9.50"),
        (-0.534, "-0.53"),
    ],
)
def test_returns_are_rounded_as_people_read_them(value, shown):
    assert progress.rounded(value) == shown
    assert progress.rounded(math.nan) == "–"


def test_auto_progress_off_a_terminal_prints_lines(tmp_path, capsys):
    assert not sys.stdout.isatty()  # pytest captures stdout
    assert isinstance(progress.for_stdout(), progress.Lines)
    train(TrainConfig(total_steps=1_000, save_path=str(tmp_path / "p.keras")))
    out = capsys.readouterr().out.strip().splitlines()
    # Updates of 16 episodes (~350 steps): the third would pass the budget, and says so.
    # A line every 2 s, so a slow machine may print one before that note; the last update's
    # line always comes last.
    notes = [line for line in out if not line.startswith("episodes ")]
    assert len(notes) == 1 and notes[0].startswith("the budget of 1,000 steps ran out"), out
    assert out[-1].startswith("episodes ") and "/1,000  return(last 100)" in out[-1]
    assert len(out) <= 3, out
