"""Scaling of `--workers` (docs/scaling.md): the trainer's env steps/s against the number of
Ray workers, and the learner's cost per update against the rollout time.

python benchmarks/scaling.py --part=cores     # HalfCheetah-v5: workers 0, 1, 2, async envs
python benchmarks/scaling.py --part=io        # SleepyStep-v0 (2 ms per step): 1 … 16 workers

Each configuration is a real `train()` run (no run folder); steps/s counts the counted env
steps between the end of the first update and the end of the last, so Ray's start-up, the
workers' start-up and the first compilation are left out. With workers, the pool's
per-update `Timing` (reinforce_tf/training/workers.py) gives the learner's costs: putting
the weights, waiting for the rollouts beyond the slowest share (transfer and hand-out),
merging, and the update with its logs (the gap between two collections). Medians over the
updates after the first.
"""

import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common  # noqa: F401 (first: a quiet TensorFlow, the tools' threading)

# isort: split
import numpy as np
import ray
import sleepy_env
from absl import app, flags

from reinforce_tf import TrainConfig, train
from reinforce_tf.training import loop, workers

_PART = flags.DEFINE_enum("part", "io", ["cores", "io"], "Which measurement to run.")
_WORKERS = flags.DEFINE_string("workers", "1,2,4,8,16", "Worker counts of --part=io.")
_UPDATES = flags.DEFINE_integer("updates", 6, "Updates per configuration (>= 3).")
_ENVS = flags.DEFINE_integer(
    "envs_per_worker", 1, "Envs of each worker in --part=io, stepped one after the other."
)


class Clock:
    """Progress receiver: the time and step counter after each update."""

    def __init__(self):
        self.marks = []

    def start(self, steps, total_steps):
        pass

    def update(self, steps, episodes, mean_return, steps_per_second):
        self.marks.append((time.perf_counter(), steps))

    def note(self, text):
        print(f"  note: {text}", flush=True)

    def end(self):
        pass

    def steps_per_second(self) -> float:
        (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0)


class RecordingPool(workers.WorkerPool):
    """The trainer's pool, kept for its timings."""

    last = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingPool.last = self


def measure(config: TrainConfig) -> tuple[float, dict[str, float]]:
    """(steps/s, median seconds per update of each cost) of one run of `config`."""
    RecordingPool.last = None
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        train(dataclasses.replace(config, save_path=f"{folder}/p.keras"), clock)
    costs = {}
    if RecordingPool.last is not None:
        timings = RecordingPool.last.timings[1:]
        costs = {
            "rollout": np.median([t.slowest_share for t in timings]),
            # CPU seconds of the workers per counted env step.
            "cpu_per_step": np.median([t.worker_cpu / t.steps for t in timings]),
            "put": np.median([t.put for t in timings]),
            "wait": np.median([t.collect - t.slowest_share for t in timings]),
            "merge": np.median([t.merge for t in timings]),
            "update": np.median([t.learner for t in timings]),
        }
    return clock.steps_per_second(), costs


def start_ray(workers_needed: int) -> None:
    path = [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    env_vars = {
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        **{name: os.environ[name] for name in workers._WORKER_ENV_VARS if name in os.environ},
    }
    ray.init(
        num_cpus=max(os.cpu_count(), workers_needed),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": env_vars, "worker_process_setup_hook": "sleepy_env.register"},
    )


def part_cores(updates: int) -> None:
    base = TrainConfig(
        env="HalfCheetah-v5",
        hidden_sizes=(64, 64),
        batch_episodes=16,
        total_steps=16 * 1000 * updates,
        target_return=float("inf"),
        checkpoint_every=10**9,
    )
    rows = [
        ("0 (sync)", {"num_envs": 16}),
        ("0 (async)", {"num_envs": 16, "vectorization": "async"}),
        ("1", {"workers": 1, "num_envs": 16}),
        ("2", {"workers": 2, "num_envs": 8}),
    ]
    print(
        "| workers | envs per worker | steps/s | rollout s | learner s per update | "
        "worker CPU µs per step |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, overrides in rows:
        rate, costs = measure(dataclasses.replace(base, **overrides))
        learner = sum(costs[k] for k in ("put", "wait", "merge", "update")) if costs else None
        print(
            f"| {name} | {overrides['num_envs']} | {rate:,.0f} | "
            f"{costs.get('rollout', float('nan')):.2f} | "
            f"{'—' if learner is None else f'{learner:.3f}'} | "
            f"{costs.get('cpu_per_step', float('nan')) * 1e6:.0f} |",
            flush=True,
        )


def part_io(counts: list[int], updates: int, envs: int) -> None:
    per_worker = 8 * envs  # episodes per worker per update: 8 for each of its envs
    print(
        "| workers | steps/s | efficiency | rollout s | put s | wait s | merge s | "
        "update s | learner share | worker CPU µs per step |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    one = None
    for n in counts:
        config = TrainConfig(
            env=sleepy_env.ENV_ID,
            workers=n,
            num_envs=envs,
            batch_episodes=per_worker * n,
            total_steps=per_worker * n * sleepy_env.EPISODE_STEPS * updates,
            target_return=float("inf"),
            checkpoint_every=10**9,
        )
        rate, c = measure(config)
        one = rate if one is None else one
        learner = c["put"] + c["wait"] + c["merge"] + c["update"]
        print(
            f"| {n} | {rate:,.0f} | {rate / (n * one):.0%} | {c['rollout']:.3f} | "
            f"{c['put']:.4f} | {c['wait']:.4f} | {c['merge']:.4f} | {c['update']:.3f} | "
            f"{learner / (learner + c['rollout']):.0%} | {c['cpu_per_step'] * 1e6:.0f} |",
            flush=True,
        )


def main(argv):
    workers.WorkerPool = RecordingPool
    loop.WorkerPool = RecordingPool
    counts = [int(n) for n in _WORKERS.value.split(",")]
    start_ray(max(counts) if _PART.value == "io" else 2)
    try:
        if _PART.value == "cores":
            part_cores(_UPDATES.value)
        else:
            part_io(counts, _UPDATES.value, _ENVS.value)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    app.run(main)
