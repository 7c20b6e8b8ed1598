"""Measure how fast reinforce_tf acts, learns and solves, side by side with a naive loop.

python scripts/benchmark.py --seeds=5                        # prints a Markdown report
python scripts/benchmark.py --seeds=5 --output=bench.json --markdown=docs/benchmarks.md

Everything is measured in this one process on this machine, one measurement at a time:
- rollout throughput: the trainer's collection loop (RolloutCollector + the compiled actor)
  against the raw vector env stepped with random actions, same env and number of envs;
- acting alternatives: XLA, calling the traced function directly, more envs, async envs;
- update throughput: samples per second through the REINFORCE step;
- end to end: wall seconds and env steps until the mean return of the last 100 episodes
  reaches the target, per seed, for the trainer and for a naive reference — the same
  algorithm acting in one env at a time with an eager `model(obs)` call per step;
- memory: peak RSS of `scripts/train.py` runs of growing length (no early stop).
"""

import collections
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import _cli  # before anything that imports TensorFlow: it does so quietly
import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from reinforce_tf import TrainConfig, train
from reinforce_tf.agent import Reinforce
from reinforce_tf.errors import InputError
from reinforce_tf.optimizers import make_optimizer
from reinforce_tf.policy import build_policy, distribution_model, make_actor, make_distribution
from reinforce_tf.returns import loss_weights
from reinforce_tf.training.envs import make_vector_env, to_env_actions
from reinforce_tf.training.loop import SOLVED_WINDOW
from reinforce_tf.training.rollout import RolloutCollector, split_episodes

START_MARK, END_MARK = "<!-- benchmark:start -->", "<!-- benchmark:end -->"

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
    "stopped by it is reported as not reaching the target, with its steps and time.",
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
_OUTPUT = flags.DEFINE_string("output", None, "Also write every number as JSON to this path.")
_MARKDOWN = flags.DEFINE_string(
    "markdown",
    None,
    f"Also write the report into this Markdown file, between the lines {START_MARK} and "
    f"{END_MARK} if it has them (the rest of the file is kept), else as the whole file.",
)

# Every measurement builds its own agent, and TensorFlow counts the first traces of all of
# them together, warning of a retracing that is not there (tests/test_tracing.py checks
# that one agent traces its update at most twice).
tf.get_logger().setLevel("ERROR")


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Throughput


def timed(step, seconds: float) -> tuple[int, int, float]:
    """Calls `step()` → (env steps, counted steps) until `seconds` pass; sums and time."""
    step()  # warm-up: traces and compiles outside the clock
    steps = counted = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        more_steps, more_counted = step()
        steps, counted = steps + more_steps, counted + more_counted
    return steps, counted, elapsed


def raw_env_rate(env_id: str, num_envs: int, seconds: float, mode: str | None = None) -> float:
    """Env steps/s of the vector env stepped with `action_space.sample()`, nothing else."""
    env = _vector_env(env_id, num_envs, mode)
    env.reset(seed=0)
    env.action_space.seed(0)

    def step():
        env.step(env.action_space.sample())
        return num_envs, num_envs

    try:
        steps, _, elapsed = timed(step, seconds)
    finally:
        env.close()
    return steps / elapsed


def collector_rates(
    config: TrainConfig, num_envs: int, seconds: float, act_variant: str, mode=None
) -> dict:
    """Env steps/s and counted steps/s of the trainer's collection loop (initial policy).

    `act_variant`: "make_actor" (the trainer's), or a local variant (see `variant_actor`).
    """
    env = _vector_env(config.env, num_envs, mode)
    try:
        policy = _policy(env, config)
        act = variant_actor(policy, config.seed, act_variant)
        collector = RolloutCollector(env, act, config.seed)
        episodes = split_episodes(max(config.episodes_per_update, num_envs), num_envs)

        def step():
            rollout = collector.collect(episodes)
            return rollout.valid.size, rollout.num_steps

        steps, counted, elapsed = timed(step, seconds)
    finally:
        env.close()
    return {
        "vector_env": type(env).__name__,
        "env_steps_per_s": steps / elapsed,
        "counted_steps_per_s": counted / elapsed,
    }


