"""The MinAtar table's report: REINFORCE on the five MinAtar games beside the MinAtar
paper's agents, and the step-size sensitivity of the games swept.

The anchors are the MinAtar repository's learning curves (Young & Tian 2019; 5M frames,
sticky actions 0.1, 30 seeds), read off its plots: the mean return of training episodes near
the end. Ours is the same statistic: the mean return of the last 100 training episodes at
the budget (MinAtar has no frame skip, so its frames are our env steps; sticky actions 0.1
are MinAtar's own default), mean ± std over seeds. Beside it, the final saved policy's
closing evaluation, sampled and greedy (mean ± std over seeds), steps per second and wall
minutes per run.

The sweep: runs given `--train_flag=--learning_rate=α` group by α with the table's runs at
the default α; per α, the last-100 mean at the budget, mean ± std over seeds, as MinAtar's
sensitivity figure plots it against the step size.
"""

import numpy as np
from table_report import (
    NOTES_END,
    NOTES_START,
    MeanCurve,
    aligned,
    by_env,
    config_flags,
    mean_curve,
    mean_std,
    minutes,
    new_figure,
    plot_curves,
    row,
    save_figure,
)

from reinforce_tf.config import EVAL_MODES, TrainConfig

AGENTS = ("DQN", "DQN without replay", "AC(λ)")
ANCHORS = {
    "MinAtar/Asterix-v1": (17.0, 5.5, 19.0),
    "MinAtar/Breakout-v1": (10.0, 4.0, 17.5),
    "MinAtar/Freeway-v1": (50.0, 8.5, 47.0),
    "MinAtar/Seaquest-v1": (20.0, 0.4, 15.0),
    "MinAtar/SpaceInvaders-v1": (43.0, 13.0, 185.0),
}
TASKS = ROWS = tuple(ANCHORS)
DEFAULTS = {
    "total_steps": 5_000_000,
    "seeds": (0, 1, 2),
    "eval_every": 250_000,
    "greedy_eval_every": 1_000_000,
    "eval_episodes": 10,
}
README_START, README_END = "<!-- minatar:start -->", "<!-- minatar:end -->"
_STEP_SIZE_FLAG = "--learning_rate="


def default_step_size(env: str) -> float:
    """α of the package's per-env defaults for `env`."""
    return TrainConfig.for_env(env).learning_rate


def _step_size_only(run: dict) -> bool:
    """Whether the run's own flags (if any) set the step size alone."""
    return all(flag.startswith(_STEP_SIZE_FLAG) for flag in run.get("train_flags") or [])


def _at_the_defaults(run: dict) -> bool:
    """Whether the run trained with today's per-env defaults: no flags of its own but perhaps
    a step size, equal to the defaults' (a sweep's point at the α the defaults took since)."""
    alpha = float(run["config"]["learning_rate"])
    return _step_size_only(run) and alpha == default_step_size(run["env"])


def table_runs(results: dict) -> dict[str, list[dict]]:
    """The runs with the package's per-env defaults, by env."""
    return by_env({name: r for name, r in results.items() if _at_the_defaults(r)})


def sweeps(results: dict) -> dict[str, dict[float, list[dict]]]:
    """`sweep` of each env that ran more than one step size."""
    by_alpha = {env: sweep(runs) for env, runs in by_env(results).items()}
    return {env: runs for env, runs in by_alpha.items() if runs}


def sweep(runs: list[dict]) -> dict[float, list[dict]]:
    """One env's runs by step size: the runs with defaults and those whose own flags are a
    step size alone; {} when fewer than two step sizes were run."""
    groups: dict[float, list[dict]] = {}
    for r in filter(_step_size_only, runs):
        groups.setdefault(float(r["config"]["learning_rate"]), []).append(r)
    return dict(sorted(groups.items())) if len(groups) > 1 else {}


def pick(env: str, by_alpha: dict[float, list[dict]]) -> str:
    """The sweep's verdict on `env`'s step size: the α whose last-100 mean at the budget,
    averaged over seeds, is highest (among those with the most seeds), against the α of
    the defaults."""
    most = max(len(runs) for runs in by_alpha.values())
    means = {a: np.mean([r["last_100_mean"] for r in runs]) for a, runs in by_alpha.items()}
    best = max((a for a, runs in by_alpha.items() if len(runs) == most), key=means.get)
    default = default_step_size(env)
    verdict = (
        "the defaults' α"
        if best == default
        else f"not the defaults' α = {default:g}"
        + (f" ({means[default]:.2f})" if default in means else "")
    )
    return (
        f"{env.removeprefix('MinAtar/')}: the highest mean over {most} seeds is at "
        f"α = {best:g} ({means[best]:.2f}), {verdict}."
    )


