"""The training loop: rollout → update → logs → evaluation → checkpoint → stop rule → save.

How a run ends:
- the budget is spent or the target reached: a last checkpoint, then the policy file;
- an update whose episodes would pass the budget: its collection stops there and is dropped
  whole (never learned from), then the same;
- SIGINT (Ctrl-C) or SIGTERM: the collection under way stops at once and is dropped whole,
  then the same as above, and `TrainResult.interrupted` is set; a second signal acts as
  usual (KeyboardInterrupt);
- a NaN/inf reward or observation from the env, non-finite numbers after an update, or an env
  that raises: `TrainingError` naming the env step; the last good checkpoint stays the newest
  and the policy file is not written.

Env seeds: the first collection seeds env b with seed + b; whenever the step counter passes
a multiple of `checkpoint_every` (and on resume) the envs are reseeded from (seed, steps),
which is what lets a resumed run replay the uninterrupted one from a periodic checkpoint.

With `config.workers` the episodes are played by Ray actors (`workers.WorkerPool`, started
before anything is written) and merged into one rollout; the rest of the loop is the same.
"""

import collections
import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import tensorflow as tf

from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError, TrainingError, error_reason
from reinforce_tf.training import progress as progress_lib
from reinforce_tf.training.acting import training_actor
from reinforce_tf.training.checkpoints import Counters, RunCheckpoint
from reinforce_tf.training.envs import make_vector_env, resolved_preset
from reinforce_tf.training.episode_log import EpisodeLog, EvaluationLog
from reinforce_tf.training.evaluate import evaluate_modes, evaluation_note
from reinforce_tf.training.learner import (
    make_agent,
    schedule_learning_rates,
    target_return,
    update_from_rollout,
)
from reinforce_tf.training.memory import (
    ALLOCATION_ERRORS,
    check_memory,
    check_update,
    failed_allocation,
)
from reinforce_tf.training.rollout import Rollout, RolloutCollector
from reinforce_tf.training.run_folder import check_run_folder, config_as_json, open_run_folder
from reinforce_tf.training.saving import check_output_paths, load_metadata, save_policy
from reinforce_tf.training.summaries import Summaries
from reinforce_tf.training.workers import WorkerPool

# The stop rule's window, as in Gymnasium's definition of "solved".
SOLVED_WINDOW = 100
# Evaluation envs are seeded apart from the training envs (seed + b), the same each time,
# so evaluations compare policies on the same start states.
EVAL_SEED_OFFSET = 1_000_000


class TrainResult(NamedTuple):
    """What a run did.

    Attributes:
        steps: env steps of counted episodes (of the whole run, when resumed).
        episodes: finished episodes.
        seconds: wall time of the loop in this process (envs, acting, updates, logging).
        mean_return: mean return of the last (up to) 100 episodes.
        solved: the mean of the last 100 episodes reached the target return.
        save_path: where the policy was written.
        episode_returns: [episodes] every episode's return, in order.
        interrupted: stopped early by SIGINT or SIGTERM (policy and checkpoint saved).
        logdir: the run folder, or None.
        checkpoint: the newest checkpoint's path prefix, or None.
        final_evaluation: {"sampled": [n], "greedy": [n]} returns of the saved policy, played
            when the run ended (`config.final_eval_episodes`); None when it was 0 or the run
            was interrupted.
    """

    steps: int
    episodes: int
    seconds: float
    mean_return: float
    solved: bool
    save_path: Path
    episode_returns: np.ndarray
    interrupted: bool = False
    logdir: Path | None = None
    checkpoint: str | None = None
    final_evaluation: dict[str, np.ndarray] | None = None


