"""The trainer's NumPy actor: the Keras policy's numbers, its distribution, its seeding."""

import warnings

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf.policy import (
    build_policy,
    distribution_model,
    make_actor,
    update_observation_statistics,
)
from reinforce_tf.training.acting import NumpyActor, greedy_actor, training_actor
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.rollout import RolloutCollector

BOX = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)


def _actor(policy, seed=0):
    return training_actor(policy, tf.random.Generator.from_seed(seed))


def _observations(count=64, size=5, seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, (count, size)).astype(np.float32)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,))])
def test_forward_pass_is_the_keras_policys(action_space, normalize):
    policy = build_policy(BOX, action_space, (16, 8), normalize_observations=normalize, seed=4)
    # Weights of unit scale (the output layer starts 100× smaller) and non-trivial statistics.
    policy.set_weights(
        [np.random.default_rng(1).normal(size=w.shape) for w in policy.get_weights()]
    )
    if normalize:
        update_observation_statistics(policy, _observations(seed=2))
    actor = _actor(policy)
    assert isinstance(actor, NumpyActor)
    observations = _observations()
    expected = distribution_model(policy)(observations)
    head = expected if isinstance(action_space, gym.spaces.Discrete) else expected["mean"]
    np.testing.assert_allclose(actor.forward(observations), head, rtol=1e-5, atol=1e-5)


def test_sync_reads_parameters_changed_after_the_actor_was_made():
    policy = build_policy(BOX, gym.spaces.Discrete(2), (8,), normalize_observations=True)
    actor = _actor(policy)
    observations = _observations()
    before = actor.forward(observations)
    logits = policy.get_layer("logits")
    logits.bias.assign([0.0, 50.0])
    update_observation_statistics(policy, _observations(seed=3))
    np.testing.assert_array_equal(actor.forward(observations), before)  # not yet synced
    actor.sync()
    np.testing.assert_allclose(
        actor.forward(observations), distribution_model(policy)(observations), atol=1e-5
    )
    np.testing.assert_array_equal(actor(observations), 1)  # π(1) ≈ 1 − e⁻⁵⁰


def test_each_collection_acts_with_the_parameters_at_its_start():
    env = make_vector_env("CartPole-v1", 4)
    policy = build_policy(env.single_observation_space, env.single_action_space, (8,))
    collector = RolloutCollector(env, _actor(policy), seed=0)
    first = collector.collect(4)
    policy.get_layer("logits").bias.assign([50.0, 0.0])  # as an update between collections
    second = collector.collect(4)
    env.close()
    assert set(first.actions[first.valid]) == {0, 1}
    np.testing.assert_array_equal(second.actions[second.valid], 0)


def test_discrete_samples_follow_the_softmax():
    policy = build_policy(BOX, gym.spaces.Discrete(3), (4,))
    policy.get_layer("logits").bias.assign([0.0, 1.0, -1.0])
    actor = _actor(policy)
    observations = np.zeros((100_000, 5), np.float32)
    counts = np.bincount(actor(observations), minlength=3)
    probabilities = distribution_model(policy)(observations[:1]).numpy()[0]
    probabilities = np.exp(probabilities) / np.exp(probabilities).sum()
    # Each count is Binomial(n, p): within 5 standard deviations of n p.
    n = len(observations)
    np.testing.assert_array_less(
        np.abs(counts - n * probabilities), 5 * np.sqrt(n * probabilities * (1 - probabilities))
    )


def test_gaussian_samples_have_the_policys_mean_and_std():
    policy = build_policy(BOX, gym.spaces.Box(-1, 1, (2,)), (4,), initial_log_std=-0.5)
    policy.get_layer("mean").bias.assign([0.3, -0.7])
    actor = _actor(policy)
    observations = np.zeros((100_000, 5), np.float32)
    actions = actor(observations)
    assert actions.dtype == np.float32 and actions.shape == (100_000, 2)
    # μ = 0.3, −0.7 (zero inputs ⇒ the bias); σ = e^−0.5 ≈ 0.607 (unclipped samples).
    sigma = np.exp(-0.5)
    np.testing.assert_allclose(actions.mean(axis=0), [0.3, -0.7], atol=5 * sigma / np.sqrt(1e5))
    np.testing.assert_allclose(actions.std(axis=0), sigma, rtol=0.01)


def test_actions_are_drawn_from_the_generator_the_checkpoint_saves():
    policy = build_policy(BOX, gym.spaces.Box(-1, 1, (2,)), (4,))
    observations = _observations(8)
    rng = tf.random.Generator.from_seed(7)
    actor = training_actor(policy, rng)
    np.testing.assert_array_equal(rng.state, tf.random.Generator.from_seed(7).state)
    actor.sync()  # a collection starts: its stream is seeded from rng
    first = actor(observations)
    # Same seed, same actions; a generator restored to a saved state continues the stream.
    np.testing.assert_array_equal(_actor(policy, 7)(observations), first)
    saved = rng.state.numpy()
    actor.sync()
    second = actor(observations)
    restored = tf.random.Generator.from_seed(0)
    restored.reset(saved)
    np.testing.assert_array_equal(training_actor(policy, restored)(observations), second)
    assert not np.array_equal(second, first)
    assert not np.array_equal(_actor(policy, 8)(observations), first)