def _steps_per_second(runs: list[dict]) -> str:
    if not runs:
        return "—"
    return f"{np.mean([r['steps'] / r['wall_seconds'] for r in runs]):,.0f}"


def _row(env: str, runs: list[dict]) -> list[str]:
    """Per game: last 100, the three anchors, the final policy sampled and greedy, seeds."""
    return [
        env.removeprefix("MinAtar/"),
        mean_std([r["last_100_mean"] for r in runs]),
        *(f"{value:g}" for value in ANCHORS[env]),
        mean_std([r["final_sampled_mean"] for r in runs]),
        mean_std([r["final_greedy_mean"] for r in runs]),
        str(len(runs)),
    ]


_HEADER = (
    "| game | ours: last 100 training episodes | DQN | DQN without replay | AC(λ) | ours: "
    "final policy, sampled | ours: final policy, greedy | seeds |"
)


def summary_table(results: dict) -> str:
    """The short table (README): per game, our last-100 mean beside the anchors."""
    groups = table_runs(results)
    rows = [_HEADER, "| --- " * 8 + "|"]
    rows += [row(_row(env, groups.get(env, []))) for env in ROWS]
    return "\n".join(rows) + "\n"


def goals(results: dict) -> str:
    """How many games (with runs) reach each anchor."""
    groups = table_runs(results)
    ours = {
        env: np.mean([r["last_100_mean"] for r in groups[env]]) for env in ROWS if env in groups
    }
    counts = [
        f"{sum(ours[env] >= ANCHORS[env][i] for env in ours)} of {len(ours)} at or above {agent}"
        for i, agent in enumerate(AGENTS[:2])
    ]
    return "; ".join(counts) if ours else "no game run yet"


