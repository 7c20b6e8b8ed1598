"""Rollouts on Ray workers (`--workers=N`): N actors play each update's episodes, the
learner merges their rollouts and takes the update.

Shapes: T = vector steps of a collection, B = envs (of one worker, or of the whole batch:
N × num_envs), O = observation size, E = episodes of the update.

As in RLlib (env-runner actors, one learner, weights broadcast each iteration): each worker
is a Ray actor that owns a vector env of `num_envs` copies and a copy of the policy model
(`make_agent` from the config), and acts through `acting.training_actor` and a
`RolloutCollector`, as the single-process trainer does. Each update the learner puts the
policy's weights (with the observation statistics, which are model variables) in the object
store once (`ray.put`); worker w plays its fixed share of the E episodes
(`TrainConfig.worker_shares`) with exactly those weights and returns its rollout;
`merge_rollouts` joins them along B, by worker.

Unbiased batches: every episode of the update is whole and played by the weights being
updated; the update waits for every share, so no episode is dropped for being slow.

Determinism: worker w hosts envs w·num_envs … (w + 1)·num_envs − 1 of the batch and resets
them with the seed the single-process trainer would give them (the loop's `env_seed(seed,
steps)` + w·num_envs, so env b gets seed + b on the first collection). Its actions draw from
its own `tf.random.Generator`: worker 0's seeded with `seed` (like the single-process actor),
worker w ≥ 1's with a seed drawn from (seed, w). The learner holds those generators: it sends
a worker the state to act from and keeps the state it returns, so they are checkpointed with
the run and a resumed run continues them. With the same N and seed a run is the same run;
N = 1 is the N = 0 run bit for bit (one share, the same seeds and streams).

Faults: a worker whose process dies is restarted by Ray (`max_restarts=-1`); the learner
catches the `RayActorError`, says so in one line, and has the restarted worker play the
interrupted share again from scratch, with the same weights and act-generator state and its
envs reseeded from (seed, the update's first env step), never a half episode. The replayed
share is not the one the dead worker would have played (its envs' random streams are new),
so the run goes on deterministically given where the death happened, but not as the run
without it. A share that dies `MAX_REPLAYS` times in a row stops training (`TrainingError`).
"""

import contextlib
import dataclasses
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from reinforce_tf import extras, quiet
from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError, TrainingError, error_reason
from reinforce_tf.training.acting import training_actor
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.learner import make_agent
from reinforce_tf.training.rollout import Rollout, RolloutCollector

# Times in a row the same share may be lost to a dead worker before training stops.
MAX_REPLAYS = 3
# Seconds a dead worker may take to come back (Ray restarts it: a new process imports
# TensorFlow and builds the env and policy), and between asking whether it has.
RESTART_TIMEOUT = 300.0
_PROBE_INTERVAL = 0.2
# What the learner awaits from a worker.
_SHARE, _PROBE = "share", "probe"
# Seconds the workers may take to start (a new process imports TensorFlow, builds the env and
# the policy) before the run is refused: a busy cluster may not place them.
START_TIMEOUT = 600.0
# Seconds to wait for a host:port to accept a connection, and then for it to answer as a Ray
# cluster, before calling it unreachable or not Ray.
CONNECT_TIMEOUT = 5.0
# The GCS method that `_check_answers` calls: the cluster's id, an empty request.
_GCS_PROBE = "/ray.rpc.NodeInfoGcsService/GetClusterId"
# Seconds `ray.init` may take with Ray's messages hidden; a longer wait shows them.
QUIET_START = 30.0
# The TensorFlow settings of the learner's process that workers take too
# (reinforce_tf/cli/common.py): the same threading gives the same numbers, and a worker's
# start-up lines stay quiet.
_WORKER_ENV_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_CPP_MIN_LOG_LEVEL")


def merge_rollouts(rollouts: Sequence[Rollout]) -> Rollout:
    """Joins the workers' rollouts into one, side by side along B.

    Time axes of different lengths are padded at the end to the longest, T = max_w T_w, with
    rows that count for nothing: valid and dones False, zero observations, actions, rewards
    and time steps (as idle envs' rows, they get zero weight in the loss). Episodes keep
    their order by worker, then as each worker's collector ordered them.

    Args:
        rollouts: one per worker, each [T_w, B_w, ...], the same observation and action
            shapes.

    Returns:
        [T, Σ B_w, ...] arrays; episode_returns and episode_lengths [Σ E_w].
    """
    if len(rollouts) == 1:
        return rollouts[0]
    length = max(len(rollout.valid) for rollout in rollouts)  # T

    def side_by_side(name: str) -> np.ndarray:
        arrays = []
        for rollout in rollouts:
            array = getattr(rollout, name)  # [T_w, B_w, ...]
            padding = np.zeros((length - len(array), *array.shape[1:]), array.dtype)
            arrays.append(np.concatenate([array, padding]))
        return np.concatenate(arrays, axis=1)  # [T, Σ B_w, ...]

    per_step = ("observations", "actions", "rewards", "dones", "valid", "time_steps")
    return Rollout(
        **{name: side_by_side(name) for name in per_step},
        episode_returns=np.concatenate([rollout.episode_returns for rollout in rollouts]),
        episode_lengths=np.concatenate([rollout.episode_lengths for rollout in rollouts]),
    )


