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

from table_report import by_env, config_flags, mean_curve, mean_std, minutes, plot_curves, row

from reinforce_tf.config import EVAL_MODES

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
# The table's runs: `table.py --table=mujoco` (Pendulum-v1: --envs=Pendulum-v1
# --total_steps=2000000). Tianshou evaluates every 30,000-step epoch, 10 episodes.
ROWS = (*TASKS, "Pendulum-v1")
DEFAULTS = {
    "total_steps": 3_000_000,
    "seeds": (0, 1, 2, 3, 4),
    "eval_every": 30_000,
    "greedy_eval_every": 150_000,
    "eval_episodes": 10,
}
# The README's short table sits between these lines.
README_START, README_END = "<!-- mujoco:start -->", "<!-- mujoco:end -->"
# Pendulum-v1's swing-up target: the mean of the last 100 training episodes, within 2M steps.
PENDULUM_TARGET = -300.0


def _metric(runs: list[dict], mode: str) -> str:
    """Tianshou's metric on `mode` evaluations, "mean ± std"; "—" without evaluations."""
    curve = mean_curve(runs, mode) if runs else None
    if curve is None:
        return "—"
    value, std, _ = curve.best()
    return f"{value:,.1f} ± {std:,.1f}"


def _tianshou(env: str) -> tuple[str, str]:
    """Tianshou's 3M mean ± std and 10M mean, or Pendulum-v1's target and "—"."""
    if env == "Pendulum-v1":
        return f"target: last 100 ≥ {PENDULUM_TARGET:g} within 2M steps", "—"
    three, ten = TIANSHOU_3M.get(env), TIANSHOU_10M.get(env)
    return (
        f"{three[0]:,.1f} ± {three[1]:,.1f}" if three else "—",
        f"{ten:,.1f}" if ten is not None else "—",
    )


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
        mean_std([r["final_sampled_mean"] for r in runs]),
        mean_std([r["final_greedy_mean"] for r in runs]),
        mean_std([r["last_100_mean"] for r in runs]),
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
    for env in ROWS:
        rows.append(row(_row(env, groups.get(env, []))))
    return "\n".join(rows) + "\n"


def markdown(results: dict, machine: dict, commands: list[str], curves: dict[str, str]) -> str:
    """docs/mujoco.md: the table, the per-seed runs, the curves, commands and machine."""
    groups = by_env(results)
    lines = [
        "# MuJoCo: REINFORCE against Tianshou's REINFORCE, on Tianshou's metric",
        "",
        "Written by `benchmarks/table.py --table=mujoco` from its results JSON (`mujoco.json`);",
        "rerun it to update. Each run is `scripts/train.py` with the env's defaults (`ENV_DEFAULTS`),",
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
    for env in ROWS:
        runs = groups.get(env, [])
        cells = [*_row(env, runs), minutes(runs)]
        lines.append(row(cells))
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
        lines.append(row(cells))
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


def plots(results: dict) -> dict:
    """The figures, by env: each env with sampled evaluations its evaluation curves; each
    value writes its PNG to a path."""
    return {
        env: lambda path, env=env, runs=runs: _plot(env, runs, path)
        for env, runs in by_env(results).items()
        if mean_curve(runs, "sampled") is not None
    }


def _plot(env: str, runs: list[dict], path) -> None:
    """`env`'s evaluation curves: sampled (mean and band over seeds) and greedy (mean), with
    Tianshou's 3M and 10M numbers."""
    sampled, greedy = (mean_curve(runs, mode) for mode in EVAL_MODES)
    seeds = f"{len(runs)} seed{'s' * (len(runs) > 1)}"
    curves = [(f"sampled, mean of {seeds}", sampled, True)]
    if greedy is not None:
        curves.append((f"greedy, mean of {seeds}", greedy, False))
    lines = [
        (value, label)
        for value, label in (
            (TIANSHOU_3M.get(env, (None,))[0], "Tianshou 3M"),
            (TIANSHOU_10M.get(env), "Tianshou 10M"),
        )
        if value is not None
    ]
    plot_curves(env, curves, lines, "mean evaluation return", path)
