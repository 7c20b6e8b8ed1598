"""Measure how fast reinforce_tf acts, learns and solves, side by side with a naive loop.

python benchmarks/benchmark.py --seeds=5                        # prints a Markdown report
python benchmarks/benchmark.py --seeds=5 --output=bench.json --markdown=docs/benchmarks.md
python benchmarks/benchmark.py --env=HalfCheetah-v5 --seeds=1 --total_steps=200000 \
    --num_envs= --startup_seeds=0 --memory_steps=3000000   # Box actions: no naive reference

This file only parses flags and runs the measurements, one at a time, in this process on
this machine, with the trainer's defaults for --env:
- throughput.py: the raw vector env, the trainer's collection loop, acting alternatives
  (XLA, direct call, more envs, async envs), naive acting, update samples/s;
- time_to_target.py: wall seconds and env steps to the target return, per seed, for the
  trainer and for the naive reference (naive_reinforce.py: the same update, acting in one
  env with an eager `policy(obs)` call per step; Discrete actions only), and the trainer's
  counted steps/s over the whole run (collection and updates) beside the raw env's;
- whole_process.py: `scripts/train.py` as a user runs it: wall seconds from process start
  to exit per seed, and peak RSS of runs of growing length (no early stop);
- report.py: the machine, the Markdown report and the JSON file.
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common as _cli  # first: it imports TensorFlow quietly

# isort: split
import gymnasium as gym
import report as report_lib
import tensorflow as tf
import throughput
import time_to_target
import whole_process
from absl import app, flags

from reinforce_tf import TrainConfig
from reinforce_tf.errors import InputError
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.learner import target_return

_ENV = flags.DEFINE_string("env", "CartPole-v1", "Gymnasium environment id (its defaults apply).")
_SEEDS = flags.DEFINE_integer(
    "seeds", 5, "End-to-end runs per trainer, seeds 0 … seeds−1 (> 0).", lower_bound=1
)
_SECONDS = flags.DEFINE_float(
    "seconds", 3.0, "Wall seconds of each throughput measurement (> 0).", lower_bound=0.01
)
_TOTAL_STEPS = flags.DEFINE_integer(
    "total_steps", 1_000_000, "Env-step budget of each end-to-end run (> 0).", lower_bound=1
)
_NAIVE_SECONDS = flags.DEFINE_float(
    "naive_seconds",
    120.0,
    "Wall-second budget of each naive end-to-end run (>= 0; 0 means no limit). A run "
    "stopped by it is reported as not reaching the target, with its steps and time. Envs "
    "with Discrete actions only (the naive reference samples from probabilities).",
    lower_bound=0.0,
)
_NUM_ENVS = flags.DEFINE_list(
    "num_envs",
    "16,32,64,128",
    "Numbers of envs for the acting alternatives (comma list of integers > 0; empty skips).",
)
_ASYNC = flags.DEFINE_bool(
    "async_envs", True, "Also measure async (one process per env) vector envs."
)
_MEMORY_STEPS = flags.DEFINE_list(
    "memory_steps",
    "100000,1000000",
    "Lengths in env steps of the training runs whose peak RSS is measured (empty skips).",
)
_STARTUP_SEEDS = flags.DEFINE_integer(
    "startup_seeds",
    5,
    "Whole-process runs of scripts/train.py (seeds 0 … startup_seeds−1, the env's defaults, "
    "--total_steps) timed from process start to exit (>= 0; 0 skips).",
    lower_bound=0,
)
_OUTPUT = flags.DEFINE_string("output", None, "Also write every number as JSON to this path.")
_MARKDOWN = flags.DEFINE_string(
    "markdown",
    None,
    f"Also write the report into this Markdown file, between the lines {report_lib.START_MARK} and "
    f"{report_lib.END_MARK} if it has them (the rest of the file is kept), else as the whole file.",
)

# Every measurement builds its own agent, and TensorFlow counts the first traces of all of
# them together, warning of a retracing that is not there (tests/test_tracing.py checks
# that one agent traces its update at most twice).
tf.get_logger().setLevel("ERROR")


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run() -> dict:
    """Every measurement, in order; the report's dict (see report.markdown)."""
    num_envs_list, memory_steps = _check_flags()
    base = TrainConfig.for_env(_ENV.value, total_steps=_TOTAL_STEPS.value)
    probe = make_vector_env(base.env, 1)  # an unknown id or space fails here, before work
    probe.close()
    # The naive reference draws from probabilities: Discrete actions only.
    naive = isinstance(probe.single_action_space, gym.spaces.Discrete)
    report = {
        "machine": report_lib.machine(),
        "command": " ".join(["python benchmarks/benchmark.py", *sys.argv[1:]]),
        "config": {
            **{key: str(value) for key, value in vars(base).items()},
            "envs": base.resolved_num_envs,
        },
        "config_line": _config_line(base),
        "naive_seconds_budget": _NAIVE_SECONDS.value if naive else None,
    }
    progress(f"benchmark on {report['machine']}")
    seconds = _SECONDS.value

    progress("throughput: raw env, collection loop, naive acting, update …")
    raw = throughput.raw_env_rate(base.env, base.resolved_num_envs, seconds)
    report["throughput"] = {
        "raw_env_steps_per_s": raw,
        "collector": throughput.collector_rates(base, base.resolved_num_envs, seconds),
        "naive": throughput.naive_act_rate(base, seconds) if naive else None,
        "update": throughput.update_rate(base, seconds),
    }

    report["alternatives"] = []
    raw_rates = {(base.resolved_num_envs, None): raw}
    variants = [(base.resolved_num_envs, None, actor) for actor in ("tf_function", "make_actor")]
    variants += [(n, None, "trainer") for n in num_envs_list]
    if _ASYNC.value:
        variants.append((base.resolved_num_envs, "async", "trainer"))
    for num_envs, mode, actor in variants:
        progress(f"acting alternative: {num_envs} envs, {mode or 'default'} env, {actor}")
        if (num_envs, mode) not in raw_rates:
            raw_rates[num_envs, mode] = throughput.raw_env_rate(base.env, num_envs, seconds, mode)
        report["alternatives"].append(
            {
                "num_envs": num_envs,
                "actor": actor,
                "raw_env_steps_per_s": raw_rates[num_envs, mode],
                **throughput.collector_rates(base, num_envs, seconds, actor, mode),
            }
        )

    report["target"] = target_return(base)
    with tempfile.TemporaryDirectory() as workdir:
        report["end_to_end"] = time_to_target.runs_per_seed(
            base.env,
            _SEEDS.value,
            base.total_steps,
            _NAIVE_SECONDS.value if naive else None,
            Path(workdir),
            progress,
        )
        report["whole_process"] = []
        for seed in range(_STARTUP_SEEDS.value):
            progress(f"whole process: scripts/train.py --seed={seed}")
            seconds = whole_process.start_to_exit_seconds(
                base.env, seed, base.total_steps, Path(workdir)
            )
            report["whole_process"].append({"seed": seed, "seconds": seconds})
        report["memory"] = []
        for steps in memory_steps:
            progress(f"memory: training for {steps:,} steps")
            peak = whole_process.peak_rss_mib(base.env, steps, Path(workdir))
            report["memory"].append({"steps": steps, "peak_rss_mib": peak})
    return report