def markdown(results: dict, machine: dict, commands: list[str], curves: dict[str, str]) -> str:
    """docs/minatar.md: the table, the sweep, the per-seed runs, curves, commands, machine."""
    groups = table_runs(results)
    lines = [
        "# MinAtar: REINFORCE on the five games, beside the MinAtar paper's agents",
        "",
        "Written by `benchmarks/table.py --table=minatar` from its results JSON",
        "(`minatar.json`); rerun it to update. Each run is `scripts/train.py` with the game's",
        "defaults (`ENV_DEFAULTS`) for 5M steps, no early stop. **Last 100**: the mean return",
        "of the last 100 training episodes at the budget (sampled actions), mean ± std over",
        "seeds: the statistic of the MinAtar repository's learning curves, whose values at 5M",
        "frames (30 seeds, sticky actions 0.1, read off its plots) are the anchors. MinAtar has",
        "no frame skip, so frames are env steps; sticky actions 0.1 are its default, and ours.",
        "**Final policy**: the saved policy after the last update, 10 episodes each way.",
        "",
        f"Goals: every game above DQN without replay, 3 of 5 at or above DQN. Now: {goals(results)}.",
        "",
        "| " + " | ".join(_HEADER.strip("| ").split(" | ")) + " | steps/s | minutes per run |",
        "| --- " * 10 + "|",
    ]
    for env in ROWS:
        runs = groups.get(env, [])
        lines.append(row([*_row(env, runs), _steps_per_second(runs), minutes(runs)]))
    lines += ["", "## Findings", "", NOTES_START, "None written yet.", NOTES_END]
    swept = sweeps(results)
    if swept:
        lines += [
            "",
            "## Step-size sensitivity",
            "",
            "The last-100 mean at the budget against the step size (Adam's α), mean ± std over",
            "seeds, as in MinAtar's sensitivity figure; the defaults' α is the table's runs.",
            "The rule for the defaults: the α with the highest mean among those with the most",
            "seeds.",
            "",
            *(f"- {pick(env, by_alpha)}" for env, by_alpha in swept.items()),
            "",
            "| game | step size | last 100 | final policy, sampled | seeds |",
            "| --- | --- | --- | --- | --- |",
        ]
        for env, by_alpha in swept.items():
            for alpha, runs in by_alpha.items():
                cells = [
                    env.removeprefix("MinAtar/"),
                    f"{alpha:g}",
                    mean_std([r["last_100_mean"] for r in runs]),
                    mean_std([r["final_sampled_mean"] for r in runs]),
                    str(len(runs)),
                ]
                lines.append(row(cells))
        lines += ["", *(f"![{key}]({curves[key]})" for key in curves if key.startswith("sweep"))]
    lines += [
        "",
        "## Runs",
        "",
        (
            "| run | steps | episodes | last 100 | final policy, sampled | final policy, greedy | "
            "steps/s | wall minutes (processes) |"
        ),
        "| --- " * 8 + "|",
    ]
    for name, r in sorted(results.items()):
        finals = [
            f"{r[f'final_{mode}_mean']:,.1f} ± {r[f'final_{mode}_std']:,.1f}" for mode in EVAL_MODES
        ]
        lines.append(
            row(
                [
                    name,
                    f"{r['steps']:,}",
                    f"{r['episodes']:,}",
                    f"{r['last_100_mean']:,.2f}",
                    *finals,
                    f"{r['steps'] / r['wall_seconds']:,.0f}",
                    f"{r['wall_seconds'] / 60:.1f} ({r['processes']})",
                ]
            )
        )
    lines += ["", "## Configs", ""]
    for env, runs in by_env(results).items():
        configs = sorted({config_flags(r["config"]) for r in runs})
        lines.append(f"- {env}: " + "; ".join(f"`{c}`" for c in configs))
    learning = [key for key in curves if not key.startswith("sweep")]
    if learning:
        lines += [
            "",
            "## Learning curves",
            "",
            "The mean return of the last 100 training episodes against env steps (the mean over",
            "seeds, its band ± one std over seeds), the sampled evaluations' mean, and the",
            "anchors at 5M.",
            "",
            *(f"![{key}]({curves[key]})" for key in learning),
        ]
    lines += ["", "## Commands", "", "```", *commands, "```", "", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    return "\n".join(lines) + "\n"


def plots(results: dict) -> dict:
    """The figures, by name: per game with table runs its learning curve, per game swept its
    sensitivity curve; each value writes its PNG to a path."""
    figures = {}
    for env, runs in table_runs(results).items():
        training = aligned([r["training_curve"] for r in runs])
        if training is not None:
            figures[env.removeprefix("MinAtar/")] = (
                lambda path, env=env, runs=runs, training=training: _learning(
                    env, runs, training, path
                )
            )
    for env, by_alpha in sweeps(results).items():
        figures[f"sweep {env.removeprefix('MinAtar/')}"] = lambda path, env=env, by_alpha=by_alpha: (
            _sensitivity(env, by_alpha, path)
        )
    return figures


def _learning(env: str, runs: list[dict], training: MeanCurve, path) -> None:
    """The training curve `training` of `runs` (mean and band over seeds), their sampled
    evaluations' mean, and the anchors."""
    seeds = f"{len(runs)} seed{'s' * (len(runs) > 1)}"
    curves = [(f"last 100 training episodes, mean of {seeds}", training, True)]
    sampled = mean_curve(runs, "sampled")
    if sampled is not None:
        curves.append((f"sampled evaluations, mean of {seeds}", sampled, False))
    anchors = [(value, agent) for agent, value in zip(AGENTS, ANCHORS.get(env, ()))]
    plot_curves(env, curves, anchors, "mean return", path)


def _sensitivity(env: str, by_alpha: dict[float, list[dict]], path) -> None:
    """The last-100 mean at the budget (mean ± std over seeds, error bars) against α on a
    log₂ axis, with the anchors."""
    values = [[r["last_100_mean"] for r in runs] for runs in by_alpha.values()]
    figure, ax = new_figure()
    ax.errorbar(
        list(by_alpha),
        [np.mean(v) for v in values],
        yerr=[np.std(v) for v in values],
        marker="o",
        capsize=3,
        label="REINFORCE, last 100 at the budget",
    )
    ax.set_xscale("log", base=2)
    anchors = [(value, agent) for agent, value in zip(AGENTS, ANCHORS.get(env, ()))]
    labels = (f"{env}: step-size sensitivity", "step size α (Adam)", "mean return")
    save_figure(figure, ax, labels, anchors, path)