def variant_actor(policy: keras.Model, seed: int, variant: str):
    """The trainer's actor, or a local variant of it for comparison.

    - "make_actor": `policy.make_actor`, what the trainer uses: an XLA-compiled
      `tf.function` whose traced graph is called directly;
    - "tf_function": a plain `tf.function` called through its wrapper (no XLA);
    - "xla": the wrapper with `jit_compile=True`;
    - "concrete": the plain function's traced graph called directly (skips the wrapper's
      per-call argument checks), no XLA.
    """
    if variant == "make_actor":
        return make_actor(policy, seed=seed)
    parameters = distribution_model(policy)
    rng = tf.random.Generator.from_seed(seed)
    (obs_size,) = policy.input_shape[1:]
    act = tf.function(
        lambda observations: make_distribution(parameters(observations, training=False)).sample(
            rng
        ),
        input_signature=[tf.TensorSpec([None, obs_size], tf.float32)],
        jit_compile=variant == "xla",
    )
    if variant == "concrete":
        graph = act.get_concrete_function()
        return lambda observations: graph(tf.constant(observations, tf.float32)).numpy()
    return lambda observations: act(np.asarray(observations, np.float32)).numpy()


def update_rate(config: TrainConfig, seconds: float) -> dict:
    """Samples/s through one REINFORCE step (returns, weights, `agent.update`)."""
    env = make_vector_env(config.env, config.resolved_num_envs)
    try:
        policy = _policy(env, config)
        agent = Reinforce(policy, make_optimizer(config.optimizer, config.learning_rate))
        collector = RolloutCollector(env, make_actor(policy, seed=config.seed), config.seed)
        rollout = collector.collect(
            split_episodes(config.episodes_per_update, config.resolved_num_envs)
        )
    finally:
        env.close()
    valid = rollout.valid

    def step():
        weights = loss_weights(
            rollout.rewards,
            rollout.dones,
            valid,
            rollout.time_steps,
            config.gamma,
            normalize_returns=config.resolved_normalize_returns,
        )
        agent.update(
            tf.constant(rollout.observations[valid]),
            tf.constant(rollout.actions[valid]),
            tf.constant(weights[valid]),
            tf.constant(len(rollout.episode_returns), tf.float32),
        )
        return rollout.num_steps, rollout.num_steps

    samples, _, elapsed = timed(step, seconds)
    return {"samples_per_s": samples / elapsed, "batch_samples": rollout.num_steps}


# ---------------------------------------------------------------------------------------
# The naive reference


class NaiveResult(collections.namedtuple("NaiveResult", "steps seconds solved")):
    pass


def naive_train(config: TrainConfig, max_seconds: float, target: float) -> NaiveResult:
    """The same algorithm as the trainer, acting as tutorials do.

    One env, one episode at a time, an eager `policy(observation[None])` per step and a
    NumPy draw from its output; every `batch_episodes` episodes, the same REINFORCE
    update as the trainer (same returns, normalisation, loss and compiled step), so the
    comparison isolates acting. Stops at the target, the step budget or `max_seconds`
    (checked after each episode; 0 means no limit).
    """
    env = gym.make(config.env)
    try:
        policy = _policy(env, config, single=True)
        agent = Reinforce(policy, make_optimizer(config.optimizer, config.learning_rate))
        rng = np.random.default_rng(config.seed)
        recent = collections.deque(maxlen=SOLVED_WINDOW)
        steps, solved, seed = 0, False, config.seed
        start = time.perf_counter()

        def out_of_time() -> bool:
            return bool(max_seconds) and time.perf_counter() - start > max_seconds

        while steps < config.total_steps and not solved and not out_of_time():
            batch = []  # checked per episode: a batch can take minutes when acting naively
            while len(batch) < config.batch_episodes and not out_of_time():
                batch.append(_naive_episode(env, policy, rng, seed))
                steps += len(batch[-1][2])
                seed = None
            if len(batch) < config.batch_episodes:
                break  # stopped by the budget: a partial batch is never learned from
            observations, actions, rewards = (np.concatenate(part) for part in zip(*batch))
            dones = np.zeros(len(rewards), bool)
            dones[np.cumsum([len(episode[2]) for episode in batch]) - 1] = True
            valid = np.ones(len(rewards), bool)
            weights = loss_weights(
                rewards[:, None],
                dones[:, None],
                valid[:, None],
                np.zeros((len(rewards), 1), np.int32),  # only read by gamma_power
                config.gamma,
                normalize_returns=config.resolved_normalize_returns,
            )[:, 0]
            agent.update(
                tf.constant(observations),
                tf.constant(actions),
                tf.constant(weights),
                tf.constant(len(batch), tf.float32),
            )
            recent.extend(float(episode[2].sum()) for episode in batch)
            solved = len(recent) == SOLVED_WINDOW and np.mean(recent) >= target
        return NaiveResult(steps, time.perf_counter() - start, bool(solved))
    finally:
        env.close()


