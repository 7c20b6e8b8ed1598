"""Memory: what an update allocates, what a process may still allocate (meminfo, cgroups,
ulimit -v), and an update that would not fit (or whose allocation fails) stopping training
as a fault, its checkpoint kept."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf import InputError, TrainConfig, TrainingError, train
from reinforce_tf.training import loop, memory
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.learner import make_agent
from reinforce_tf.training.memory import update_bytes
from reinforce_tf.training.rollout import Rollout

GIB = 2**30
FRAMES_ID = "tests/Frames8-v0"
EPISODE = 5  # steps of every episode of FRAMES_ID, its time limit


class Frames(gym.Env):
    """8×8×3 uint8 frames; every episode lasts EPISODE steps (reward 1 for action 1)."""

    observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        self.t += 1
        return np.full((8, 8, 3), 10 * self.t, np.uint8), float(action), False, False, {}


gym.register(FRAMES_ID, entry_point=Frames, max_episode_steps=EPISODE)


def frames_config(tmp_path, **overrides) -> TrainConfig:
    values = {
        "env": FRAMES_ID,
        "torso": "minatar",
        "hidden_sizes": (4,),
        "batch_episodes": 4,
        "num_envs": 4,
        "total_steps": 200,
        "checkpoint_every": 20,  # after every update: 4 episodes of 5 steps
        "target_return": float("inf"),
        "final_eval_episodes": 0,
        "logdir": str(tmp_path / "run"),
        "save_path": str(tmp_path / "policy.keras"),
        **overrides,
    }
    return TrainConfig(**values)


def test_an_update_allocates_each_layers_output_for_every_step():
    # Valid steps [[1, 1], [1, 0], [0, 0]]: N = 3 (the padding rows count for nothing).
    valid = np.array([[1, 1], [1, 0], [0, 0]], bool)
    rollout = Rollout(
        observations=np.zeros((3, 2, 8, 8, 3), np.uint8),
        actions=np.zeros((3, 2), np.int32),
        rewards=np.zeros((3, 2), np.float32),
        dones=np.zeros((3, 2), bool),
        valid=valid,
        time_steps=np.zeros((3, 2), np.int32),
        episode_returns=np.zeros(0),
        episode_lengths=np.zeros(0, np.int64),
    )
    config = TrainConfig(torso="minatar", hidden_sizes=(4,), baseline="value")
    agent = make_agent(config, Frames.observation_space, Frames.action_space)
    # One step: the 8·8·3 = 192-byte frame, copied twice on its way in: 384. The policy's
    # float32 outputs: pixels 192·4 = 768, the 3×3 convolution's 6·6·16·4 = 2,304 (Flatten
    # is a view of it), Dense 4·4 = 16, logits 2·4 = 8, probabilities 8: 3,104. The value
    # network's: pixels 768, convolution 2,304, Dense 16, value 4: 3,092.
    # 384 + 3,104 + 3,092 = 6,580 bytes a step, × 3 steps.
    assert update_bytes(agent, rollout) == 3 * 6_580
    config = TrainConfig(torso="minatar", hidden_sizes=(4,))
    no_value = make_agent(config, Frames.observation_space, Frames.action_space)
    assert update_bytes(no_value, rollout) == 3 * (384 + 3_104)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_memory_available_is_the_least_of_meminfo_and_every_cgroup_limit(tmp_path, monkeypatch):
    # Under cgroup v1, the process's cgroup /job/task has no limit (2⁶³ rounded to pages),
    # /job has 4 GiB of which 3 GiB used, 0.5 GiB of it inactive page cache: headroom
    # 4 − (3 − 0.5) = 1.5 GiB. Under v2, /job/task reads "max", /job allows 2 GiB and uses
    # 1 GiB: headroom 1 GiB. A path climbing out of the tree ("/../outside") is ignored,
    # whatever limit it would find there.
    root = tmp_path / "cgroup"
    write(
        tmp_path / "self_cgroup",
        "12:cpu,memory:/job/task\n0::/job/task\n5:memory:/../../outside\n",
    )
    write(root / "memory/job/task/memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "memory/job/task/memory.usage_in_bytes", f"{GIB}\n")
    write(root / "memory/job/memory.limit_in_bytes", f"{4 * GIB}\n")
    write(root / "memory/job/memory.usage_in_bytes", f"{3 * GIB}\n")
    write(root / "memory/job/memory.stat", f"cache 1\ntotal_inactive_file {GIB // 2}\n")
    write(root / "job/task/memory.max", "max\n")
    write(root / "job/task/memory.current", "5\n")
    write(root / "job/memory.max", f"{2 * GIB}\n")
    write(root / "job/memory.current", f"{GIB}\n")
    write(tmp_path / "outside/memory.limit_in_bytes", "1\n")
    write(tmp_path / "outside/memory.usage_in_bytes", "0\n")
    headrooms = memory._cgroup_headrooms(tmp_path / "self_cgroup", root)
    assert sorted(headrooms) == [GIB, GIB * 3 // 2, 9223372036854771712 - GIB]

    write(tmp_path / "meminfo", "MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "PROC_CGROUP", tmp_path / "self_cgroup")
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    assert memory.available_memory() == GIB  # not MemAvailable's 8 GiB
    monkeypatch.setattr(memory, "PROC_CGROUP", tmp_path / "missing")
    assert memory.available_memory() == 8 * GIB


# TensorFlow's message when an op of a compiled function cannot allocate its output.
OOM_MESSAGE = """Graph execution error:

Detected at node gradient_tape/functional_1/conv2d_1/Conv2DBackpropFilter defined at:
  File "reinforce_tf/agent.py", line 203, in _update

OOM when allocating tensor with shape[20,6,6,16] and type float on /job:localhost/replica:0/\
task:0/device:CPU:0 by allocator mklcpu
\t [[{{node gradient_tape/functional_1/conv2d_1/Conv2DBackpropFilter}}]]
Hint: If you want to see a list of allocated tensors when OOM happens, add \
report_tensor_allocations_upon_oom to RunOptions for current allocation info.
"""


class ShrinkMemory:
    """A progress receiver that leaves `bytes` available from update `after` on."""

    def __init__(self, after, bytes):
        self.after, self.bytes, self.updates, self.available = after, bytes, 0, 10**15

    def start(self, steps, total_steps):
        pass

    def update(self, steps, episodes, mean_return, steps_per_second):
        self.updates += 1
        if self.updates == self.after:
            self.available = self.bytes

    def note(self, text):
        pass

    def end(self):
        pass


def test_an_update_that_would_not_fit_stops_training_before_it_allocates(tmp_path, monkeypatch):
    # Every update: 4 episodes of 5 steps, N = 20; (384 + 3,104) bytes a step (as above,
    # without the value network): 69,760 bytes. One byte fewer is left after update 2, whose
    # checkpoint (at step 40) stays the newest.
    progress = ShrinkMemory(after=2, bytes=20 * 3_488 - 1)
    monkeypatch.setattr(memory, "available_memory", lambda: progress.available)
    with pytest.raises(TrainingError) as error:
        train(frames_config(tmp_path), progress=progress)
    assert str(error.value) == (
        "out of memory in the update on episodes 9-12 (20 steps, played from env step 40): "
        "its activations need about 0.00 GiB, more than the 0.00 GiB available; training "
        "stopped and the policy file was not written; lower --batch_episodes or "
        f"--hidden_sizes; the last good checkpoint is {tmp_path}/run/checkpoints/ckpt-40"
    )
    assert progress.updates == 2
    assert not (tmp_path / "policy.keras").exists()


def test_an_allocation_that_fails_in_the_update_is_a_fault_keeping_the_checkpoint(
    tmp_path, monkeypatch
):
    # As under `ulimit -v`: TensorFlow cannot allocate the third update's tensors.
    updates = []
    real_update = loop.update_from_rollout

    def update_or_fail(agent, rollout, config):
        updates.append(rollout.num_steps)
        if len(updates) == 3:
            raise tf.errors.ResourceExhaustedError(None, None, OOM_MESSAGE)
        return real_update(agent, rollout, config)

    monkeypatch.setattr(loop, "update_from_rollout", update_or_fail)
    with pytest.raises(TrainingError) as error:
        train(frames_config(tmp_path), progress=None)
    assert str(error.value) == (
        "out of memory in the update on episodes 9-12 (20 steps, played from env step 40): "
        "OOM when allocating tensor with shape[20,6,6,16] and type float; training stopped "
        "and the policy file was not written; lower --batch_episodes or --hidden_sizes; the "
        f"last good checkpoint is {tmp_path}/run/checkpoints/ckpt-40"
    )
    assert updates == [20, 20, 20]
    assert not (tmp_path / "policy.keras").exists()


def test_a_batch_of_more_episodes_than_the_budget_has_steps_blames_batch_episodes(tmp_path):
    # 10**9 episodes in 64 envs within 1,000,000 steps: their reset rows alone take ~10**9
    # vector steps. Before, the refusal named --num_envs, which the user never gave.
    with pytest.raises(InputError) as error:
        train(TrainConfig(batch_episodes=10**9, save_path=str(tmp_path / "p.keras")), progress=None)
    assert error.value.field == "batch_episodes"
    assert error.value.reason.endswith("available; lower --batch_episodes")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("game", ["Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"])
def test_every_minatar_game_fits_with_its_defaults_at_5m_steps(game):
    # Before: MinAtar registers no time limit, so every game but Breakout (which carried a
    # 10,000-step cap) was refused with the default flags, e.g. Freeway's buffers' worst case
    # as 1,000,001 rows in 16 envs, ~32 GiB. With the cap and the shared MinAtar config:
    # (64 − 1)(10,001)/64 + 10,000 = 19,845 rows of 64 envs of 10×10 frames.
    for total_steps in (1_000_000, 5_000_000):
        config = TrainConfig.for_env(f"MinAtar/{game}-v1", total_steps=total_steps)
        env = make_vector_env(config.env, config.resolved_num_envs, config.env_kwargs)
        try:
            memory.check_memory(config, env)  # raises InputError when it would not fit
        finally:
            env.close()
        assert env.spec.max_episode_steps == 10_000