def train(
    config: TrainConfig,
    progress: progress_lib.Progress | Literal["auto"] | None = "auto",
) -> TrainResult:
    """Trains a policy on `config.env` by REINFORCE and saves it to `config.save_path`.

    Stops when the mean return of the last 100 episodes reaches the target, after
    `config.total_steps` env steps, or at SIGINT/SIGTERM. With `config.logdir`, writes
    TensorBoard scalars, episodes.csv and checkpoints there (and resumes from them with
    `config.resume`).

    Args:
        config: the run's hyperparameters.
        progress: a `progress.Progress`; "auto" shows a bar on a terminal and plain lines
            otherwise; None for silence.

    Raises:
        InputError: a bad env id, space, save path or run folder (before training starts).
        TrainingError: non-finite numbers or a failing env (see the module docstring).
    """
    check_output_paths(config)
    if config.logdir is not None:
        check_run_folder(config)
    if progress == "auto":
        progress = progress_lib.for_stdout(stops_early=math.isfinite(target_return(config)))
    # With workers, the learner's env only checks the id and gives the spaces.
    num_envs = 1 if config.workers else config.resolved_num_envs
    env = make_vector_env(
        config.env, num_envs, config.env_kwargs, config.preset, config.vectorization
    )
    pool = None
    try:
        check_memory(config, env)
        agent = make_agent(config, env.single_observation_space, env.single_action_space)
        if config.workers:
            pool = WorkerPool(config, note=lambda text: _warn(progress, text))
            rng, worker_rngs = pool.rngs[0], pool.rngs[1:]
            env.close()

            def new_collector(seed: int):
                return pool.collector(agent.policy, seed)
        else:
            rng, worker_rngs = tf.random.Generator.from_seed(config.seed), ()
            act = training_actor(agent.policy, rng)

            def new_collector(seed: int):
                return RolloutCollector(env, act, seed, config.action_squash)

        metadata = {
            "env": config.env,
            "env_kwargs": config.env_kwargs or {},
            "preset": resolved_preset(config.env, config.preset),
            "observation_space": str(env.single_observation_space),
            "action_space": str(env.single_action_space),
            # How scripts/evaluate.py must map the saved Gaussian's samples to the env.
            "action_squash": config.action_squash,
            "config": dataclasses.asdict(config),
        }
        files = _RunFiles(config, agent, rng, progress, worker_rngs)
        try:
            with _stop_on_signals() as stop:
                return _loop(config, agent, new_collector, files, metadata, progress, stop)
        finally:
            files.close()
    finally:
        env.close()
        if pool is not None:
            pool.close()


def env_seed(seed: int, steps: int) -> int:
    """The envs' seed for collections from step counter `steps`: `seed` at 0, else a
    32-bit seed drawn from NumPy's SeedSequence([seed, steps])."""
    if steps == 0:
        return seed
    return int(np.random.SeedSequence([seed, steps]).generate_state(1)[0])


def _loop(config, agent, new_collector, files, metadata, progress, stop) -> TrainResult:
    counters = files.restore() if config.resume else Counters()
    if config.resume:
        counters.best_eval = max(counters.best_eval, _saved_best(config))
    counters.recent = collections.deque(counters.recent, maxlen=SOLVED_WINDOW)
    returns = list(files.returns())
    target = target_return(config)
    collector = new_collector(env_seed(config.seed, counters.steps))
    solved = _solved(counters.recent, target)
    first_steps, start = counters.steps, time.perf_counter()
    if progress:
        progress.start(counters.steps, config.total_steps)
    try:
        while counters.steps < config.total_steps and not solved and not stop.is_set():
            rollout = _collect(collector, config, counters, files, stop)
            if rollout is None:  # the budget ran out, or a signal came, inside the collection
                if progress and not stop.is_set():
                    progress.note(
                        f"the budget of {config.total_steps:,} steps ran out inside an update: "
                        "its episodes were not learned from"
                    )
                break
            _check_rollout(rollout, config, counters, files)
            schedule_learning_rates(agent, config, counters.steps)
            try:
                check_update(agent, rollout)
                metrics = update_from_rollout(agent, rollout, config)
            except ALLOCATION_ERRORS as error:
                raise TrainingError(
                    f"out of memory in the update on {_episodes(config, counters)} "
                    f"({rollout.num_steps:,} steps, played from env step {counters.steps:,}): "
                    f"{failed_allocation(error)}; training stopped and the policy file was not "
                    f"written; lower --batch_episodes or --hidden_sizes; {files.kept()}"
                ) from None
            _check_finite(metrics, agent, config, counters, files)
            before = counters.steps
            end_steps = before + np.cumsum(rollout.episode_lengths)  # [E]
            files.episodes(counters.episodes + 1, end_steps, rollout)
            counters.steps += rollout.num_steps
            counters.episodes += len(rollout.episode_returns)
            counters.recent.extend(rollout.episode_returns)
            returns.extend(rollout.episode_returns)
            steps_per_second = (counters.steps - first_steps) / (time.perf_counter() - start)
            files.update(counters.steps, metrics, steps_per_second)
            if config.eval_every:
                _evaluate(config, agent, before, counters, files, metadata, progress)
            solved = _solved(counters.recent, target)
            if _passed(before, counters.steps, config.checkpoint_every):
                files.save_checkpoint(counters)
                collector = new_collector(env_seed(config.seed, counters.steps))
            if progress:
                mean = np.mean(counters.recent) if counters.recent else math.nan
                progress.update(counters.steps, counters.episodes, mean, steps_per_second)
    finally:
        if progress:
            progress.end()
    seconds = time.perf_counter() - start
    files.save_checkpoint(counters)
    final = None
    if config.final_eval_episodes and not stop.is_set():
        final = _final_evaluation(config, agent, counters, files)
        metadata = {**metadata, "final_evaluation": evaluation_note(final)}
    save_policy(agent.policy, config.save_path, metadata)
    return TrainResult(
        steps=counters.steps,
        episodes=counters.episodes,
        seconds=seconds,
        mean_return=float(np.mean(counters.recent)) if counters.recent else math.nan,
        solved=bool(solved),
        save_path=Path(config.save_path),
        episode_returns=np.asarray(returns),
        interrupted=stop.is_set(),
        logdir=files.folder,
        checkpoint=files.latest,
        final_evaluation=final,
    )


