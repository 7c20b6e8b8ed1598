"""The trainer's whole loop against the raw vector env, in one process.

python benchmarks/loop_speed.py --env=HalfCheetah-v5 --total_steps=300000 --runs=3

The raw rate is a ceiling: the vector env the trainer would make (its default number of
envs, `sync`), stepped with random actions, as the best of --windows windows of
--window_seconds each, measured before and after the runs (the best of all). Each run is
`train()` with the env's defaults and a run folder (checkpoints, episodes.csv, TensorBoard),
no evaluations, no closing evaluation, no early stop: its rate is the counted env steps over
the loop's seconds (`TrainResult.seconds`: envs, acting, updates, logging, checkpoints).
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common as _cli  # first: it imports TensorFlow quietly

# isort: split
import report as report_lib
from absl import app, flags, logging

from reinforce_tf import TrainConfig, train
from reinforce_tf.training.envs import make_vector_env

_ENV = flags.DEFINE_string("env", "HalfCheetah-v5", "Gymnasium id (its defaults apply).")
_TOTAL_STEPS = flags.DEFINE_integer("total_steps", 300_000, "Env steps of each run.", lower_bound=1)
_RUNS = flags.DEFINE_integer("runs", 3, "Trainer runs, seeds 0 … runs − 1.", lower_bound=1)
_WINDOWS = flags.DEFINE_integer(
    "windows", 6, "Raw-env windows before and after the runs each.", lower_bound=1
)
_WINDOW_SECONDS = flags.DEFINE_float(
    "window_seconds", 2.0, "Seconds of each raw-env window.", lower_bound=0.1
)


def raw_rates(config: TrainConfig, windows: int, seconds: float) -> list[float]:
    """Env steps/s of the trainer's vector env under random actions, one per window."""
    env = make_vector_env(config.env, config.resolved_num_envs, config.env_kwargs, config.preset)
    env.action_space.seed(0)
    env.reset(seed=0)
    rates = []
    try:
        for _ in range(windows):
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                env.step(env.action_space.sample())
                steps += env.num_envs
            rates.append(steps / (time.perf_counter() - start))
    finally:
        env.close()
    return rates


def run() -> dict:
    config = TrainConfig.for_env(
        _ENV.value,
        total_steps=_TOTAL_STEPS.value,
        target_return=float("inf"),
        final_eval_episodes=0,
    )
    raw = raw_rates(config, _WINDOWS.value, _WINDOW_SECONDS.value)
    runs = []
    for seed in range(_RUNS.value):
        with tempfile.TemporaryDirectory() as folder:
            result = train(
                TrainConfig.for_env(
                    _ENV.value,
                    seed=seed,
                    total_steps=_TOTAL_STEPS.value,
                    target_return=float("inf"),
                    final_eval_episodes=0,
                    logdir=f"{folder}/run",
                    save_path=f"{folder}/policy.keras",
                ),
                progress=None,
            )
        runs.append({"seed": seed, "steps": result.steps, "seconds": result.seconds})
    raw += raw_rates(config, _WINDOWS.value, _WINDOW_SECONDS.value)
    return {"machine": report_lib.machine(), "config": config, "raw": raw, "runs": runs}


def markdown(measured: dict) -> str:
    config, raw, runs = measured["config"], measured["raw"], measured["runs"]
    ceiling = max(raw)
    lines = [
        (
            f"`python benchmarks/loop_speed.py {' '.join(sys.argv[1:])}`: {config.env}, "
            f"{config.resolved_num_envs} envs, {config.episodes_per_update} episodes per update; "
            f"{measured['machine']['date_utc']} UTC, {measured['machine']['cores']} cores, load "
            f"average {' / '.join(map(str, measured['machine']['load_average_at_start']))} at start."
        ),
        "",
        (
            f"Raw vector env, random actions: best of {len(raw)} windows {ceiling:,.0f} env "
            f"steps/s (median {statistics.median(raw):,.0f}, worst {min(raw):,.0f})."
        ),
        "",
        "| seed | counted steps | loop seconds | steps/s | of the raw ceiling |",
        "| --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for r in runs:
        rate = r["steps"] / r["seconds"]
        ratios.append(rate / ceiling)
        lines.append(
            f"| {r['seed']} | {r['steps']:,} | {r['seconds']:.1f} | {rate:,.0f} | "
            f"{rate / ceiling:.1%} |"
        )
    lines.append(f"| median | | | | **{statistics.median(ratios):.1%}** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint saver logs at INFO
    print(markdown(_cli.run_reporting_input_errors(run)), end="")


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