def _naive_episode(env, policy, rng, seed):
    """One episode: (observations [T, O] float32, actions [T] int32, rewards [T] float32)."""
    observation, _ = env.reset(seed=seed)
    observations, actions, rewards = [], [], []
    done = False
    while not done:
        probabilities = policy(observation[None].astype(np.float32)).numpy()[0]
        action = rng.choice(len(probabilities), p=probabilities / probabilities.sum())
        observations.append(observation)
        actions.append(action)
        observation, reward, terminated, truncated, _ = env.step(
            to_env_actions(np.int32(action), env.action_space)
        )
        rewards.append(reward)
        done = terminated or truncated
    return (
        np.asarray(observations, np.float32),
        np.asarray(actions, np.int32),
        np.asarray(rewards, np.float32),
    )


def naive_act_rate(config: TrainConfig, seconds: float) -> float:
    """Env steps/s of the naive reference's acting (initial policy, no updates)."""
    env = gym.make(config.env)
    try:
        policy = _policy(env, config, single=True)
        rng = np.random.default_rng(config.seed)

        def step():
            steps = len(_naive_episode(env, policy, rng, None)[2])
            return steps, steps

        steps, _, elapsed = timed(step, seconds)
    finally:
        env.close()
    return steps / elapsed


# ---------------------------------------------------------------------------------------
# End to end and memory


def end_to_end(config: TrainConfig, workdir: Path) -> dict:
    result = train(
        TrainConfig.for_env(
            config.env,
            seed=config.seed,
            total_steps=config.total_steps,
            save_path=str(workdir / f"policy_{config.seed}.keras"),
        ),
        progress=None,
    )
    return {"steps": result.steps, "seconds": result.seconds, "solved": result.solved}


def peak_rss_mib(env_id: str, steps: int, workdir: Path) -> float:
    """Peak resident memory of `scripts/train.py` run for `steps` env steps, in MiB."""
    command = [
        sys.executable,
        str(Path(__file__).resolve().parents[1] / "scripts" / "train.py"),
        f"--env={env_id}",
        f"--total_steps={steps}",
        "--target_return=inf",
        f"--save_path={workdir / 'memory.keras'}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
    }


def summary(values: list[float], decimals: int) -> str:
    """ "median (min–max)" of `values`."""
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{median:,.{decimals}f} ({low:,.{decimals}f}–{high:,.{decimals}f})"


