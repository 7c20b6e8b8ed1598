"""The MuJoCo table's report: our results beside Tianshou's REINFORCE, on Tianshou's metric.

Tianshou's metric (its examples/mujoco README: "the max average return over 10 trails
(different seeds) ± a single standard deviation over trails", "the same as TD3 evaluation
method"): average the seeds' evaluation curves step by step, take the best evaluation step of
that mean curve, and give the std over seeds at that step,

    metric = max_k mean_s R[s, k],    ± std_s R[s, k*],    k* = argmax_k mean_s R[s, k],

R[s, k] the mean return of seed s's k-th evaluation. Tianshou's test episodes sample their
actions (its REINFORCE keeps `deterministic_eval=False`), and it evaluates every 30,000-step
epoch. Ours: `--eval_every` sampled evaluations (and sparser greedy ones), the k-th at the
first update past k × eval_every steps, so seeds line up by k. Beside it, the same statistic
on greedy evaluations, the final saved policy's closing evaluation (sampled and greedy, mean ±
std over seeds) and the mean return of the last 100 training episodes (Pendulum-v1's target).
Every std is the population std over seeds.
"""

import dataclasses

import numpy as np

from reinforce_tf.config import EVAL_MODES, TrainConfig
from reinforce_tf.training.curves import NOT_THE_EXPERIMENT

# Tianshou's REINFORCE (examples/mujoco/README.md; MuJoCo v3, and v2 for Reacher and the two
# pendulums): its metric at 3M steps, mean ± std over seeds, and at 10M.
TIANSHOU_3M = {
    "Ant-v5": (474.9, 133.5),
    "HalfCheetah-v5": (884.0, 41.0),
    "Hopper-v5": (395.8, 64.5),
    "Walker2d-v5": (412.0, 52.4),
    "Swimmer-v5": (35.3, 1.4),
    "Humanoid-v5": (438.2, 47.8),
    "Reacher-v5": (-10.5, 0.7),
    "InvertedPendulum-v5": (999.2, 2.4),
    "InvertedDoublePendulum-v5": (1059.7, 307.7),
}
TIANSHOU_10M = {
    "Ant-v5": 1108.1,
    "HalfCheetah-v5": 1138.8,
    "Hopper-v5": 416.0,
    "Walker2d-v5": 440.9,
    "Swimmer-v5": 35.6,
    "Humanoid-v5": 464.3,
    "Reacher-v5": -5.5,
    "InvertedPendulum-v5": 1000.0,
    "InvertedDoublePendulum-v5": 7726.2,
}
TASKS = tuple(TIANSHOU_3M)
# The README's short table sits between these lines.
README_START, README_END = "<!-- mujoco:start -->", "<!-- mujoco:end -->"
# Pendulum-v1's swing-up target: the mean of the last 100 training episodes, within 2M steps.
PENDULUM_TARGET = -300.0


@dataclasses.dataclass(frozen=True)
class MeanCurve:
    """Evaluation curves of one env's seeds, aligned by evaluation number k.

    Attributes:
        steps: [K] the mean over seeds of the step counter at evaluation k.
        returns: [S, K] each seed's mean evaluation return, K the evaluations every seed has.
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
        """Tianshou's metric: (max_k of the mean over seeds, std over seeds there, its step)."""
        k = int(np.argmax(self.mean))
        return float(self.mean[k]), float(self.std[k]), round(float(self.steps[k]))


def mean_curve(runs: list[dict], mode: str) -> MeanCurve | None:
    """The `mode` ("sampled" or "greedy") evaluation curves of `runs` (one env's seeds, each a
    results entry), truncated to the evaluations every seed has; None without any."""
    curves = [np.asarray(run["evaluations"][mode], np.float64).reshape(-1, 2) for run in runs]
    length = min(len(curve) for curve in curves) if curves else 0
    if length == 0:
        return None
    stacked = np.stack([curve[:length] for curve in curves])  # [S, K, 2]: step, mean return
    return MeanCurve(stacked[:, :, 0].mean(axis=0), stacked[:, :, 1])


def _mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{np.mean(values):,.1f} ± {np.std(values):,.1f}"


