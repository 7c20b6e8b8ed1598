"""Faults survived: non-finite numbers and failing envs stop training with a clear message,
keep the last good checkpoint and never write a NaN policy."""

import dataclasses
import errno
import math
import os

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf import TrainConfig, load_policy, train
from reinforce_tf.agent import Reinforce
from reinforce_tf.errors import TrainingError
from reinforce_tf.optimizers import make_optimizer
from reinforce_tf.policy import build_policy
from reinforce_tf.training import episode_log
from reinforce_tf.training.checkpoints import RunCheckpoint
from reinforce_tf.training.episode_log import read_episodes

# Each sub-env of the vector env counts its own steps.
FAULT_AFTER = 1_000


class NaNRewardAfter(gym.Wrapper):
    """CartPole whose reward becomes NaN after FAULT_AFTER steps."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return (
            observation,
            math.nan if self.steps > FAULT_AFTER else reward,
            terminated,
            truncated,
            info,
        )


class RaiseAfter(gym.Wrapper):
    """CartPole that raises after FAULT_AFTER steps, like a simulator crashing."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps > FAULT_AFTER:
            raise RuntimeError("simulator exploded")
        return self.env.step(action)


gym.register("NaNRewardCartPole-v0", lambda **kw: NaNRewardAfter(gym.make("CartPole-v1")))
gym.register(
    "HugeRewardCartPole-v0",
    lambda **kw: gym.wrappers.TransformReward(gym.make("CartPole-v1"), lambda r: 1e38 * r),
)
gym.register("ExplodingCartPole-v0", lambda **kw: RaiseAfter(gym.make("CartPole-v1")))


def fault_config(tmp_path, env):
    # One env, one update per episode: the first NaN reward is in the episode that passes
    # env step 1,000, checkpoints every 300 steps come before it.
    return TrainConfig(
        env=env,
        update="episode",
        total_steps=5_000,
        checkpoint_every=300,
        logdir=str(tmp_path / "run"),
        save_path=str(tmp_path / "policy.keras"),
    )


def restore_latest(tmp_path):
    env = gym.make("CartPole-v1")
    policy = build_policy(env.observation_space, env.action_space)
    agent = Reinforce(policy, make_optimizer("adam", 0.01))
    checkpoint = RunCheckpoint(tmp_path / "run", agent, tf.random.Generator.from_seed(0), 100)
    return checkpoint.restore(), policy


@pytest.mark.parametrize("update", ["episode", "batch"])
def test_nan_reward_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, update):
    # "batch" standardises the returns, which would turn NaNs into zero weights unnoticed.
    config = fault_config(tmp_path, "NaNRewardCartPole-v0")
    if update == "batch":
        config = dataclasses.replace(config, update="batch", batch_episodes=2, num_envs=1)
    with pytest.raises(TrainingError) as error:
        train(config, progress=None)
    message = str(error.value)
    assert message.startswith("env 'NaNRewardCartPole-v0' returned a non-finite reward (nan) ")
    assert "the policy file was not written" in message
    assert not (tmp_path / "policy.keras").exists()

    counters, policy = restore_latest(tmp_path)
    # The message names the step the bad episodes started from, and the newest checkpoint.
    failed_at = int(message.split("from env step ")[1].split(";")[0].replace(",", ""))
    assert counters.steps <= failed_at <= FAULT_AFTER
    assert failed_at > FAULT_AFTER - 1_000  # the fault is in the next (≤ 2 × 500-step) episodes
    assert message.endswith(
        f"the last good checkpoint is {tmp_path}/run/checkpoints/ckpt-{counters.steps}"
    )
    assert all(np.all(np.isfinite(w)) for w in policy.get_weights())
    episodes = read_episodes(tmp_path / "run" / "episodes.csv")
    assert np.all(np.isfinite(episodes["return"]))
    assert episodes["step"][-1] == failed_at  # no row of the NaN episode


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_overflowing_returns_stop_at_the_non_finite_loss(tmp_path):
    # Rewards of 1e38 are finite float32s, but a return of two of them is not: the loss
    # (float32) is inf or NaN and the update must not be kept.
    config = dataclasses.replace(fault_config(tmp_path, "HugeRewardCartPole-v0"), logdir=None)
    with pytest.raises(TrainingError) as error:
        train(config, progress=None)
    message = str(error.value)
    assert message.startswith(
        "non-finite numbers in the update on episode 1, played from env step 0: policy_loss = "
    )
    assert message.endswith(
        "training stopped and the policy file was not written; no checkpoint is kept without "
        "a run folder (logdir)"
    )
    assert not (tmp_path / "policy.keras").exists()


