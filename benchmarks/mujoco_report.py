"""The MuJoCo table's report: our results beside Tianshou's and Spinning Up's, as Markdown.

Our metric, as Tianshou's: for each seed, the best mean greedy return of the evaluations
during training (`--eval_every`, `--eval_episodes`); the table gives its mean ± std over
seeds (population std). Beside it, the final saved policy's greedy mean over its episodes as
scripts/evaluate.py judges it, and the mean return of the last 100 training episodes
(Pendulum-v1's target is on that).
"""

import dataclasses

import numpy as np

from reinforce_tf.config import TrainConfig
from reinforce_tf.training.curves import NOT_THE_EXPERIMENT

# Tianshou's REINFORCE (examples/mujoco/README.md): 3M steps mean ± std over seeds, 10M mean.
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
# Spinning Up's VPG (PyTorch) at 3M steps, read off its benchmark plots (approximate).
SPINNING_UP_3M = {
    "Ant-v5": 5,
    "HalfCheetah-v5": 600,
    "Hopper-v5": 800,
    "Walker2d-v5": 460,
    "Swimmer-v5": 51,
}
TASKS = tuple(TIANSHOU_3M)
# The README's short table sits between these lines.
README_START, README_END = "<!-- mujoco:start -->", "<!-- mujoco:end -->"
# Pendulum-v1's swing-up target: the mean of the last 100 training episodes, within 2M steps.
PENDULUM_TARGET = -300.0


def _mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{np.mean(values):,.1f} ± {np.std(values):,.1f}"


def _minutes(results: list[dict]) -> str:
    minutes = [r["wall_seconds"] / 60 for r in results]
    if len(minutes) == 1:
        return f"{minutes[0]:.1f}"
    return f"{np.mean(minutes):.1f} ({min(minutes):.1f}–{max(minutes):.1f})"


def _reference(env: str) -> str:
    """Tianshou's 3M mean ± std, or Pendulum-v1's target."""
    if env == "Pendulum-v1":
        return f"target: last 100 ≥ {PENDULUM_TARGET:g} within 2M steps"
    theirs = TIANSHOU_3M.get(env)
    return f"{theirs[0]:,.1f} ± {theirs[1]:,.1f}" if theirs else "—"


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


def summary_table(results: dict) -> str:
    """The short table (README): per task, ours (best evaluation and final policy) beside
    Tianshou's 3M column, seeds done."""
    groups = by_env(results)
    rows = [
        (
            "| task | ours: best greedy eval | ours: final policy, greedy | ours: last 100 episodes "
            "| Tianshou 3M | seeds |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for env in [*TASKS, "Pendulum-v1"]:
        runs = groups.get(env, [])
        best = _mean_std([r["best_eval"] for r in runs if r["best_eval"] is not None])
        final = _mean_std([r["final_greedy_mean"] for r in runs])
        last = _mean_std([r["last_100_mean"] for r in runs])
        rows.append(f"| {env} | {best} | {final} | {last} | {_reference(env)} | {len(runs)} |")
    return "\n".join(rows) + "\n"


def markdown(results: dict, machine: dict, commands: list[str], curves: dict[str, str]) -> str:
    """docs/mujoco.md: the tables, the per-seed runs, the curves, commands and machine."""
    groups = by_env(results)
    lines = [
        "# MuJoCo: REINFORCE against Tianshou's and Spinning Up's",
        "",
        "Written by `benchmarks/mujoco_table.py` from its results JSON; rerun it to update. Each run is",
        "`scripts/train.py` with the env's defaults (`ENV_DEFAULTS`), `--eval_every`,",
        "`--eval_episodes` and no early stop, one trainer process per runner (runners sharing",
        "the 2 cores make each run's minutes longer than alone; why Humanoid and Ant take far",
        "more than 10 minutes: [benchmarks.md](benchmarks.md#humanoid-v5-and-ant-v5-mujocos-physics-is-the-floor)).",
        "**Best eval** is Tianshou's",
        "metric: per seed, the best mean greedy return of the evaluations during training; the",
        "table gives its mean ± std over seeds. **Final** is the saved policy's greedy mean as",
        "`scripts/evaluate.py` judges it. **Last 100** is the mean return of the last 100",
        "training episodes (sampled actions). Spinning Up's VPG numbers are read off its plots.",
        "",
        (
            "| task | best eval | final policy | last 100 | Tianshou 3M | Tianshou 10M "
            "| Spinning Up VPG 3M | seeds | minutes per run |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for env in [*TASKS, "Pendulum-v1"]:
        runs = groups.get(env, [])
        cells = [
            env,
            _mean_std([r["best_eval"] for r in runs if r["best_eval"] is not None]),
            _mean_std([r["final_greedy_mean"] for r in runs]),
            _mean_std([r["last_100_mean"] for r in runs]),
            _reference(env),
            f"{TIANSHOU_10M[env]:,.1f}" if env in TIANSHOU_10M else "—",
            f"~{SPINNING_UP_3M[env]}" if env in SPINNING_UP_3M else "—",
            str(len(runs)),
            _minutes(runs) if runs else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "Pendulum-v1's target: the mean of the last 100 training episodes ≥ "
            f"{PENDULUM_TARGET:g} within 2M steps."
        ),
        "",
        "## Runs",
        "",
        "Wall minutes add up the run's trainer processes: more than one when its runner was",
        "stopped and the run resumed, replaying the steps since its last checkpoint.",
        "",
        (
            "| run | steps | episodes | best eval (at step) | final policy, greedy | last 100 "
            "| wall minutes (processes) |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for env, runs in groups.items():
        for r in runs:
            best = (
                f"{r['best_eval']:,.1f} ({r['best_eval_step']:,})"
                if r["best_eval"] is not None
                else "—"
            )
            lines.append(
                f"| {env} seed {r['seed']} | {r['steps']:,} | {r['episodes']:,} | {best} | "
                f"{r['final_greedy_mean']:,.1f} ± {r['final_greedy_std']:,.1f} "
                f"({r['final_episodes']} episodes) | {r['last_100_mean']:,.1f} | "
                f"{r['wall_seconds'] / 60:.1f} ({r['processes']}) |"
            )
    lines += ["", "## Configs", ""]
    for env, runs in groups.items():
        configs = sorted({config_flags(r["config"]) for r in runs})
        lines.append(f"- {env}: " + "; ".join(f"`{c}`" for c in configs))
    if curves:
        lines += [
            "",
            "## Learning curves",
            "",
            "Mean return of the last 100 training episodes against env steps (mean and min–max",
            "over seeds; `scripts/plot.py`).",
            "",
        ]
        lines += [f"![{env}]({path})" for env, path in curves.items()]
    lines += ["", "## Commands", "", "```", *commands, "```", "", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    return "\n".join(lines) + "\n"
