"""Time to the target: wall seconds and env steps until the mean return of the last 100
episodes reaches the target, per seed, for the trainer and for the naive reference."""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import naive_reinforce

from reinforce_tf import TrainConfig, train


def trainer_run(config: TrainConfig, workdir: Path) -> dict:
    """One `train(config)` run, silent, its policy saved into `workdir`.

    Seconds are the training loop's (not start-up or saving), as `TrainResult` counts them.
    """
    save_path = workdir / f"policy_{config.seed}.keras"
    result = train(dataclasses.replace(config, save_path=str(save_path)), progress=None)
    return {"steps": result.steps, "seconds": result.seconds, "solved": result.solved}


def naive_run(config: TrainConfig, max_seconds: float) -> dict:
    """One naive reference run (`naive_reinforce.train`), stopped after `max_seconds`."""
    return naive_reinforce.train(config, max_seconds)._asdict()


def runs_per_seed(
    env: str,
    seeds: int,
    total_steps: int,
    naive_seconds: float | None,
    workdir: Path,
    progress: Callable[[str], None],
) -> dict[str, list[dict]]:
    """The trainer and the naive reference with `env`'s defaults, seeds 0 … seeds−1.

    `naive_seconds`: each naive run's budget (0: none); None runs no naive reference.

    Returns:
        {"trainer": [...], "naive": [...]}, one {"seed", "steps", "seconds", "solved"} per seed
        (no naive ones when `naive_seconds` is None).
    """
    runs = {"trainer": [], "naive": []}
    for seed in range(seeds):
        config = TrainConfig.for_env(env, seed=seed, total_steps=total_steps)
        runs["trainer"].append({"seed": seed, **trainer_run(config, workdir)})
        progress(f"seed {seed}: trainer {runs['trainer'][-1]}")
        if naive_seconds is None:
            continue
        runs["naive"].append({"seed": seed, **naive_run(config, naive_seconds)})
        progress(f"seed {seed}: naive {runs['naive'][-1]}")
    return runs
