"""The policy π(a|s, θ) as a plain Keras 3 functional model, and acting with it.

Shapes: B = batch of states, O = observation size, A = discrete actions, D = action dims.

The model maps observations [B, O] to the distribution's parameters, in the form a user of
the saved file wants:
- Discrete(A): action probabilities [B, A] (a Softmax over the layer named "logits");
- Box(D): {"mean": [B, D], "std": [B, D]}; σ = exp(log σ) with log σ a learned,
  state-independent vector (the bias of the layer named "log_std").
Only built-in layers and `keras.ops` are used, so the file loads with plain
`keras.saving.load_model` in a process that never imports this package. Training reads the
pre-softmax logits (or μ, log σ) through `distribution_model`, so ln π comes from a
log-softmax, never from log(softmax).
"""

import itertools
from collections.abc import Callable, Sequence

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.distributions import Categorical, DiagGaussian
from reinforce_tf.envs import check_spaces
from reinforce_tf.errors import InputError

Distribution = Categorical | DiagGaussian


def build_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    hidden_sizes: Sequence[int] = (32,),
    seed: int = 0,
) -> keras.Model:
    """Builds π(·|s, θ): tanh MLP with `hidden_sizes`, then the distribution head.

    The output layer starts with weights 100× smaller than Glorot's, so the first policy
    is close to uniform (Discrete) or to N(0, I) (Box).

    Raises:
        InputError: an unsupported space.
    """
    check_spaces(observation_space, action_space)
    seeds = itertools.count(1000 * seed)  # a distinct initializer seed per layer
    observation = keras.Input(observation_space.shape, name="observation", dtype="float32")
    features = observation
    for width in hidden_sizes:
        features = keras.layers.Dense(
            width,
            activation="tanh",
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        )(features)
    small = keras.initializers.VarianceScaling(1e-4, "fan_avg", "uniform", seed=next(seeds))
    if isinstance(action_space, gym.spaces.Discrete):
        logits = keras.layers.Dense(int(action_space.n), kernel_initializer=small, name="logits")(
            features
        )
        outputs = keras.layers.Softmax(name="probabilities")(logits)
    else:
        (dims,) = action_space.shape
        mean = keras.layers.Dense(dims, kernel_initializer=small, name="mean")(features)
        # A Dense layer fed zeros outputs its bias: a learned log σ that ignores the state.
        zeros = keras.ops.zeros_like(observation[:, :1])
        log_std = keras.layers.Dense(dims, kernel_initializer="zeros", name="log_std")(zeros)
        std = keras.layers.Activation("exponential", name="std")(log_std)
        outputs = {"mean": mean, "std": std}
    return keras.Model(observation, outputs, name="policy")


def distribution_model(policy: keras.Model) -> keras.Model:
    """The same weights, read before the output activation.

    Returns:
        A model from observations [B, O] to logits [B, A] (Discrete) or to
        {"mean": [B, D], "log_std": [B, D]} (Box).

    Raises:
        InputError: `policy` was not built by `build_policy`.
    """
    layers = {layer.name for layer in policy.layers}
    if "logits" in layers:
        return keras.Model(policy.input, policy.get_layer("logits").output)
    if {"mean", "log_std"} <= layers:
        outputs = {name: policy.get_layer(name).output for name in ("mean", "log_std")}
        return keras.Model(policy.input, outputs)
    raise InputError(
        "is not a reinforce_tf policy: it has no layer named 'logits' or 'mean'/'log_std'",
        field="policy",
    )


def make_distribution(parameters: tf.Tensor | dict[str, tf.Tensor]) -> Distribution:
    """Wraps `distribution_model` outputs in their distribution."""
    if isinstance(parameters, dict):
        return DiagGaussian(parameters["mean"], parameters["log_std"])
    return Categorical(parameters)


def make_actor(
    policy: keras.Model,
    greedy: bool = False,
    seed: int = 0,
    rng: tf.random.Generator | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled act function: observations [B, O] → actions [B] or [B, D] (NumPy).

    One `tf.function` call acts for all B envs; its input signature has B = None, so it is
    traced once for every batch size. Sampled actions draw from a `tf.random.Generator`
    seeded with `seed` (or from `rng`, a generator the caller can checkpoint); greedy
    actions take the mode (argmax, or the mean).
    """
    parameters = distribution_model(policy)
    rng = tf.random.Generator.from_seed(seed) if rng is None else rng
    (obs_size,) = policy.input_shape[1:]

    @tf.function(input_signature=[tf.TensorSpec([None, obs_size], tf.float32)])
    def act(observations):
        distribution = make_distribution(parameters(observations, training=False))
        return distribution.mode() if greedy else distribution.sample(rng)

    return lambda observations: act(np.asarray(observations, np.float32)).numpy()