def test_env_error_names_env_and_step(tmp_path):
    with pytest.raises(TrainingError) as error:
        train(fault_config(tmp_path, "ExplodingCartPole-v0"), progress=None)
    message = str(error.value)
    assert message.startswith(
        "env 'ExplodingCartPole-v0' raised RuntimeError: simulator exploded while playing episode "
    )
    failed_at = int(message.split("from env step ")[1].split(";")[0].replace(",", ""))
    assert FAULT_AFTER - 500 < failed_at <= FAULT_AFTER
    counters, _ = restore_latest(tmp_path)
    assert message.endswith(
        f"the last good checkpoint is {tmp_path}/run/checkpoints/ckpt-{counters.steps}"
    )
    assert not (tmp_path / "policy.keras").exists()


def test_an_existing_policy_is_not_overwritten_by_a_failed_run(tmp_path):
    good = train(
        TrainConfig(total_steps=500, save_path=str(tmp_path / "policy.keras")), progress=None
    )
    before = load_policy(good.save_path).get_weights()
    with pytest.raises(TrainingError):
        train(fault_config(tmp_path, "NaNRewardCartPole-v0"), progress=None)
    for got, want in zip(load_policy(good.save_path).get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_disk_full_at_a_checkpoint_stops_with_the_last_intact_one_kept(tmp_path, monkeypatch):
    # One env, one update per episode, checkpoints every 300 steps. The second save fails
    # half-way, as a full disk makes it: part of its files written, then ENOSPC.
    config = dataclasses.replace(
        fault_config(tmp_path, "CartPole-v1"), total_steps=1_500, target_return=math.inf
    )
    run = tmp_path / "run"
    save = tf.train.CheckpointManager.save
    failed = []

    def save_until_the_disk_fills(manager, checkpoint_number):
        if not failed and list((run / "checkpoints").glob("ckpt-*.index")):
            failed.append(checkpoint_number)
            (run / "checkpoints" / f"ckpt-{checkpoint_number}.data-00000-of-00001").write_bytes(
                b"\0" * 64
            )
            (run / "checkpoints" / f"ckpt-{checkpoint_number}_temp").mkdir()
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(manager, checkpoint_number=checkpoint_number)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_until_the_disk_fills)
    with pytest.raises(TrainingError) as error:
        train(config, progress=None)
    kept = restore_latest(tmp_path)[0].steps
    assert 300 <= kept < failed[0]
    assert str(error.value) == (
        f"could not write checkpoint ckpt-{failed[0]} in '{run}/checkpoints' (No space left on "
        f"device); nothing half-written is left and the newest intact checkpoint, "
        f"{run}/checkpoints/ckpt-{kept}, is kept; fix the cause, then continue with --resume"
    )
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == [
        "checkpoint",
        f"ckpt-{kept}.data-00000-of-00001",
        f"ckpt-{kept}.index",
    ]
    assert not (tmp_path / "policy.keras").exists()
    assert (run / "lock").read_text() == ""  # released

    # With space again, the run resumes from that checkpoint and replays the uninterrupted run.
    monkeypatch.undo()
    resumed = train(dataclasses.replace(config, resume=True), progress=None)
    reference = train(
        dataclasses.replace(
            config, logdir=str(tmp_path / "reference"), save_path=str(tmp_path / "ref.keras")
        ),
        progress=None,
    )
    np.testing.assert_array_equal(resumed.episode_returns, reference.episode_returns)
    for got, want in zip(
        load_policy(resumed.save_path).get_weights(), load_policy(reference.save_path).get_weights()
    ):
        np.testing.assert_array_equal(got, want)


def test_disk_full_while_logging_an_episode_stops_in_one_line(tmp_path, monkeypatch):
    write = os.write

    def write_but_not_episodes(descriptor, data):
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith("episodes.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(descriptor, data)

    monkeypatch.setattr(episode_log.os, "write", write_but_not_episodes)
    with pytest.raises(TrainingError) as error:
        train(fault_config(tmp_path, "CartPole-v1"), progress=None)
    assert str(error.value) == (
        f"could not append to {tmp_path}/run/episodes.csv (No space left on device); no "
        "checkpoint had been written yet"
    )