def worker_act_seed(seed: int, worker: int) -> int:
    """The seed of worker `worker`'s act generator: `seed` for worker 0 (as the
    single-process actor), else a 32-bit seed drawn from NumPy's SeedSequence([seed, w])."""
    if worker == 0:
        return seed
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


class WorkerResult(NamedTuple):
    """What a worker returns for its share of an update.

    Attributes:
        rollout: its share's episodes; None when it passed `max_steps`.
        rng_state: its act generator's state after the share.
        seconds: wall time of the share in the worker (setting weights, acting, stepping).
        cpu_seconds: CPU time of the worker's process during the share (its envs' own
            subprocesses, if any, not included).
        restarted: the worker had been restarted (its process died between updates), so it
            reseeded its envs although not asked to.
    """

    rollout: Rollout | None
    rng_state: np.ndarray
    seconds: float
    cpu_seconds: float
    restarted: bool


class RolloutWorker:
    """A Ray actor's body: a vector env, a policy copy and a collector (`RolloutCollector`).

    Errors building them (an unknown env on this node, a missing package) are kept and
    reported by `ready`, so the learner can refuse the run in one line before training.
    """

    def __init__(self, config: TrainConfig):
        self._problem = None
        self._collector = None
        try:
            self._env = make_vector_env(
                config.env,
                config.resolved_num_envs,
                config.env_kwargs,
                config.preset,
                config.vectorization,
            )
            spaces = self._env.single_observation_space, self._env.single_action_space
            self._policy = make_agent(config, *spaces).policy
            self._squash = config.action_squash  # how Box samples reach the env
            self._rng = tf.random.Generator.from_seed(config.seed)
            self._act = training_actor(self._policy, self._rng)
        except InputError as error:
            self._problem = (error.field, error.reason)
        except Exception as error:  # noqa: BLE001 (reported to the learner, which refuses)
            self._problem = (None, f"{type(error).__name__}: {error_reason(error)}")

    def ready(self) -> tuple[tuple[str | None, str] | None, int, str]:
        """(problem or None, pid, host name)."""
        return self._problem, os.getpid(), socket.gethostname()

    def collect(
        self,
        weights: list[np.ndarray],
        rng_state: np.ndarray,
        seed: int,
        reseed: bool,
        num_episodes: int,
        max_steps: int,
    ) -> WorkerResult:
        """Plays `num_episodes` whole episodes with `weights`, acting from `rng_state`.

        Args:
            weights: the policy's weights (`keras.Model.get_weights`, statistics included).
            rng_state: the act generator's state to start from.
            seed: env b of this worker is reset with seed + b when `reseed`, or when the
                worker was just restarted and has no envs' streams to continue (the
                learner then passes a new seed).
            reseed: reset the envs with `seed` first; else continue their streams.
            num_episodes: the worker's share.
            max_steps: the run's remaining budget; past it the share is dropped (None).
        """
        start, cpu = time.perf_counter(), time.process_time()
        self._policy.set_weights(weights)
        self._rng.reset(rng_state)
        restarted = self._collector is None and not reseed
        if reseed or self._collector is None:
            self._collector = RolloutCollector(self._env, self._act, seed, self._squash)
        rollout = self._collector.collect(num_episodes, max_steps=max_steps)
        return WorkerResult(
            rollout,
            self._rng.state.numpy(),
            time.perf_counter() - start,
            time.process_time() - cpu,
            restarted,
        )


@dataclasses.dataclass
class Timing:
    """Seconds of one update's collection, as the learner saw them.

    Attributes:
        put: putting the weights in the object store.
        collect: from handing out the shares to the last rollout back (rollout time and
            transfer; with replays after a worker's death).
        slowest_share: the longest share's time inside its worker.
        worker_cpu: CPU seconds of all the workers' shares together.
        merge: joining the rollouts.
        learner: since the previous collection returned (the update, logs, checkpoints).
        steps: counted env steps of the collection.
    """

    put: float
    collect: float
    slowest_share: float
    worker_cpu: float
    merge: float
    learner: float
    steps: int