def _flat_model(hidden_activation="tanh", head_activation=None, log_std=None):
    """A flat policy of build_policy's shape (Dense 4 → "logits" → "probabilities"), or with
    `log_std` a Gaussian one whose "log_std" Dense is fed zeros (or, "features", the
    features), with the activations given."""
    observation = keras.Input((5,), name="observation")
    hidden = keras.layers.Dense(4, activation=hidden_activation)(observation)
    if log_std is None:
        logits = keras.layers.Dense(2, activation=head_activation, name="logits")(hidden)
        return keras.Model(observation, keras.layers.Softmax(name="probabilities")(logits))
    mean = keras.layers.Dense(2, activation=head_activation, name="mean")(hidden)
    source = hidden if log_std == "features" else keras.ops.zeros_like(hidden[:, :1])
    std = keras.layers.Activation("exponential", name="std")(
        keras.layers.Dense(2, name="log_std")(source)
    )
    return keras.Model(observation, {"mean": mean, "std": std})


def test_relu_layers_act_in_numpy_too():
    model = _flat_model("relu")
    model.set_weights([np.random.default_rng(3).normal(size=w.shape) for w in model.get_weights()])
    actor = greedy_actor(model)
    assert isinstance(actor, NumpyActor)
    observations = _observations(64)
    np.testing.assert_array_equal(actor(observations), make_actor(model, greedy=True)(observations))


@pytest.mark.parametrize(
    "model",
    [
        _flat_model(lambda x: keras.ops.tanh(x)),  # a lambda: not one of build_policy's
        _flat_model(keras.layers.ReLU()),  # an activation layer object
        _flat_model(head_activation="tanh"),  # a head that is not linear
        _flat_model(log_std="features"),  # σ depends on the state
    ],
    ids=["lambda", "relu_layer", "tanh_head", "state_dependent_std"],
)
def test_models_the_numpy_forward_pass_cannot_read_act_through_tensorflow(model):
    for actor in (greedy_actor(model), _actor(model)):
        assert not isinstance(actor, NumpyActor)
        assert len(actor(_observations(3))) == 3
    np.testing.assert_array_equal(
        greedy_actor(model)(_observations(16)), make_actor(model, greedy=True)(_observations(16))
    )


@pytest.mark.parametrize(
    "frames",
    [
        gym.spaces.Box(0, 1, (10, 10, 4), bool),  # MinAtar's
        gym.spaces.Box(0, 255, (12, 9, 3), np.uint8),  # rescaled x/255
        gym.spaces.Box(-2.0, 2.0, (7, 7, 2), np.float32),  # rescaled (x + 2)/4
    ],
    ids=["bool", "uint8", "float32"],
)
@pytest.mark.parametrize("action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,))])
def test_the_minatar_torso_acts_in_numpy_with_the_keras_policys_numbers(frames, action_space):
    policy = build_policy(frames, action_space, (16,), torso="minatar", seed=3)
    policy.set_weights(
        [np.random.default_rng(1).normal(size=w.shape) for w in policy.get_weights()]
    )
    actor = _actor(policy)
    assert isinstance(actor, NumpyActor)
    observations = np.stack([frames.sample() for _ in range(32)])
    expected = distribution_model(policy)(observations)
    head = expected if isinstance(action_space, gym.spaces.Discrete) else expected["mean"]
    # Outputs of a few hundred: the same float32 operations, summed in another order.
    np.testing.assert_allclose(actor.forward(observations), head, rtol=1e-5, atol=1e-3)
    assert actor(observations).shape[0] == 32


def test_other_models_act_through_tensorflow():
    # The Nature torso: three convolutions, strides 4 and 2.
    frames = gym.spaces.Box(0, 255, (36, 36, 4), np.uint8)
    image_policy = build_policy(frames, gym.spaces.Discrete(3), (8,), torso="nature")
    assert not isinstance(_actor(image_policy), NumpyActor)
    # A flat policy with a layer the NumPy forward pass does not know (here a Dropout).
    observation = keras.Input((5,), name="observation")
    hidden = keras.layers.Dropout(0.0)(keras.layers.Dense(4, activation="tanh")(observation))
    logits = keras.layers.Dense(2, name="logits")(hidden)
    model = keras.Model(observation, keras.layers.Softmax(name="probabilities")(logits))
    actor = _actor(model)
    assert not isinstance(actor, NumpyActor)
    assert actor(_observations(3)).shape == (3,)
    # And the same actions as make_actor, which it is.
    np.testing.assert_array_equal(
        _actor(model, 5)(_observations(16)), make_actor(model, seed=5)(_observations(16))
    )
    # A quantized policy: its kernels are int8 with a separate scale.
    quantized = build_policy(BOX, gym.spaces.Discrete(2), (8,))
    with warnings.catch_warnings():  # Keras names each layer it has nothing to quantize in
        warnings.simplefilter("ignore")
        quantized.quantize("int8")
    assert not isinstance(greedy_actor(quantized), NumpyActor)


@pytest.mark.parametrize("action_space", [gym.spaces.Discrete(4), gym.spaces.Box(-1, 1, (3,))])
def test_greedy_actions_are_the_modes_make_actor_takes(action_space):
    policy = build_policy(BOX, action_space, (16,), normalize_observations=True, seed=2)
    policy.set_weights(
        [np.random.default_rng(5).normal(size=w.shape) for w in policy.get_weights()]
    )
    update_observation_statistics(policy, _observations(seed=6))
    actor = greedy_actor(policy)
    assert isinstance(actor, NumpyActor)
    actor.sync()  # as a collection does: reads θ again, draws nothing
    observations = _observations(256)
    expected = make_actor(policy, greedy=True)(observations)
    if isinstance(action_space, gym.spaces.Discrete):
        np.testing.assert_array_equal(actor(observations), expected)
    else:
        np.testing.assert_allclose(actor(observations), expected, rtol=1e-5, atol=1e-5)