def _metric(runs: list[dict], mode: str) -> str:
    """Tianshou's metric on `mode` evaluations, "mean ± std"; "—" without evaluations."""
    curve = mean_curve(runs, mode) if runs else None
    if curve is None:
        return "—"
    value, std, _ = curve.best()
    return f"{value:,.1f} ± {std:,.1f}"


def _minutes(results: list[dict]) -> str:
    minutes = [r["wall_seconds"] / 60 for r in results]
    if len(minutes) == 1:
        return f"{minutes[0]:.1f}"
    return f"{np.mean(minutes):.1f} ({min(minutes):.1f}–{max(minutes):.1f})"


def _tianshou(env: str) -> tuple[str, str]:
    """Tianshou's 3M mean ± std and 10M mean, or Pendulum-v1's target and "—"."""
    if env == "Pendulum-v1":
        return f"target: last 100 ≥ {PENDULUM_TARGET:g} within 2M steps", "—"
    three, ten = TIANSHOU_3M.get(env), TIANSHOU_10M.get(env)
    return (
        f"{three[0]:,.1f} ± {three[1]:,.1f}" if three else "—",
        f"{ten:,.1f}" if ten is not None else "—",
    )


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


def _row(env: str, runs: list[dict]) -> list[str]:
    """Per task: Tianshou's metric (sampled), Tianshou 3M and 10M, the metric on greedy
    evaluations, the final policy sampled and greedy, last 100, seeds."""
    three, ten = _tianshou(env)
    return [
        env,
        _metric(runs, "sampled"),
        three,
        ten,
        _metric(runs, "greedy"),
        _mean_std([r["final_sampled_mean"] for r in runs]),
        _mean_std([r["final_greedy_mean"] for r in runs]),
        _mean_std([r["last_100_mean"] for r in runs]),
        str(len(runs)),
    ]


_HEADER = (
    "| task | ours, Tianshou's metric (sampled) | Tianshou 3M | Tianshou 10M | ours, the same on "
    "greedy evaluations | ours: final policy, sampled | ours: final policy, greedy | ours: last "
    "100 training episodes | seeds |"
)


def summary_table(results: dict) -> str:
    """The short table (README): per task, Tianshou's metric beside Tianshou's numbers."""
    groups = by_env(results)
    rows = [_HEADER, "| --- " * 9 + "|"]
    for env in [*TASKS, "Pendulum-v1"]:
        rows.append("| " + " | ".join(_row(env, groups.get(env, []))) + " |")
    return "\n".join(rows) + "\n"