class WorkerPool:
    """N Ray actors playing the learner's episodes; the learner's side of `--workers`.

    Connects to Ray (starting a local instance, or joining `config.ray_address`) and starts
    the workers, each checked to have built its env and policy, before any training.

    Args:
        config: the run's config (`workers` >= 1).
        note: prints a line for the user (a worker's death and restart).

    Attributes:
        rngs: [N] the workers' act generators, held (and checkpointed) by the learner.
        pids: [N] the workers' process ids (as first started).
        timings: one `Timing` per collection.

    Raises:
        InputError: Ray is not installed, the cluster does not answer or cannot place N
            workers, or a worker cannot build the env (naming the flag at fault).
    """

    def __init__(self, config: TrainConfig, note: Callable[[str], None] | None = None):
        self.config = config
        self.rngs = [
            tf.random.Generator.from_seed(worker_act_seed(config.seed, worker))
            for worker in range(config.workers)
        ]
        self.pids: list[int] = []
        self.timings: list[Timing] = []
        self._note = note or logging.getLogger(__name__).warning
        self._ray = _import_ray()
        self._started_ray = _connect(self._ray, config)
        self._actors = []
        self._last_end = None
        try:
            self._start_workers()
        except BaseException:
            self.close()
            raise

    def _start_workers(self) -> None:
        ray, config = self._ray, self.config
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < config.workers:
            raise InputError(
                f"the Ray cluster at {config.ray_address} has {cpus:g} CPUs, fewer than the "
                f"{config.workers} workers, which take one each",
                field="workers",
            )
        actor = ray.remote(RolloutWorker).options(num_cpus=1, max_restarts=-1, max_task_retries=0)
        self._actors = [actor.remote(config) for _ in range(config.workers)]
        try:
            answers = ray.get(
                [worker.ready.remote() for worker in self._actors], timeout=START_TIMEOUT
            )
        except ray.exceptions.GetTimeoutError:
            raise InputError(
                f"the {config.workers} workers did not start within {START_TIMEOUT:g} s; the "
                "cluster may be busy (`ray status` shows its free CPUs)",
                field="workers",
            ) from None
        except ray.exceptions.RayError as error:
            raise InputError(
                f"a Ray worker could not start ({type(error).__name__}: {error_reason(error)})",
                field="workers",
            ) from None
        for problem, pid, _ in answers:
            if problem is not None:
                field, reason = problem
                raise InputError(f"on a Ray worker: {reason}", field=field)
            self.pids.append(pid)

    def collector(self, policy, seed: int) -> "PoolCollector":
        """A collector over the workers whose first collection resets the envs with `seed`
        (worker w's env b with seed + w·num_envs + b), like `RolloutCollector`."""
        return PoolCollector(self, policy, seed)

    def collect(
        self,
        policy,
        seed: int,
        reseed: bool,
        num_episodes: int,
        max_steps: int | None = None,
        stop: threading.Event | None = None,
    ) -> Rollout | None:
        """Plays the update's E = `num_episodes` episodes on the workers with `policy`'s
        weights and returns them merged; None when the budget or a signal stopped it.

        Raises:
            TrainingError: a share was lost to dead workers MAX_REPLAYS times in a row.
            Exception: what an env raised inside a worker, as it raised it.
        """
        ray, config = self._ray, self.config
        shares = config.worker_shares
        assert num_episodes == sum(shares), (num_episodes, shares)
        budget = math.inf if max_steps is None else max_steps
        # The loop passes the remaining budget: the update starts at this env step.
        first_step = 0 if max_steps is None else config.total_steps - int(max_steps)
        # Envs reseeded without being asked (a restarted worker) take new streams.
        fresh_seed = _replay_seed(config.seed, first_step)
        began = time.perf_counter()
        weights = ray.put(policy.get_weights())
        put = time.perf_counter() - began

        def hand_out(worker: int, base_seed: int, reseed_envs: bool):
            return self._actors[worker].collect.remote(
                weights,
                self.rngs[worker].state.numpy(),
                base_seed + worker * config.resolved_num_envs,
                reseed_envs,
                shares[worker],
                None if max_steps is None else int(max_steps),
            )

        # What is awaited: worker w's share, or (after its death) a probe of its restart.
        pending = {
            hand_out(worker, seed if reseed else fresh_seed, reseed): (worker, _SHARE)
            for worker in range(config.workers)
        }
        results: list[WorkerResult | None] = [None] * config.workers
        deaths = [0] * config.workers
        deadlines = [math.inf] * config.workers
        while pending:
            if stop is not None and stop.is_set():
                return None
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.1)
            for reference in done:
                worker, kind = pending.pop(reference)
                actor, name = self._actors[worker], f"worker {worker} (of {config.workers})"
                try:
                    answer = ray.get(reference)
                except ray.exceptions.RayActorError as error:
                    restarting = isinstance(error, ray.exceptions.ActorUnavailableError)
                    if kind == _PROBE and restarting and time.monotonic() < deadlines[worker]:
                        time.sleep(_PROBE_INTERVAL)  # still restarting: ask again
                        pending[actor.ready.remote()] = (worker, _PROBE)
                        continue
                    if kind == _PROBE:
                        raise TrainingError(
                            f"{name} died and did not come back within {RESTART_TIMEOUT:g} s "
                            f"({type(error).__name__})"
                        ) from None
                    deaths[worker] += 1
                    if deaths[worker] >= MAX_REPLAYS:
                        raise TrainingError(
                            f"{name} died {deaths[worker]} times in a row playing its share "
                            f"({type(error).__name__})"
                        ) from None
                    self._note(
                        f"{name} died ({type(error).__name__}) playing its {shares[worker]} "
                        f"episodes from env step {first_step:,}; Ray restarts it and the "
                        "share is played again from the start, its envs reseeded"
                    )
                    deadlines[worker] = time.monotonic() + RESTART_TIMEOUT
                    pending[actor.ready.remote()] = (worker, _PROBE)
                    continue
                except ray.exceptions.RayTaskError as error:  # an env raised in the worker
                    cause = getattr(error, "cause", None)
                    raise cause if isinstance(cause, Exception) else RuntimeError(str(error))
                if kind == _PROBE:
                    problem = answer[0]
                    if problem is not None:
                        raise TrainingError(f"{name} restarted but failed: {problem[1]}")
                    # Its envs get new streams, from (seed, this update's first step); its
                    # act generator starts from the same state as before.
                    pending[hand_out(worker, fresh_seed, True)] = (worker, _SHARE)
                    continue
                if answer.rollout is None:  # it passed the budget: so does the update
                    return None
                if answer.restarted:
                    self._note(
                        f"{name} had been restarted by Ray since the last update (its process "
                        f"died); its envs were reseeded for the episodes from env step "
                        f"{first_step:,}"
                    )
                results[worker] = answer
        for rng, result in zip(self.rngs, results, strict=True):
            rng.reset(result.rng_state)
        merging = time.perf_counter()
        rollout = merge_rollouts([result.rollout for result in results])
        end = time.perf_counter()
        self.timings.append(
            Timing(
                put=put,
                collect=merging - began - put,
                slowest_share=max(result.seconds for result in results),
                worker_cpu=sum(result.cpu_seconds for result in results),
                merge=end - merging,
                learner=math.nan if self._last_end is None else began - self._last_end,
                steps=rollout.num_steps,
            )
        )
        self._last_end = end
        return None if rollout.num_steps > budget else rollout

    def close(self) -> None:
        """Ends the workers, and the local Ray instance if the pool started it."""
        ray = self._ray
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._actors = []
        if self._started_ray:
            self._started_ray = False
            with contextlib.suppress(Exception):
                ray.shutdown()