def markdown(report: dict) -> str:
    m, config = report["machine"], report["config"]
    throughput = report["throughput"]
    lines = [
        (
            f"Measured {m['date_utc']} UTC on {m['cores']} cores ({m['cpu']}), load average "
            f"{' / '.join(map(str, m['load_average_at_start']))} (1/5/15 min) at start; "
            f"Python {m['python']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
            f"Gymnasium {m['gymnasium']}, NumPy {m['numpy']}."
        ),
        "",
        (
            f"Command: `{report['command']}`. Env {config['env']}, the trainer's defaults: "
            f"`{report['config_line']}`."
        ),
        "",
        "### Throughput",
        "",
        "| what | rate | vs. raw env |",
        "| --- | --- | --- |",
    ]
    raw = throughput["raw_env_steps_per_s"]
    collector = throughput["collector"]
    rows = [
        (f"raw vector env, random actions ({config['envs']} envs)", raw, "env steps/s"),
        (
            "trainer's collection loop, all env steps",
            collector["env_steps_per_s"],
            "env steps/s",
        ),
        (
            "trainer's collection loop, counted steps (excl. reset and idle steps)",
            collector["counted_steps_per_s"],
            "env steps/s",
        ),
        ("naive acting (1 env, eager `model(obs)` per step)", throughput["naive"], "env steps/s"),
    ]
    for name, rate, unit in rows:
        lines.append(f"| {name} | {rate:,.0f} {unit} | {rate / raw:.2%} |")
    update = throughput["update"]
    lines.append(
        f"| REINFORCE update (returns + compiled step, {update['batch_samples']:,}-sample "
        f"batch) | {update['samples_per_s']:,.0f} samples/s | |"
    )
    if report["alternatives"]:
        lines += [
            "",
            "### Acting alternatives (collection loop, initial policy)",
            "",
            (
                "| envs | vector env | actor | env steps/s | counted steps/s | raw env steps/s "
                "| vs. raw |"
            ),
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in report["alternatives"]:
            lines.append(
                f"| {row['num_envs']} | {row['vector_env']} | {row['actor']} | "
                f"{row['env_steps_per_s']:,.0f} | {row['counted_steps_per_s']:,.0f} | "
                f"{row['raw_env_steps_per_s']:,.0f} | "
                f"{row['env_steps_per_s'] / row['raw_env_steps_per_s']:.1%} |"
            )
    runs = report["end_to_end"]
    lines += [
        "",
        (
            f"### End to end: time to the target return ({report['target']:g}, mean of the last "
            f"{SOLVED_WINDOW} episodes)"
        ),
        "",
        "| seed | trainer steps | trainer seconds | naive steps | naive seconds |",
        "| --- | --- | --- | --- | --- |",
    ]

    def cell(run):
        mark = "" if run["solved"] else " (not reached)"
        return f"{run['steps']:,}{mark}", f"{run['seconds']:.1f}{mark}"

    for ours, naive in zip(runs["trainer"], runs["naive"]):
        lines.append(f"| {ours['seed']} | {' | '.join(cell(ours))} | {' | '.join(cell(naive))} |")
    ours_seconds = [run["seconds"] for run in runs["trainer"]]
    naive_seconds = [run["seconds"] for run in runs["naive"]]
    lines.append(
        f"| median (min–max) | {summary([run['steps'] for run in runs['trainer']], 0)} | "
        f"{summary(ours_seconds, 1)} | {summary([run['steps'] for run in runs['naive']], 0)} | "
        f"{summary(naive_seconds, 1)} |"
    )
    solved = sum(run["solved"] for run in runs["trainer"])
    naive_solved = sum(run["solved"] for run in runs["naive"])
    ratio = statistics.median(naive_seconds) / statistics.median(ours_seconds)
    bound = "" if naive_solved == len(runs["naive"]) else "at least "
    lines += [
        "",
        f"Trainer: {solved}/{len(runs['trainer'])} seeds reached the target; naive "
        f"reference: {naive_solved}/{len(runs['naive'])} (budget "
        f"{report['naive_seconds_budget'] or 'none'} s per seed). Time-to-target speed-up, "
        f"median naive / median trainer: {bound}{ratio:.1f}×"
        + (
            " (a naive run stopped by its budget counts at its budget, so this is a lower bound)."
            if bound
            else "."
        ),
        (
            f"Acting alone: the trainer's loop counts {collector['counted_steps_per_s'] / throughput['naive']:.1f}× "
            f"as many env steps per second as the naive loop; the raw-env ratio (the rollout "
            f"target, ≥ 25%) is {collector['env_steps_per_s'] / raw:.1%} for all env steps and "
            f"{collector['counted_steps_per_s'] / raw:.1%} for counted steps."
        ),
    ]
    if report["memory"]:
        lines += ["", "### Memory (peak RSS of `scripts/train.py --target_return=inf`)", ""]
        lines += ["| env steps | peak RSS |", "| --- | --- |"]
        for row in report["memory"]:
            lines.append(f"| {row['steps']:,} | {row['peak_rss_mib']:,.0f} MiB |")
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    """Puts `text` between the markers of `path` (kept otherwise), or writes it whole."""
    old = path.read_text() if path.exists() else ""
    if START_MARK in old and END_MARK in old:
        head, rest = old.split(START_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        text = f"{head}{START_MARK}\n{text}{END_MARK}{tail}"
    _write_atomically(path, text)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


# ---------------------------------------------------------------------------------------


def _vector_env(env_id: str, num_envs: int, mode: str | None) -> gym.vector.VectorEnv:
    if mode is None:
        return make_vector_env(env_id, num_envs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)


def _policy(env, config: TrainConfig, single: bool = False) -> keras.Model:
    observation_space = env.observation_space if single else env.single_observation_space
    action_space = env.action_space if single else env.single_action_space
    return build_policy(observation_space, action_space, config.hidden_sizes, seed=config.seed)


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


def run() -> dict:
    num_envs_list, memory_steps = _check_flags()
    base = TrainConfig.for_env(_ENV.value, total_steps=_TOTAL_STEPS.value)
    probe = make_vector_env(base.env, 1)  # an unknown id or space fails here, before work
    probe.close()
    if not isinstance(probe.single_action_space, gym.spaces.Discrete):
        raise InputError(
            "must have Discrete actions: the naive reference samples from probabilities",
            field="env",
        )
    report = {
        "machine": machine(),
        "command": " ".join(["python scripts/benchmark.py", *sys.argv[1:]]),
        "config": {
            **{key: str(value) for key, value in vars(base).items()},
            "envs": base.resolved_num_envs,
        },
        "config_line": _config_line(base),
        "naive_seconds_budget": _NAIVE_SECONDS.value,
    }
    progress(f"benchmark on {report['machine']}")
    seconds = _SECONDS.value

    progress("throughput: raw env, collection loop, naive acting, update …")
    raw = raw_env_rate(base.env, base.resolved_num_envs, seconds)
    report["throughput"] = {
        "raw_env_steps_per_s": raw,
        "collector": collector_rates(base, base.resolved_num_envs, seconds, "make_actor"),
        "naive": naive_act_rate(base, seconds),
        "update": update_rate(base, seconds),
    }

    report["alternatives"] = []
    raw_rates = {(base.resolved_num_envs, None): raw}
    variants = [
        (base.resolved_num_envs, None, actor) for actor in ("tf_function", "xla", "concrete")
    ]
    variants += [(n, None, "make_actor") for n in num_envs_list]
    if _ASYNC.value:
        variants.append((base.resolved_num_envs, "async", "make_actor"))
    for num_envs, mode, actor in variants:
        progress(f"acting alternative: {num_envs} envs, {mode or 'default'} env, {actor}")
        if (num_envs, mode) not in raw_rates:
            raw_rates[num_envs, mode] = raw_env_rate(base.env, num_envs, seconds, mode)
        report["alternatives"].append(
            {
                "num_envs": num_envs,
                "actor": actor,
                "raw_env_steps_per_s": raw_rates[num_envs, mode],
                **collector_rates(base, num_envs, seconds, actor, mode),
            }
        )

    target = _target(base)
    report["target"] = target
    runs = {"trainer": [], "naive": []}
    with tempfile.TemporaryDirectory() as workdir:
        for seed in range(_SEEDS.value):
            config = TrainConfig.for_env(base.env, seed=seed, total_steps=base.total_steps)
            ours = {"seed": seed, **end_to_end(config, Path(workdir))}
            runs["trainer"].append(ours)
            progress(f"seed {seed}: trainer {ours}")
            naive = naive_train(config, _NAIVE_SECONDS.value, target)._asdict()
            runs["naive"].append({"seed": seed, **naive})
            progress(f"seed {seed}: naive {naive}")
        report["end_to_end"] = runs
        report["memory"] = []
        for steps in memory_steps:
            progress(f"memory: training for {steps:,} steps")
            report["memory"].append(
                {"steps": steps, "peak_rss_mib": peak_rss_mib(base.env, steps, Path(workdir))}
            )
    return report


def _target(config: TrainConfig) -> float:
    spec = gym.spec(config.env)
    if config.target_return is not None:
        return config.target_return
    return math.inf if spec.reward_threshold is None else float(spec.reward_threshold)


def _config_line(config: TrainConfig) -> str:
    hidden = ",".join(map(str, config.hidden_sizes))
    return (
        f"--hidden_sizes={hidden} --learning_rate={config.learning_rate} "
        f"--optimizer={config.optimizer} --gamma={config.gamma} --update={config.update} "
        f"--batch_episodes={config.batch_episodes} --num_envs={config.resolved_num_envs}"
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    report = _cli.run_reporting_input_errors(run)
    text = markdown(report)
    print(text, end="")
    if _OUTPUT.value:
        _write_atomically(Path(_OUTPUT.value), json.dumps(report, indent=2) + "\n")
    if _MARKDOWN.value:
        write_markdown(Path(_MARKDOWN.value), text)


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
