"""How much memory a run needs and how much it may have: checked before training (weights,
rollout buffers) and before each update (its activations).

Shapes: N = counted steps of an update, B = envs, O = observation size.

What a process may still allocate is the least of Linux's MemAvailable and the headroom of
its cgroup and of each cgroup above it (limit − usage, the inactive page cache not counted as
usage; cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`): a container's limit may be far
below the machine's memory.

The update is one forward and backward pass over all N steps, so its memory grows with N,
which is only known once the episodes are played. Bounded in advance by E × the time limit
(27,000 steps an Atari episode), it would refuse every Pong run, whose episodes take a few
hundred to a few thousand steps; so each update is checked before it starts
(`check_update`), and an allocation that fails anyway (under `ulimit -v`, say) stops the run
as a fault (`ALLOCATION_ERRORS`), its last checkpoint kept.
"""

import contextlib
import itertools
import os
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError, error_reason
from reinforce_tf.policy import torso_size
from reinforce_tf.training.rollout import Rollout, buffer_bytes, collection_rows

# What an allocation that fails raises: TensorFlow's ops, and NumPy or Python.
ALLOCATION_ERRORS = (tf.errors.ResourceExhaustedError, MemoryError)
# Where Linux describes the memory and the process's cgroups.
MEMINFO = Path("/proc/meminfo")
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Bytes read at most from one of those files (each is a few lines; memory.stat ~40).
_MAX_READ = 64 * 1024
# Layers whose output is a view of their input, or the input itself: no memory of their own.
_VIEWS = (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Reshape)


def check_memory(config: TrainConfig, env: gym.vector.VectorEnv) -> None:
    """Refuses, before training, a config whose network or collections may not fit in memory.

    A collection's buffers hold its rows (`rollout.collection_rows`: bounded by the env's
    time limit, given how the episodes are handed out to the envs, and by the step budget)
    for every env; the rollout copied out of them and the update's inputs take about as
    much again each, so the peak is about 3× the buffers. The update's activations are
    checked before each update (`check_update`).

    Raises:
        InputError: naming the flag that sets the bound in force (--hidden_sizes for the
            weights; --batch_episodes when the time limit bounds the rows, else --num_envs
            with --total_steps).
    """
    episodes = max(config.worker_shares)  # each worker's collection (the learner's, without)
    num_envs = config.resolved_num_envs
    rows = collection_rows(env.spec, episodes, num_envs, config.total_steps)
    # The learner holds every worker's rollout (about the buffers' size) and their merge.
    copies = max(config.workers, 1)
    needed = 3 * buffer_bytes(
        rows, copies * num_envs, env.single_observation_space, env.single_action_space
    )
    available = available_memory()
    weights = _weight_bytes(config, env.single_observation_space, env.single_action_space)
    if weights > available:
        raise InputError(
            f"a network of these widths needs about {weights / 2**30:,.1f} GiB for its weights "
            f"and their gradients and optimizer state, more than the "
            f"{available / 2**30:,.1f} GiB available",
            field="hidden_sizes",
        )
    if needed <= available:
        return
    by_time_limit = rows < collection_rows(None, episodes, num_envs, config.total_steps)
    # More episodes than the budget has steps: their reset rows alone outgrow the budget.
    by_episodes = episodes - num_envs > config.total_steps
    field = "batch_episodes" if by_time_limit or by_episodes else "num_envs"
    raise InputError(
        f"a collection of {config.episodes_per_update:,} episodes in {copies * num_envs:,} envs "
        f"may take {rows:,} vector steps and about {needed / 2**30:,.1f} GiB of memory, more "
        f"than the {available / 2**30:,.1f} GiB available; lower --{field}"
        + (" or --total_steps" if field == "num_envs" else ""),
        field=field,
    )


def check_update(agent, rollout: Rollout) -> None:
    """Raises MemoryError when the update on `rollout` needs more than `available_memory`
    (`update_bytes`), before it allocates any of it."""
    needed, available = update_bytes(agent, rollout), available_memory()
    if needed > available:
        raise MemoryError(
            f"its activations need about {needed / 2**30:,.2f} GiB, more than the "
            f"{available / 2**30:,.2f} GiB available"
        )


def failed_allocation(error: BaseException) -> str:
    """One line on an allocation that failed: TensorFlow's "OOM when allocating tensor with
    shape[…] and type …" (its message opens with "Graph execution error:" and runs on through
    the graph's traceback), else the error's first line."""
    for line in str(error).splitlines():
        if line.startswith("OOM when allocating"):
            return line.split(" on /job:")[0]
    return error_reason(error)