class PoolCollector:
    """`RolloutCollector`'s interface over a `WorkerPool`: the first collection resets the
    envs with the seed given, later ones continue their streams."""

    def __init__(self, pool: WorkerPool, policy, seed: int):
        self._pool = pool
        self._policy = policy
        self._seed = seed
        self._reseed = True

    def collect(self, num_episodes: int, **limits) -> Rollout | None:
        """As `RolloutCollector.collect` (`limits`: its max_steps and stop), on the workers."""
        reseed, self._reseed = self._reseed, False
        return self._pool.collect(self._policy, self._seed, reseed, num_episodes, **limits)


def _replay_seed(seed: int, first_step: int) -> int:
    """Envs' base seed for a share replayed by a restarted worker: a 32-bit seed drawn
    from SeedSequence([seed, first_step, 1]) (apart from the checkpoints' reseeds)."""
    return int(np.random.SeedSequence([seed, first_step, 1]).generate_state(1)[0])


def _import_ray():
    try:
        import ray
    except ImportError:
        raise extras.missing("needs Ray", "ray", field="workers") from None
    return ray


def _connect(ray, config: TrainConfig) -> bool:
    """Connects to Ray as `config.ray_address` says; returns whether it started a local
    instance (which `WorkerPool.close` shuts down). A process already connected (a library
    user's own `ray.init`, the tests) keeps its connection.

    Raises:
        InputError: (field ray_address) nothing answers at the address, or it is not a Ray
            cluster.
    """
    _quiet_driver_messages(ray)
    if ray.is_initialized():
        return False
    address = config.ray_address
    env_vars = {name: os.environ[name] for name in _WORKER_ENV_VARS if name in os.environ}
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        # This machine: as many CPUs as workers at least, so that workers waiting on I/O
        # (a remote simulator) can outnumber the cores.
        cpus = max(os.cpu_count() or 1, config.workers)
        # Ray reports usage statistics of the clusters it starts unless told not to; the
        # instance started here for a run reports none (a user's own setting wins).
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        with _ray_quiet():
            ray.init(
                # A new instance, even beside a cluster that Ray would join without it (a
                # `ray start --head` on this machine), where `num_cpus` is refused.
                address="local",
                num_cpus=cpus,
                include_dashboard=False,
                runtime_env={"env_vars": env_vars},
                **quiet,
            )
        return True
    if address != "auto":
        _check_answers(address)
    # The workers run this package as the learner has it, whatever the nodes have installed.
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runtime_env = {"env_vars": env_vars, "py_modules": [package]}
    try:
        with _ray_quiet():
            ray.init(address=address, runtime_env=runtime_env, **quiet)
    except Exception as error:  # noqa: BLE001 (ConnectionError, RuntimeError, TimeoutError…)
        raise InputError(
            f"cannot join a Ray cluster at {address} ({error_reason(error)}); start one with "
            "`ray start --head` (a cluster it started wants its token: RAY_AUTH_MODE=token "
            "and RAY_AUTH_TOKEN), or leave --ray_address unset for a local one",
            field="ray_address",
        ) from None
    return False