def _solved(recent: collections.deque, target: float) -> bool:
    return len(recent) == SOLVED_WINDOW and np.mean(recent) >= target


def _passed(before: int, after: int, every: int) -> bool:
    """The counter went past a multiple of `every` (from `before` to `after`)."""
    return after // every > before // every


def _collect(collector, config, counters, files, stop) -> Rollout | None:
    """`collector.collect` within the remaining budget, stopped early by `stop`, with an
    env's exception turned into a `TrainingError`; None when it did not finish."""
    try:
        return collector.collect(
            config.episodes_per_update, max_steps=config.total_steps - counters.steps, stop=stop
        )
    except (InputError, KeyboardInterrupt):
        raise
    except TrainingError as error:  # workers lost (--workers)
        raise TrainingError(
            f"{error} while playing {_episodes(config, counters)} from env step "
            f"{counters.steps:,}; training stopped; {files.kept()}"
        ) from None
    except Exception as error:  # an env may raise anything
        raise TrainingError(
            f"env {config.env!r} raised {type(error).__name__}: {error} while playing "
            f"{_episodes(config, counters)} from env step {counters.steps:,}; {files.kept()}"
        ) from error


def _episodes(config: TrainConfig, counters: Counters) -> str:
    """The episodes an update plays next, e.g. "episodes 17-32"."""
    first, last = counters.episodes + 1, counters.episodes + config.episodes_per_update
    return f"episode {first:,}" if first == last else f"episodes {first:,}-{last:,}"


def _check_rollout(rollout: Rollout, config: TrainConfig, counters: Counters, files) -> None:
    """Raises `TrainingError` if the env gave a NaN/inf reward or observation.

    Checked before the update: standardised returns would hide a NaN (its std compares
    false with 0), and a poisoned batch must not reach the weights.
    """
    valid = rollout.valid  # [T, B]
    for name, values in (("reward", rollout.rewards), ("observation", rollout.observations)):
        if not np.issubdtype(values.dtype, np.floating):  # uint8 or bool frames are finite
            continue
        bad = ~np.isfinite(values[valid])
        if bad.any():
            raise TrainingError(
                f"env {config.env!r} returned a non-finite {name} ({values[valid][bad].flat[0]}) "
                f"while playing {_episodes(config, counters)} from env step "
                f"{counters.steps:,}; training stopped and the policy file was not written; "
                f"{files.kept()}"
            )


def _check_finite(metrics: dict[str, float], agent, config, counters: Counters, files) -> None:
    """Raises `TrainingError` if a metric or a weight of the policy or value net is NaN/inf."""
    problem = next(
        (f"{name} = {value}" for name, value in metrics.items() if not math.isfinite(value)),
        None,
    )
    for model in (agent.policy, getattr(agent, "value", None)):
        for weight in [] if model is None or problem else model.weights:
            if not np.all(np.isfinite(weight.numpy())):
                problem = f"weight {weight.path} is not finite"
                break
    if problem:
        raise TrainingError(
            f"non-finite numbers in the update on {_episodes(config, counters)}, played from "
            f"env step {counters.steps:,}: {problem}; training stopped and the policy file "
            f"was not written; {files.kept()}"
        )