def _check_flags() -> tuple[list[int], list[int]]:
    """The integer lists of --num_envs and --memory_steps; checks the output paths."""

    def positive_integers(flag) -> list[int]:
        items = [item.strip() for item in flag.value if item.strip()]
        if not all(item.isdigit() and int(item) >= 1 for item in items):
            raise InputError(
                f"must be a comma list of integers >= 1; got {','.join(flag.value)!r}",
                field=flag.name,
            )
        return [int(item) for item in items]

    num_envs = positive_integers(_NUM_ENVS)
    memory_steps = positive_integers(_MEMORY_STEPS)
    if _OUTPUT.value and not Path(_OUTPUT.value).parent.is_dir():
        raise InputError("its directory does not exist", field="output")
    if _MARKDOWN.value and not Path(_MARKDOWN.value).parent.is_dir():
        raise InputError("its directory does not exist", field="markdown")
    return num_envs, memory_steps


def _config_line(config: TrainConfig) -> str:
    """The config as scripts/train.py flags: the usual ones, then the algorithm's options
    (baseline, entropy, clipping, normalisation) where they differ from the generic
    defaults, as the env's defaults may set them (Acrobot-v1: --baseline=mean)."""
    hidden = ",".join(map(str, config.hidden_sizes))
    line = (
        f"--hidden_sizes={hidden} --learning_rate={config.learning_rate} "
        f"--optimizer={config.optimizer} --gamma={config.gamma} --update={config.update} "
        f"--batch_episodes={config.batch_episodes} --num_envs={config.resolved_num_envs}"
    )
    generic = TrainConfig()
    for name in ("baseline", "entropy_coef", "max_grad_norm", "normalize_observations"):
        value = getattr(config, name)
        if value != getattr(generic, name):
            line += f" --{name}={value}" if not isinstance(value, bool) else f" --{name}"
    return line


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    report = _cli.run_reporting_input_errors(run)
    text = report_lib.markdown(report)
    print(text, end="")
    if _OUTPUT.value:
        report_lib.write_json(Path(_OUTPUT.value), report)
    if _MARKDOWN.value:
        report_lib.write_markdown(Path(_MARKDOWN.value), text)


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