def _ray_quiet():
    """Ray's C++ core logs to file descriptor 2 while connecting (e.g. a rejected token),
    which would break the one-line errors, and every failure still surfaces as a Python
    exception, reported by the caller: hidden for QUIET_START seconds at most, as a longer
    wait is one Ray does not bound, whose own messages then say why, after a line of ours."""
    return quiet.stderr_silenced(
        QUIET_START,
        f"still starting or joining Ray after {QUIET_START:g} s; its own messages follow\n",
    )


def _quiet_driver_messages(ray) -> None:
    """Sends the messages Ray's raylet publishes to the driver (such as its paragraph when a
    worker dies, which `log_to_driver=False` does not stop) to the "ray" logger at WARNING
    instead of stdout, where they would break the progress lines; the pool reports a
    worker's death itself, in one line. (Ray prints them with a private function; if a
    later Ray renames it, they are printed again, nothing worse.)"""
    module = getattr(getattr(ray, "_private", None), "worker", None)
    printer = getattr(module, "print_to_stdstream", None)
    if printer is None or getattr(printer, "quieted", False):
        return

    def to_logger(data, *args, **kwargs):
        if data.get("pid") != "raylet":
            return printer(data, *args, **kwargs)
        for line in data.get("lines", []):
            logging.getLogger("ray").warning("(raylet) %s", line)

    to_logger.quieted = True
    module.print_to_stdstream = to_logger


def _check_answers(address: str) -> None:
    """Raises InputError (field ray_address) unless a Ray cluster's GCS answers at host:port
    within CONNECT_TIMEOUT seconds for each of two steps: a TCP connection, then one gRPC call
    (the cluster's id), whose reply or refusal for want of a token (Ray's token
    authentication) both come from a GCS. At a port where another service listens (the
    dashboard's 8265 typed for 6379), `ray.init` would retry for minutes, saying nothing."""
    import grpc  # a dependency of Ray's

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT):
            pass
    except OSError as error:
        reason = error_reason(error) if not isinstance(error, TimeoutError) else "timed out"
        raise InputError(
            f"nothing answers at {address} ({reason}); start a cluster there with "
            "`ray start --head`, or leave --ray_address unset for a local one",
            field="ray_address",
        ) from None
    # Directly, not through an HTTP proxy of the environment, as Ray's own clients connect.
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            channel.unary_unary(_GCS_PROBE)(b"", timeout=CONNECT_TIMEOUT)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise InputError(
                    f"{address} accepts connections but does not answer as a Ray cluster (a "
                    "Ray head's GCS port, 6379 by default; 8265 is its dashboard); start one "
                    "with `ray start --head`, or leave --ray_address unset for a local one",
                    field="ray_address",
                ) from None
