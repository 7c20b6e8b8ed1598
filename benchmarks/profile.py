"""Where the training loop's time goes: a real `train()` run, its parts timed.

python benchmarks/profile.py --env=HalfCheetah-v5 --total_steps=100000
python benchmarks/profile.py --env=CartPole-v1 --total_steps=200000 --target_return=inf

Runs the trainer as `scripts/train.py` does (the env's defaults, a run folder, checkpoints),
with the loop's parts wrapped in timers, and prints each part's share of the loop's wall
time and its milliseconds per collection:
- env step / env reset: the vector env's `step` and `reset`;
- act: the compiled act() calls (observations in, actions out, host↔device included);
- buffer writes and collection overhead: the rest of `RolloutCollector.collect` (writes into
  the preallocated buffers, bookkeeping, the copy of the rollout);
- update: `update_from_rollout` (returns, weights, the compiled step, statistics);
- checks: the NaN/inf checks of rewards, observations, metrics and weights;
- logging: episodes.csv and TensorBoard; checkpoints; evaluation; progress;
- other: what the loop does between them.
The wrappers cost a few microseconds per call, far less than any part they time.
"""

import collections
import contextlib
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common as _cli  # first: it imports TensorFlow quietly

# isort: split
import gymnasium as gym
from absl import app, flags, logging

from reinforce_tf import TrainConfig
from reinforce_tf.training import loop
from reinforce_tf.training.rollout import RolloutCollector

_ENV = flags.DEFINE_string("env", "CartPole-v1", "Gymnasium environment id (its defaults apply).")
_TOTAL_STEPS = flags.DEFINE_integer(
    "total_steps", 200_000, "Env-step budget of the profiled run (> 0).", lower_bound=1
)
_TARGET_RETURN = flags.DEFINE_float(
    "target_return", None, "Stop at this mean return; default: the env's (inf: never)."
)
_NUM_ENVS = flags.DEFINE_integer("num_envs", None, "Envs; default: the trainer's for --env.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the run (>= 0).", lower_bound=0)

# The parts, in the order they are printed.
PARTS = (
    "env step",
    "env reset",
    "act",
    "buffer writes and collection overhead",
    "update",
    "checks",
    "logging",
    "checkpoints",
    "evaluation",
    "progress",
)


class Timers:
    """Seconds and calls per part; `collect` time is split into its env, act and rest."""

    def __init__(self):
        self.seconds = collections.Counter()
        self.calls = collections.Counter()

    def wrap(self, part: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
                self.calls[part] += 1

        return timed


class TimedVectorEnv(gym.vector.VectorWrapper):
    """The trainer's vector env with `step` and `reset` timed."""

    def __init__(self, env: gym.vector.VectorEnv, timers: Timers):
        super().__init__(env)
        self.timed_step = timers.wrap("env step", env.step)
        self.timed_reset = timers.wrap("env reset", env.reset)

    def step(self, actions):
        return self.timed_step(actions)

    def reset(self, **kwargs):
        return self.timed_reset(**kwargs)


@contextlib.contextmanager
def timed_loop(timers: Timers):
    """Wraps the loop's parts (module attributes of `training.loop`) for the duration."""
    originals = {}

    def patch(owner, name, replacement):
        originals[owner, name] = getattr(owner, name)
        setattr(owner, name, replacement)

    make_env, training_actor = loop.make_vector_env, loop.training_actor

    def timed_actor(*args, **kwargs):
        actor = training_actor(*args, **kwargs)
        timed = timers.wrap("act", actor)
        if hasattr(actor, "sync"):  # a NumPy actor copies the parameters each collection
            timed.sync = timers.wrap("act", actor.sync)
        return timed

    patch(loop, "make_vector_env", lambda *a, **k: TimedVectorEnv(make_env(*a, **k), timers))
    patch(loop, "training_actor", timed_actor)
    patch(RolloutCollector, "collect", timers.wrap("collect", RolloutCollector.collect))
    patch(loop, "_loop", timers.wrap("loop", loop._loop))
    patch(loop, "update_from_rollout", timers.wrap("update", loop.update_from_rollout))
    for name in ("_check_rollout", "_check_finite"):
        patch(loop, name, timers.wrap("checks", getattr(loop, name)))
    patch(loop, "_evaluate", timers.wrap("evaluation", loop._evaluate))
    files = loop._RunFiles
    for name in ("episodes", "update", "evaluation"):
        patch(files, name, timers.wrap("logging", getattr(files, name)))
    patch(files, "save_checkpoint", timers.wrap("checkpoints", files.save_checkpoint))
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


class TimedProgress:
    """Receives the loop's progress silently, timing nothing but its own calls."""

    def __init__(self, timers: Timers):
        self.start = self.note = self.end = lambda *args: None
        self.update = timers.wrap("progress", lambda *args: None)


def profile(config: TrainConfig) -> tuple[loop.TrainResult, Timers]:
    timers = Timers()
    with timed_loop(timers):
        result = loop.train(config, progress=TimedProgress(timers))
    return result, timers


def report(config: TrainConfig, result: loop.TrainResult, timers: Timers) -> str:
    """A Markdown line of what ran and a table of the parts' shares of the loop's time."""
    seconds = dict(timers.seconds)
    total = seconds.pop("loop")  # the whole loop, from the first collection to the saved policy
    collections_run = max(timers.calls["collect"], 1)
    inside = seconds.get("env step", 0) + seconds.get("env reset", 0) + seconds.get("act", 0)
    seconds["buffer writes and collection overhead"] = seconds.pop("collect", 0.0) - inside
    rows = [(part, seconds.get(part, 0.0)) for part in PARTS]
    rows.append(
        ("other (the loop between the parts, saving the policy)", total - sum(seconds.values()))
    )
    command = " ".join(["python benchmarks/profile.py", *sys.argv[1:]])
    summary = (
        f"`{command}`: {config.env}, {config.resolved_num_envs} envs, "
        f"{config.episodes_per_update} episodes per update; {result.steps:,} counted steps in "
        f"{collections_run:,} collections ({timers.calls['env step']:,} vector steps), loop "
        f"{total:.1f} s, {result.steps / total:,.0f} counted steps/s."
    )
    lines = [
        summary,
        "",
        "| part | share of the loop | ms per collection | calls |",
        "| --- | --- | --- | --- |",
    ]
    calls = {**timers.calls, "buffer writes and collection overhead": timers.calls["collect"]}
    for part, spent in rows:
        lines.append(
            f"| {part} | {spent / total:.1%} | {1000 * spent / collections_run:,.2f} "
            f"| {calls.get(part, '')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint saver logs at INFO

    def run():
        overrides = {"seed": _SEED.value, "total_steps": _TOTAL_STEPS.value}
        for name, flag in (("target_return", _TARGET_RETURN), ("num_envs", _NUM_ENVS)):
            if flag.value is not None:
                overrides[name] = flag.value
        with tempfile.TemporaryDirectory() as folder:
            config = TrainConfig.for_env(
                _ENV.value,
                save_path=str(Path(folder) / "policy.keras"),
                logdir=str(Path(folder) / "run"),
                **overrides,
            )
            return config, *profile(config)

    config, result, timers = _cli.run_reporting_input_errors(run)
    print(report(config, result, timers), end="")


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