def markdown(results: dict, machine: dict, commands: list[str], curves: dict[str, str]) -> str:
    """docs/mujoco.md: the table, the per-seed runs, the curves, commands and machine."""
    groups = by_env(results)
    lines = [
        "# MuJoCo: REINFORCE against Tianshou's REINFORCE, on Tianshou's metric",
        "",
        "Written by `benchmarks/mujoco_table.py` from its results JSON (`mujoco.json`); rerun it",
        "to update. Each run is `scripts/train.py` with the env's defaults (`ENV_DEFAULTS`),",
        "evaluations during training and no early stop, one trainer process per runner (two",
        "runners share the 2 cores, so each run's minutes are longer than alone).",
        "",
        "**Tianshou's metric** (its MuJoCo README: \"the max average return over 10 trails",
        '(different seeds) ± a single standard deviation over trails", "the same as TD3',
        'evaluation method"): every 30,000 steps each seed plays 10 test episodes with actions',
        "*sampled* from its policy (Tianshou's REINFORCE evaluates stochastically); average the",
        "seeds' curves evaluation by evaluation, take the best evaluation of that mean curve,",
        "and give the std over seeds at that evaluation. Our runs do exactly that",
        "(`--eval_every=30000 --eval_episodes=10`, sampled), with 5 seeds to Tianshou's 10.",
        "**The same on greedy evaluations**: the statistic on greedy evaluations (the mean",
        "action, every 150,000 steps). **Final policy**: the saved policy after the last update,",
        "10 episodes each way, mean ± std over seeds. **Last 100**: the mean return of the last",
        "100 training episodes (sampled actions), mean ± std over seeds. Tianshou's numbers are",
        "for MuJoCo v3 (v2 for Reacher and the two pendulums) under mujoco-py; ours for v5.",
        "",
        "| " + " | ".join(_HEADER.strip("| ").split(" | ")) + " | minutes per run |",
        "| --- " * 10 + "|",
    ]
    for env in [*TASKS, "Pendulum-v1"]:
        runs = groups.get(env, [])
        cells = [*_row(env, runs), _minutes(runs) if runs else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "Pendulum-v1's target: the mean of the last 100 training episodes ≥ "
            f"{PENDULUM_TARGET:g} within 2M steps."
        ),
        "",
        "## Where the best of the mean curve is",
        "",
        "| task | sampled: best of the mean curve (step) | greedy: best of the mean curve (step) |",
        "| --- | --- | --- |",
    ]
    for env, runs in groups.items():
        cells = [env]
        for mode in EVAL_MODES:
            curve = mean_curve(runs, mode)
            if curve is None:
                cells.append("—")
                continue
            value, std, step = curve.best()
            cells.append(f"{value:,.1f} ± {std:,.1f} ({step:,})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Runs",
        "",
        "Best evaluations are each seed's own best (not Tianshou's metric). Wall minutes add up",
        "the run's trainer processes: more than one when its runner was stopped and the run",
        "resumed, replaying the steps since its last checkpoint.",
        "",
        (
            "| run | steps | episodes | best sampled eval (step) | best greedy eval (step) | "
            "final policy, sampled | final policy, greedy | last 100 | wall minutes (processes) |"
        ),
        "| --- " * 9 + "|",
    ]
    for env, runs in groups.items():
        for r in runs:
            best = [
                f"{r[f'best_{mode}_eval']:,.1f} ({r[f'best_{mode}_eval_step']:,})"
                if r[f"best_{mode}_eval"] is not None
                else "—"
                for mode in EVAL_MODES
            ]
            finals = [
                f"{r[f'final_{mode}_mean']:,.1f} ± {r[f'final_{mode}_std']:,.1f}"
                for mode in EVAL_MODES
            ]
            lines.append(
                f"| {env} seed {r['seed']} | {r['steps']:,} | {r['episodes']:,} | "
                + " | ".join(best + finals)
                + f" | {r['last_100_mean']:,.1f} | {r['wall_seconds'] / 60:.1f} ({r['processes']}) |"
            )
    lines += ["", "## Configs", ""]
    for env, runs in groups.items():
        configs = sorted({config_flags(r["config"]) for r in runs})
        lines.append(f"- {env}: " + "; ".join(f"`{c}`" for c in configs))
    if curves:
        lines += [
            "",
            "## Evaluation curves",
            "",
            "Mean evaluation return against env steps: sampled (the mean over seeds, its band ± one",
            "std over seeds) and greedy (the mean over seeds), with Tianshou's 3M and 10M numbers.",
            "",
        ]
        lines += [f"![{env}]({path})" for env, path in curves.items()]
    lines += ["", "## Commands", "", "```", *commands, "```", "", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    return "\n".join(lines) + "\n"


def plot(env: str, runs: list[dict], path) -> None:
    """Writes `env`'s evaluation curves (`runs` must have sampled ones) to the PNG `path`.

    Raises:
        OSError: the file could not be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sampled, greedy = (mean_curve(runs, mode) for mode in EVAL_MODES)
    figure, ax = plt.subplots(figsize=(6, 3.8))
    seeds = f"{len(runs)} seed{'s' * (len(runs) > 1)}"
    (line,) = ax.plot(sampled.steps, sampled.mean, label=f"sampled, mean of {seeds}")
    ax.fill_between(
        sampled.steps,
        sampled.mean - sampled.std,
        sampled.mean + sampled.std,
        alpha=0.2,
        color=line.get_color(),
        linewidth=0,
    )
    if greedy is not None:
        ax.plot(greedy.steps, greedy.mean, "--", label=f"greedy, mean of {seeds}")
    for value, label, style in (
        (TIANSHOU_3M.get(env, (None,))[0], "Tianshou 3M", ":"),
        (TIANSHOU_10M.get(env), "Tianshou 10M", "-."),
    ):
        if value is not None:
            ax.axhline(value, color="gray", linestyle=style, linewidth=1, label=label)
    ax.set_title(env)
    ax.set_xlabel("env steps")
    ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    ax.set_ylabel("mean evaluation return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=80, format="png")
    finally:
        plt.close(figure)
