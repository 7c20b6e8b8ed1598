"""Plot learning curves from run folders: mean and min–max over seeds against env steps.

python scripts/plot.py runs/CartPole-v1__seed0__* runs/CartPole-v1__seed1__* --out=curve.png

Each curve is the mean return of the last 100 episodes (the stop rule's statistic) of runs
that share a config except for the seed; one panel per env.
"""

from pathlib import Path

from reinforce_tf.cli import common  # first: it imports TensorFlow quietly

# isort: split
from absl import app, flags

from reinforce_tf.errors import InputError, error_reason
from reinforce_tf.training.curves import curves, read_run
from reinforce_tf.training.saving import check_output_file, written_atomically

_OUT = flags.DEFINE_string("out", "learning_curve.png", "The PNG to write.")
_TITLE = flags.DEFINE_string("title", None, "Figure title. Default: none.")
_WINDOW = flags.DEFINE_integer("window", 100, "Episodes averaged at each point (> 0).")


def main(argv: list[str]) -> None:
    folders = argv[1:]
    path = common.run_reporting_input_errors(_plot, folders)
    print(f"learning curve of {len(folders)} runs saved to {path}")


def _plot(folders: list[str]) -> Path:
    if not folders:
        raise InputError("give one or more run folders, e.g. runs/CartPole-v1__seed0__*")
    if _WINDOW.value <= 0:
        raise InputError(f"must be an integer > 0; got {_WINDOW.value}", field="window")
    out = Path(_OUT.value)
    check_output_file(out, "out", ".png")  # before reading anything
    plt = common.pyplot()
    from matplotlib.ticker import EngFormatter

    found = curves([read_run(folder) for folder in folders], window=_WINDOW.value)
    envs = sorted({curve.env for curve in found})

    figure, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for curve in (c for c in found if c.env == env):
            seeds = f"{curve.seeds} seed{'s' if curve.seeds > 1 else ''}"
            (line,) = ax.plot(curve.steps, curve.mean, label=f"{curve.label}, {seeds}")
            if curve.seeds > 1:
                ax.fill_between(
                    curve.steps,
                    curve.low,
                    curve.high,
                    alpha=0.2,
                    color=line.get_color(),
                    linewidth=0,
                )
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 50k, 1M
        ax.set_ylabel(f"mean return, last {_WINDOW.value} episodes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="mean; band: min–max over seeds", title_fontsize="small")
    if _TITLE.value:
        figure.suptitle(_TITLE.value)
    figure.tight_layout()
    try:
        with written_atomically(out) as temporary:  # never a half-written PNG
            figure.savefig(temporary, dpi=80, format="png")
    except OSError as error:  # e.g. the disk is full; the old file keeps its bytes
        raise InputError(
            f"could not write {str(out)!r}: {error_reason(error)}", field="out"
        ) from None
    finally:
        plt.close(figure)
    return out


def run() -> None:
    """The console script's entry point: parses the flags, then `main`."""
    app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
    run()