def update_bytes(agent, rollout: Rollout) -> int:
    """Bytes the update on `rollout` allocates: N × (2 × an observation's bytes + the bytes
    of every layer's output, for one step, of the policy and the value network).

    Measured (peak RSS less that of the same run with one-step updates, `/usr/bin/time -v`):
    64×64×3 uint8 frames, minatar torso, N = 3,200: 0.95 GB, estimated 1.02 (N = 9,600:
    3.03, estimated 3.07); 84×84×4 frames, nature torso, Dense 512, N = 3,200: 0.76 GB,
    estimated 0.82; a tanh Dense 20,000 on 4 floats, N = 16,000: 1.31 GB, estimated 1.28.
    """
    per_step = 2 * rollout.observations[0, 0].nbytes
    for model in (agent.policy, agent.value):
        for layer in [] if model is None else model.layers:
            if not isinstance(layer, _VIEWS):
                per_step += sum(_step_bytes(output) for output in keras.tree.flatten(layer.output))
    return rollout.num_steps * per_step


def _step_bytes(tensor) -> int:
    """Bytes of one step's slice of a symbolic [None, ...] tensor."""
    return int(np.prod(tensor.shape[1:])) * np.dtype(tensor.dtype).itemsize


def _weight_bytes(config: TrainConfig, observation_space, action_space) -> int:
    """Bytes of the policy's (and value network's) float32 weights, times 4: the weights,
    their gradients and two optimizer slots (Adam's moments)."""
    outputs = (
        action_space.n
        if isinstance(action_space, gym.spaces.Discrete)
        else 2 * int(np.prod(action_space.shape))
    )
    convolutions, features = torso_size(observation_space, config.torso)
    widths = [features, *config.hidden_sizes]
    hidden = convolutions + sum((a + 1) * b for a, b in itertools.pairwise(widths))
    weights = hidden + (widths[-1] + 1) * int(outputs)
    if config.baseline == "value":
        weights += hidden + widths[-1] + 1
    return 4 * 4 * weights


def available_memory() -> int:
    """Bytes this process may still allocate: the least of MemAvailable (else the free
    pages) and its cgroups' headroom (see the module docstring)."""
    return min([_meminfo_available(), *_cgroup_headrooms(PROC_CGROUP, CGROUP_ROOT)])


def _meminfo_available() -> int:
    """Linux's MemAvailable, else free pages."""
    for line in _read(MEMINFO).splitlines():
        if line.startswith("MemAvailable:"):
            with contextlib.suppress(ValueError, IndexError):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _cgroup_headrooms(proc_cgroup: Path, root: Path) -> list[int]:
    """Limit − usage (less its inactive page cache) of every memory cgroup from this
    process's up to the root, under cgroup v2 (`root`/path/memory.max) and v1
    (`root`/memory/path/memory.limit_in_bytes); none where no limit is set or readable."""
    headrooms = []
    for line in _read(proc_cgroup).splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:  # v2: one tree for every controller
            files = root, "memory.max", "memory.current", "inactive_file"
        elif "memory" in controllers.split(","):
            files = root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
            files += ("total_inactive_file",)
        else:
            continue
        tree, limit_name, usage_name, cache_name = files
        folder = (tree / path.lstrip("/")).resolve()
        while folder.is_relative_to(tree.resolve()):
            headroom = _headroom(folder, limit_name, usage_name, cache_name)
            if headroom is not None:
                headrooms.append(headroom)
            if folder == tree.resolve():
                break
            folder = folder.parent
    return headrooms


def _headroom(folder: Path, limit_name: str, usage_name: str, cache_name: str) -> int | None:
    """One cgroup's limit − (usage − inactive page cache), or None without a numeric limit
    and usage ("max" under v2; a v1 cgroup without a limit reads about 2⁶³, harmless)."""
    try:
        limit, usage = int(_read(folder / limit_name)), int(_read(folder / usage_name))
    except ValueError:
        return None
    cache = 0
    for line in _read(folder / "memory.stat").splitlines():
        name, _, value = line.partition(" ")
        if name == cache_name and value.strip().isdigit():
            cache = int(value)
    return max(limit - max(usage - cache, 0), 0)


def _read(path: Path) -> str:
    """The start of a small text file (at most _MAX_READ bytes), "" if it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read(_MAX_READ)
    except OSError:
        return ""
