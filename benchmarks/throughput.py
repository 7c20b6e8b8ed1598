"""Throughput: env steps/s of acting and samples/s of the update, each timed alone.

- raw env: the vector env stepped with `action_space.sample()`, nothing else (the ceiling);
- collection loop: the trainer's `RolloutCollector` with the trainer's actor
  (`acting.training_actor`), or with an acting alternative (`variant_actor`);
- naive acting: the naive reference's episodes (`naive_reinforce.play_episode`);
- update: samples/s through the trainer's `update_from_rollout`.

Every policy comes from the trainer's `make_agent`, initial weights (no learning).
Shapes: B = envs, O = observation size.
"""

import time
from collections.abc import Callable

import gymnasium as gym
import keras
import naive_reinforce
import numpy as np
import tensorflow as tf

from reinforce_tf.config import TrainConfig
from reinforce_tf.policy import distribution_model, make_actor, make_distribution
from reinforce_tf.training.acting import training_actor
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.learner import make_agent, update_from_rollout
from reinforce_tf.training.rollout import RolloutCollector

ACTORS = ("trainer", "make_actor", "tf_function")


def timed(step: Callable[[], tuple[int, int]], seconds: float) -> tuple[int, int, float]:
    """Calls `step()` → (env steps, counted steps) until `seconds` pass; sums and time."""
    step()  # warm-up: traces and compiles outside the clock
    steps = counted = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        more_steps, more_counted = step()
        steps, counted = steps + more_steps, counted + more_counted
    return steps, counted, elapsed


def raw_env_rate(env_id: str, num_envs: int, seconds: float, mode: str | None = None) -> float:
    """Env steps/s of the vector env stepped with `action_space.sample()`, nothing else.

    `mode`: None for the trainer's vector env (`make_vector_env`), else a Gymnasium
    `vectorization_mode` such as "async".
    """
    env = vector_env(env_id, num_envs, mode)
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
    config: TrainConfig,
    num_envs: int,
    seconds: float,
    actor: str = "trainer",
    mode: str | None = None,
) -> dict:
    """Env steps/s and counted steps/s of the trainer's collection loop.

    Counted steps leave out the reset step after each episode and the steps of envs idling
    once every episode of the collection has started (until the last ones end). `actor`:
    one of ACTORS (see `variant_actor`).
    """
    env = vector_env(config.env, num_envs, mode)
    try:
        agent = make_agent(config, env.single_observation_space, env.single_action_space)
        act = variant_actor(agent.policy, config.seed, actor)
        collector = RolloutCollector(env, act, config.seed)
        episodes = max(config.episodes_per_update, num_envs)

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


def variant_actor(policy: keras.Model, seed: int, actor: str) -> Callable[[np.ndarray], np.ndarray]:
    """The trainer's actor, or an alternative for comparison (observations [B, O]).

    - "trainer": `acting.training_actor`, what the trainer uses: the forward pass in NumPy
      for MLP policies, else `make_actor`;
    - "make_actor": `policy.make_actor`, acting in TensorFlow: an XLA-compiled
      `tf.function` whose traced graph is called directly;
    - "tf_function": a plain `tf.function` called through its wrapper (no XLA).
    """
    rng = tf.random.Generator.from_seed(seed)
    if actor == "trainer":
        return training_actor(policy, rng)
    if actor == "make_actor":
        return make_actor(policy, rng=rng)
    if actor not in ACTORS:
        raise ValueError(f"actor must be one of {ACTORS}; got {actor!r}")
    parameters = distribution_model(policy)
    (obs_size,) = policy.input_shape[1:]
    act = tf.function(
        lambda observations: make_distribution(parameters(observations, training=False)).sample(
            rng
        ),
        input_signature=[tf.TensorSpec([None, obs_size], tf.float32)],
    )
    return lambda observations: act(np.asarray(observations, np.float32)).numpy()


def naive_act_rate(config: TrainConfig, seconds: float) -> float:
    """Env steps/s of the naive reference's acting (initial policy, no updates)."""
    env = gym.make(config.env)
    try:
        policy = make_agent(config, env.observation_space, env.action_space).policy
        rng = np.random.default_rng(config.seed)

        def step():
            steps = len(naive_reinforce.play_episode(env, policy, rng)[2])
            return steps, steps

        steps, _, elapsed = timed(step, seconds)
    finally:
        env.close()
    return steps / elapsed


def update_rate(config: TrainConfig, seconds: float) -> dict:
    """Samples/s through the trainer's update (`update_from_rollout`: returns, weights,
    the compiled step) of one batch collected by the initial policy, repeated."""
    env = make_vector_env(config.env, config.resolved_num_envs)
    try:
        agent = make_agent(config, env.single_observation_space, env.single_action_space)
        act = training_actor(agent.policy, tf.random.Generator.from_seed(config.seed))
        collector = RolloutCollector(env, act, config.seed)
        rollout = collector.collect(config.episodes_per_update)
    finally:
        env.close()

    def step():
        update_from_rollout(agent, rollout, config)
        return rollout.num_steps, rollout.num_steps

    samples, _, elapsed = timed(step, seconds)
    return {"samples_per_s": samples / elapsed, "batch_samples": rollout.num_steps}


def vector_env(env_id: str, num_envs: int, mode: str | None = None) -> gym.vector.VectorEnv:
    """The trainer's vector env (`mode` None), or Gymnasium's with `vectorization_mode`."""
    if mode is None:
        return make_vector_env(env_id, num_envs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