def _eval_options(config: TrainConfig) -> dict:
    """`evaluate`'s options for the run's evaluations: separate envs, seeded the same each
    time (so evaluations compare policies on the same start states), made as in training."""
    return {
        "seed": config.seed + EVAL_SEED_OFFSET,
        "env_kwargs": config.env_kwargs,
        "preset": config.preset,
        "action_squash": config.action_squash,
    }


def _final_evaluation(config, agent, counters, files) -> dict[str, np.ndarray]:
    """The trained policy's sampled and greedy returns over `final_eval_episodes` each.

    Raises:
        TrainingError: the env raised while playing (the last checkpoint is kept).
    """
    try:
        return evaluate_modes(
            agent.policy, config.env, config.final_eval_episodes, **_eval_options(config)
        )
    except (InputError, KeyboardInterrupt):
        raise
    except Exception as error:  # an env may raise anything
        raise TrainingError(
            f"env {config.env!r} raised {type(error).__name__}: {error} while evaluating the "
            f"trained policy after env step {counters.steps:,}; the policy file was not "
            f"written; {files.kept()}"
        ) from error


def _saved_best(config) -> float:
    """The return recorded by `config.best_path`'s note when it is a best of the `best_by`
    mode, else -inf. A resume starts from its checkpoint's best, but best.keras may have
    been written after that checkpoint (or scored with other --eval_episodes): a later,
    lower evaluation must not replace it."""
    if not config.best_path.is_file():
        return -math.inf
    note = load_metadata(config.best_path)
    value = note.get("eval_return")
    if note.get("eval_mode") != config.best_by or type(value) not in (int, float):
        return -math.inf
    return float(value) if math.isfinite(value) else -math.inf


def _evaluate(config, agent, before, counters, files, metadata, progress) -> None:
    """The evaluations due after the update that took the step counter from `before`:
    sampled every `eval_every` steps, greedy every `resolved_greedy_eval_every`. Each is
    logged; a new best of the `best_by` mode is written to `config.best_path`."""
    every = {"sampled": config.eval_every, "greedy": config.resolved_greedy_eval_every}
    modes = tuple(mode for mode in every if _passed(before, counters.steps, every[mode]))
    if not modes:
        return
    returns = evaluate_modes(
        agent.policy, config.env, config.eval_episodes, modes, **_eval_options(config)
    )
    parts = []
    for mode, values in returns.items():
        mean = float(np.mean(values))
        files.evaluation(counters.steps, mode, values)
        parts.append(f"{mode} return {mean:.2f} ± {np.std(values):.2f}")
    line = f"eval at step {counters.steps:,}: " + ", ".join(parts)
    best = returns.get(config.best_by)
    if best is not None and float(np.mean(best)) > counters.best_eval:
        counters.best_eval = float(np.mean(best))
        note = {
            **metadata,
            "eval_return": counters.best_eval,
            "eval_mode": config.best_by,
            "step": counters.steps,
        }
        save_policy(agent.policy, config.best_path, note)
        line += f"; best {config.best_by} so far, saved to {config.best_path}"
    if progress:
        progress.note(line)


