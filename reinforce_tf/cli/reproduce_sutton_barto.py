"""Reproduce Sutton & Barto's Figures 13.1 and 13.2 on the short corridor.

python scripts/reproduce_sutton_barto.py [--runs=100] [--episodes=1000] [--output_dir=.]

Figure 13.1: REINFORCE (per-step SGD updates, γ = 1, linear softmax on the two action
features, π(right) = 0.05 at the start) with α = 2⁻¹², 2⁻¹³, 2⁻¹⁴. Figure 13.2: REINFORCE
with a learned state-value baseline, α_θ = 2⁻⁹, α_w = 2⁻⁶, against REINFORCE with α = 2⁻¹³.
Each curve is the return per episode averaged over the runs. Writes sutton_barto.csv (one
column per curve) and sutton_barto.png, and prints each curve's mean over its last 100
episodes next to v* = −11.66 and the first episode at which its 100-episode moving average
comes within 1.5 of v*.
"""

import os

from reinforce_tf.cli import common  # first: it imports TensorFlow quietly

# isort: split
import numpy as np
from absl import app, flags

from reinforce_tf.errors import error_reason
from reinforce_tf.exact.corridor_runs import CorridorRuns
from reinforce_tf.exact.short_corridor import OPTIMAL_VALUE
from reinforce_tf.training.saving import check_output_file, written_atomically

_RUNS = flags.DEFINE_integer("runs", 100, "Independent runs averaged per curve (>= 1).")
_EPISODES = flags.DEFINE_integer("episodes", 1000, "Episodes per run (>= 1).")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the action draws of every curve (>= 0).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", ".", "Existing directory for sutton_barto.csv and sutton_barto.png."
)

# (CSV column, label, α_θ, α_w or None): Figure 13.1's three step sizes, then 13.2's baseline.
CURVES = (
    ("reinforce_2^-12", "REINFORCE α = 2⁻¹²", 2.0**-12, None),
    ("reinforce_2^-13", "REINFORCE α = 2⁻¹³", 2.0**-13, None),
    ("reinforce_2^-14", "REINFORCE α = 2⁻¹⁴", 2.0**-14, None),
    ("baseline_2^-9_2^-6", "with baseline α_θ = 2⁻⁹, α_w = 2⁻⁶", 2.0**-9, 2.0**-6),
)
WITHIN = 1.5  # "there": a 100-episode moving average within this of v*
WINDOW = 100


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        common.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    common.run_reporting_input_errors(_reproduce)


def _reproduce() -> None:
    runs, episodes, seed, output_dir = _RUNS.value, _EPISODES.value, _SEED.value, _OUTPUT_DIR.value
    for name, value in (("runs", runs), ("episodes", episodes)):
        if value < 1:
            raise common.InputError(f"must be an integer >= 1; got {value}", field=name)
    if seed < 0:
        raise common.InputError(f"must be an integer >= 0; got {seed}", field="seed")
    if not os.path.isdir(output_dir):
        raise common.InputError(f"{output_dir!r} is not an existing directory", field="output_dir")
    csv_path = os.path.join(output_dir, "sutton_barto.csv")
    png_path = os.path.join(output_dir, "sutton_barto.png")
    for path, suffix in ((csv_path, ".csv"), (png_path, ".png")):
        check_output_file(path, "output_dir", suffix)  # before the runs, not after
    common.pyplot()  # before the runs: the figure needs matplotlib
    curves = {}
    for column, label, step_size, baseline_step_size in CURVES:
        runner = CorridorRuns(runs, step_size, baseline_step_size=baseline_step_size, seed=seed)
        curves[column] = runner.run(episodes, progress=_progress(label, episodes)).mean(axis=1)
        if runner.truncated:
            print(f"{label}: {runner.truncated} episodes hit the {runner.max_steps}-step limit")
    print(
        f"\nv* = {OPTIMAL_VALUE:.2f}; mean return over the last {min(WINDOW, episodes)} "
        f"episodes and {runs} runs:"
    )
    for column, label, _, _ in CURVES:
        last = curves[column][-WINDOW:].mean()
        reached = _first_within(curves[column])
        when = f"episode {reached}" if reached is not None else "not reached"
        print(
            f"  {label:<36} {last:8.2f}  (v* {last - OPTIMAL_VALUE:+.2f});  "
            f"within {WITHIN} of v*: {when}"
        )
    for path, write in ((csv_path, _write_csv), (png_path, _write_plot)):
        try:
            write(path, curves, runs)
        except OSError as error:  # e.g. the disk is full; an old file keeps its bytes
            raise common.InputError(
                f"could not write {path!r}: {error_reason(error)}", field="output_dir"
            ) from None
    print(f"wrote {csv_path} and {png_path}")


def _progress(label: str, episodes: int):
    every = max(1, episodes // 10)

    def report(episode: int, returns: np.ndarray) -> None:
        if (episode + 1) % every == 0 or episode + 1 == episodes:
            print(
                f"{label}: episode {episode + 1}/{episodes}, mean return {returns.mean():.2f}",
                flush=True,
            )

    return report


def _first_within(curve: np.ndarray) -> int | None:
    """The first episode (1-based) whose trailing 100-episode mean is within 1.5 of v*."""
    if len(curve) < WINDOW:
        return None
    moving = np.convolve(curve, np.ones(WINDOW) / WINDOW, mode="valid")  # ends at WINDOW…E
    hits = np.flatnonzero(moving >= OPTIMAL_VALUE - WITHIN)
    return int(hits[0]) + WINDOW if hits.size else None


def _write_csv(path: str, curves: dict[str, np.ndarray], runs: int) -> None:
    columns = list(curves)
    table = np.column_stack([np.arange(1, len(curves[columns[0]]) + 1), *curves.values()])
    with written_atomically(path) as temporary:
        np.savetxt(
            temporary,
            table,
            delimiter=",",
            header=",".join(["episode", *columns]),
            comments="",
            fmt=["%d"] + ["%.4f"] * len(columns),
        )


def _write_plot(path: str, curves: dict[str, np.ndarray], runs: int) -> None:
    plt = common.pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    labels = {column: label for column, label, _, _ in CURVES}
    episodes = np.arange(1, len(next(iter(curves.values()))) + 1)
    panels = (
        (left, "Figure 13.1: REINFORCE", ["reinforce_2^-12", "reinforce_2^-13", "reinforce_2^-14"]),
        (right, "Figure 13.2: with baseline", ["baseline_2^-9_2^-6", "reinforce_2^-13"]),
    )
    for axes, title, columns in panels:
        for column in columns:
            axes.plot(episodes, curves[column], label=labels[column], linewidth=1)
        axes.axhline(OPTIMAL_VALUE, color="gray", linestyle="--", label=f"v* = {OPTIMAL_VALUE:.2f}")
        axes.set_title(f"{title} (short corridor, {runs} runs)")
        axes.set_xlabel("episode")
        axes.set_ylim(-90, -10)
        axes.legend(loc="lower right")
    left.set_ylabel("total reward on episode (mean over runs)")
    figure.tight_layout()
    try:
        with written_atomically(path) as temporary:
            figure.savefig(temporary, format="png", dpi=120)
    finally:
        plt.close(figure)


def run() -> None:
    """The console script's entry point: parses the flags, then `main`."""
    app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
    run()
