"""What every result table's report (`mujoco_report`, `minatar_report`) shares: results
grouped by env, curves aligned over seeds, "mean ± std" cells, a run's flags, the curve PNG.

A results entry is what `table_runs.result` stores; every std is the population std over
seeds.
"""

import dataclasses

import numpy as np

from reinforce_tf.config import TrainConfig
from reinforce_tf.training.curves import NOT_THE_EXPERIMENT

# A report may hold notes written by hand between these lines; `table.py` keeps them when it
# rewrites the report.
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"


@dataclasses.dataclass(frozen=True)
class MeanCurve:
    """Curves of one env's seeds, aligned by point number k.

    Attributes:
        steps: [K] the mean over seeds of the step counter at point k.
        returns: [S, K] each seed's mean return at point k, K the points every seed has.
    """

    steps: np.ndarray
    returns: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.returns.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.returns.std(axis=0)

    def best(self) -> tuple[float, float, int]:
        """(max_k of the mean over seeds, the std over seeds there, its step)."""
        k = int(np.argmax(self.mean))
        return float(self.mean[k]), float(self.std[k]), round(float(self.steps[k]))


def aligned(curves: list) -> MeanCurve | None:
    """`curves` (one per seed, each [step, mean return] pairs) truncated to the points every
    seed has and stacked; None without any point."""
    arrays = [np.asarray(curve, np.float64).reshape(-1, 2) for curve in curves]
    length = min(len(curve) for curve in arrays) if arrays else 0
    if length == 0:
        return None
    stacked = np.stack([curve[:length] for curve in arrays])  # [S, K, 2]: step, mean return
    return MeanCurve(stacked[:, :, 0].mean(axis=0), stacked[:, :, 1])


def mean_curve(runs: list[dict], mode: str) -> MeanCurve | None:
    """The `mode` ("sampled" or "greedy") evaluation curves of `runs` (one env's seeds),
    aligned by evaluation number; None without any."""
    return aligned([run["evaluations"][mode] for run in runs])


def mean_std(values: list[float]) -> str:
    """ "mean ± std" of `values`, "—" without any."""
    if not values:
        return "—"
    return f"{np.mean(values):,.1f} ± {np.std(values):,.1f}"


def minutes(runs: list[dict]) -> str:
    """Wall minutes per run: one run's, or the mean (min–max); "—" without runs."""
    values = [r["wall_seconds"] / 60 for r in runs]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def config_flags(config: dict) -> str:
    """The run's config as the flags that differ from the generic defaults (the env's
    defaults and the runner's), leaving out the run's paths, seed and budget."""
    generic = dataclasses.asdict(TrainConfig())
    flags = []
    for name, value in config.items():
        if name in NOT_THE_EXPERIMENT or name in ("env",) or generic.get(name) == value:
            continue
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, list):
            flags.append(f"--{name}={','.join(map(str, value))}")
        else:
            flags.append(f"--{name}={value}")
    return " ".join(flags) or "(the generic defaults)"


def by_env(results: dict) -> dict[str, list[dict]]:
    """The results grouped by env, each group ordered by budget then seed."""
    groups: dict[str, list[dict]] = {}
    for entry in sorted(results.values(), key=lambda r: (r["total_steps"], r["seed"])):
        groups.setdefault(entry["env"], []).append(entry)
    return groups


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def plot_curves(title: str, curves: list[tuple[str, MeanCurve, bool]], lines, ylabel: str, path):
    """Writes a PNG to `path`: each (label, curve, band) of `curves` as its mean over seeds
    (the first solid, the others dashed), with a band of ± one std over seeds when `band`;
    each (value, label) of `lines` as a gray horizontal line.

    Raises:
        OSError: the file could not be written.
    """
    import matplotlib.ticker

    figure, ax = new_figure()
    for index, (label, curve, band) in enumerate(curves):
        (line,) = ax.plot(curve.steps, curve.mean, "-" if index == 0 else "--", label=label)
        if band:
            ax.fill_between(
                curve.steps,
                curve.mean - curve.std,
                curve.mean + curve.std,
                alpha=0.2,
                color=line.get_color(),
                linewidth=0,
            )
    ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    save_figure(figure, ax, (title, "env steps", ylabel), lines, path)


def new_figure():
    """A (figure, axes) of the reports' size, drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 3.8))


def save_figure(figure, ax, labels: tuple[str, str, str], lines, path) -> None:
    """Adds each (value, label) of `lines` as a gray horizontal line, the (title, x label, y
    label), a grid and the legend, writes the PNG to `path` and closes the figure.

    Raises:
        OSError: the file could not be written.
    """
    import matplotlib.pyplot as plt

    for (value, label), style in zip(lines, (":", "-.", (0, (5, 1)), (0, (1, 3)))):
        ax.axhline(value, color="gray", linestyle=style, linewidth=1, label=label)
    title, xlabel, ylabel = labels
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=80, format="png")
    finally:
        plt.close(figure)