class _RunFiles:
    """What a run writes to its folder: checkpoints, episodes.csv, TensorBoard scalars.

    Opening takes the folder's lock (held until `close`) and, resuming, restores the newest
    intact checkpoint, all before anything is written; a failed write later is a
    `TrainingError` naming the checkpoint kept. Without a logdir every method does nothing.

    Raises:
        InputError: the folder cannot be used (see `run_folder.open_run_folder` and
            `RunCheckpoint.restore`).
    """

    def __init__(
        self,
        config: TrainConfig,
        agent,
        rng: tf.random.Generator,
        progress=None,
        worker_rngs: tuple = (),
    ):
        self.folder = None
        self._lock = self._checkpoint = self._log = self._evaluations = self._summaries = None
        self._saved_steps = None
        self._counters = Counters()
        if config.logdir is None:
            return
        try:
            self.folder, self._lock = open_run_folder(config)
            self._checkpoint = RunCheckpoint(self.folder, agent, rng, SOLVED_WINDOW, worker_rngs)
            if config.resume:
                self._counters = self._checkpoint.restore()
                self._saved_steps = self._counters.steps
                if self._checkpoint.note:
                    _warn(progress, self._checkpoint.note)
            self._open_logs(config)
        except BaseException:
            self.close()
            raise

    def _open_logs(self, config: TrainConfig) -> None:
        try:
            # Resuming, rows past the checkpoint will be played again: drop them so none is
            # counted twice.
            keep = self._counters.episodes if config.resume else None
            self._log = EpisodeLog(self.folder, keep_episodes=keep)
            keep = self._counters.steps if config.resume else None
            self._evaluations = EvaluationLog(self.folder, keep_steps=keep)
            self._summaries = Summaries(self.folder)
            if not config.resume:
                self._summaries.config(config_as_json(config))
        except (OSError, tf.errors.OpError) as error:
            raise InputError(
                f"cannot write in {str(self.folder)!r} ({error_reason(error)})", field="logdir"
            ) from None

    def restore(self) -> Counters:
        """The counters of the checkpoint restored when the run folder was opened."""
        return self._counters

    def returns(self) -> np.ndarray:
        return self._log.returns if self._log else np.zeros(0)

    @property
    def latest(self) -> str | None:
        return self._checkpoint.latest if self._checkpoint else None

    def kept(self) -> str:
        """Says which checkpoint a failed run leaves as its newest."""
        if self._checkpoint is None:
            return "no checkpoint is kept without a run folder (logdir)"
        if self.latest is None:
            return "no checkpoint had been written yet"
        return f"the last good checkpoint is {self.latest}"

    def episodes(self, first: int, end_steps: np.ndarray, rollout: Rollout) -> None:
        if self._log:
            try:
                self._log.append(first, end_steps, rollout.episode_returns, rollout.episode_lengths)
            except OSError as error:
                # A partial row is dropped on resume, with every row past the checkpoint.
                raise TrainingError(
                    f"could not append to {self._log.path} ({error_reason(error)}); {self.kept()}"
                ) from None
            self._summaries.episodes(end_steps, rollout.episode_returns, rollout.episode_lengths)

    def update(self, steps: int, metrics: dict[str, float], steps_per_second: float) -> None:
        if self._summaries:
            self._summaries.update(steps, metrics, steps_per_second)

    def evaluation(self, steps: int, mode: str, returns: np.ndarray) -> None:
        """An evaluation's [episodes] returns, in `mode`, at step counter `steps`."""
        if self._summaries:
            try:
                self._evaluations.append(steps, mode, returns)
            except OSError as error:
                raise TrainingError(
                    f"could not append to {self._evaluations.path} ({error_reason(error)}); "
                    f"{self.kept()}"
                ) from None
            self._summaries.evaluation(steps, mode, float(np.mean(returns)))

    def save_checkpoint(self, counters: Counters) -> None:
        """Rows and scalars to disk first, then the checkpoint that counts them.

        Raises:
            TrainingError: a write failed (e.g. disk full); names the checkpoint kept.
        """
        if self._checkpoint is None or self._saved_steps == counters.steps:
            return
        try:
            self._log.sync()
            self._evaluations.sync()
            self._summaries.flush()
        except (OSError, tf.errors.OpError) as error:
            raise TrainingError(
                f"could not write the logs in {str(self.folder)!r} before the checkpoint at "
                f"env step {counters.steps:,} ({error_reason(error)}); {self.kept()}"
            ) from None
        self._checkpoint.save(counters)
        self._saved_steps = counters.steps

    def close(self) -> None:
        """Closes the logs (best effort: what matters was synced at the last checkpoint) and
        releases the folder's lock."""
        files = (self._log, self._evaluations, self._summaries)
        lock = self._lock
        self._log = self._evaluations = self._summaries = self._lock = None
        for file in files:
            if file:
                with contextlib.suppress(OSError, tf.errors.OpError):
                    file.close()
        if lock:
            lock.release()


def _warn(progress, text: str) -> None:
    """A warning line for the user: a progress note, or a logging warning without one."""
    if progress:
        progress.note(text)
    else:
        logging.getLogger(__name__).warning(text)


@contextlib.contextmanager
def _stop_on_signals():
    """Yields an event set by the first SIGINT or SIGTERM, so the loop can stop cleanly.

    The first signal also restores the previous handlers, so a second one interrupts at
    once. Outside the main thread (where handlers cannot be set) the event is never set.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(number, frame):
        stop.set()
        for other, handler in previous.items():
            signal.signal(other, handler)

    for number in previous:
        signal.signal(number, request_stop)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
