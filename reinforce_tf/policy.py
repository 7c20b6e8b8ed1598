"""The policy π(a|s, θ) as a plain Keras 3 functional model, and acting with it.

Shapes: B = batch of states, O = observation size, A = discrete actions, D = action dims;
images are [H, W, C] (height, width, channels last, as Gymnasium returns them).

The model maps observations [B, O] (or images [B, H, W, C]) to the distribution's
parameters, in the form a user of the saved file wants:
- Discrete(A): action probabilities [B, A] (a Softmax over the layer named "logits");
- Box(D): {"mean": [B, D], "std": [B, D]}; σ = exp(log σ) with log σ a learned,
  state-independent vector (the bias of the layer named "log_std").
Only built-in layers and `keras.ops` are used, so the file loads with plain
`keras.saving.load_model` in a process that never imports this package. Training reads the
pre-softmax logits (or μ, log σ) through `distribution_model`, so ln π comes from a
log-softmax, never from log(softmax).

The torso turns an observation into features for the head:
- "mlp": tanh Dense layers of `hidden_sizes` (flat vectors; images are flattened first);
- "minatar": one ReLU 3×3 convolution of 16 filters (Young & Tian 2019, MinAtar), Flatten,
  then ReLU Dense layers of `hidden_sizes`;
- "nature": ReLU convolutions 32 8×8/4, 64 4×4/2, 64 3×3/1 (Mnih et al. 2015), Flatten,
  then ReLU Dense layers of `hidden_sizes`; images of at least 36×36.
An image's first layer is a built-in `Rescaling` named "pixels" that takes the raw frames
(uint8 or bool kept as such, else float32) and maps each pixel from the Box's [low, high] to
[0, 1] (x ↦ (x − low)/(high − low); uint8 frames in [0, 255] ↦ x/255), when those bounds
are finite and the same for every pixel; otherwise it only casts to float32.

Observation normalisation (optional, flat vectors only) is the model's first layer, a built-in
`keras.layers.Normalization` named "observation_normalization": s ↦ (s − μ) / max(σ, 1e-7)
per observation dimension. Its non-trainable variables (mean μ, variance σ², count n) hold
running statistics over every observation seen (`update_observation_statistics`), so the
saved file normalises by itself and evaluation sees exactly what training saw.
"""

import itertools
from collections.abc import Callable, Sequence

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.config import TORSOS
from reinforce_tf.distributions import Categorical, DiagGaussian, TanhDiagGaussian
from reinforce_tf.errors import InputError

Distribution = Categorical | DiagGaussian | TanhDiagGaussian

NORMALIZER = "observation_normalization"
PIXELS = "pixels"

# (filters, kernel size, stride) of each ReLU convolution of a torso, with "valid" padding.
CONVOLUTIONS = {
    "mlp": (),
    "minatar": ((16, 3, 1),),  # Young & Tian 2019
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),  # Mnih et al. 2015
}
# Observation spaces that Gymnasium's FlattenObservation (--preset=flatten) makes a vector.
_FLATTENABLE = (
    gym.spaces.Dict,
    gym.spaces.Tuple,
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
)


def check_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    """Accepts flat Box observations or Box images [H, W, C], and Discrete or flat Box
    actions.

    Raises:
        InputError: naming the unsupported space and, where one exists, the way to use it.
    """
    if isinstance(observation_space, _FLATTENABLE):
        raise InputError(
            f"observation space {observation_space} is not supported as it is; --preset=flatten "
            "makes it a flat vector (Gymnasium's FlattenObservation wrapper)",
            field="env",
        )
    if not isinstance(observation_space, gym.spaces.Box):
        raise InputError(
            f"observation space {observation_space} is not supported; a Box is needed (a flat "
            "vector, or an image [height, width, channels])",
            field="env",
        )
    if len(observation_space.shape) not in (1, 3):
        raise InputError(
            f"observation space {observation_space} is not supported: a Box of rank "
            f"{len(observation_space.shape)}; a flat vector or an image [height, width, "
            "channels] is needed (gymnasium.wrappers.ReshapeObservation can add a channel "
            "axis; --preset=flatten makes it a vector)",
            field="env",
        )
    flat_box = isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
    if isinstance(action_space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        raise InputError(
            f"action space {action_space} is not supported: one categorical (or Bernoulli) per "
            "dimension is not implemented; Discrete or a flat Box is needed",
            field="env",
        )
    if not (isinstance(action_space, gym.spaces.Discrete) or flat_box):
        raise InputError(
            f"action space {action_space} is not supported; Discrete or a flat Box is needed",
            field="env",
        )


def observation_dtype(observation_space: gym.spaces.Box) -> np.dtype:
    """The dtype the policy takes and the rollout stores: uint8 and bool as the env gives
    them (a quarter of float32's bytes, or less), anything else as float32."""
    dtype = np.dtype(observation_space.dtype)
    return dtype if dtype in (np.dtype(np.uint8), np.dtype(bool)) else np.dtype(np.float32)


def resolved_torso(observation_space: gym.spaces.Box, torso: str = "auto") -> str:
    """`torso`, or for "auto": "mlp" for flat vectors, "nature" for images of at least
    36×36 pixels, else "minatar"."""
    if torso != "auto":
        return torso
    if len(observation_space.shape) == 1:
        return "mlp"
    big = min(observation_space.shape[:2]) >= min_image_side("nature")
    return "nature" if big else "minatar"


def min_image_side(torso: str) -> int:
    """The smallest height (and width) for which `torso`'s valid convolutions leave an
    output: s_out = ⌊(s − k)/stride⌋ + 1 ≥ 1, taken back through the layers (36 for nature,
    3 for minatar, 1 for mlp)."""
    side = 1
    for _, kernel, stride in reversed(CONVOLUTIONS[torso]):
        side = (side - 1) * stride + kernel
    return side


def torso_size(observation_space: gym.spaces.Box, torso: str = "auto") -> tuple[int, int]:
    """(weights of the torso's convolutions, size of the features they hand to the Dense
    layers): (0, O) for a flat vector, (0, H·W·C) for an image under "mlp"."""
    torso = resolved_torso(observation_space, torso)
    if len(observation_space.shape) == 1:
        return 0, int(observation_space.shape[0])
    height, width, channels = observation_space.shape
    weights = 0
    for filters, kernel, stride in CONVOLUTIONS[torso]:
        weights += (kernel * kernel * channels + 1) * filters
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        channels = filters
    return weights, max(height, 0) * max(width, 0) * channels


def build_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    hidden_sizes: Sequence[int] = (32,),
    *,
    seed: int = 0,
    normalize_observations: bool = False,
    torso: str = "auto",
    output_scale: float = 0.01,
    initial_log_std: float = 0.0,
) -> keras.Model:
    """Builds π(·|s, θ): [normalisation], the torso (see the module docstring) with
    `hidden_sizes`, distribution head.

    The output layer (logits or mean) starts with Glorot-uniform weights times
    `output_scale` (by default 100× smaller), so the first policy is close to uniform
    (Discrete) or to N(0, σ²) (Box), σ = exp(`initial_log_std`) (Box only). The
    normalisation starts as the identity (μ = 0, σ² = 1, n = 0).

    Raises:
        InputError: an unsupported space; a convolutional torso for flat vectors, or for
            images smaller than it needs; observation normalisation of images.
    """
    check_spaces(observation_space, action_space)
    seeds = itertools.count(1000 * seed)  # a distinct initializer seed per layer
    observation = _observation_input(observation_space)
    normalized = observation
    if len(observation_space.shape) == 3:
        if normalize_observations:
            raise InputError(
                "must be off for image observations: the policy already scales each pixel to "
                f"[0, 1] (its {PIXELS!r} layer); got True",
                field="normalize_observations",
            )
        features = _image_torso(observation, observation_space, torso, hidden_sizes, seeds)
        normalized = features
    else:
        _check_torso(observation_space, torso)
        if normalize_observations:
            normalized = keras.layers.Normalization(name=NORMALIZER)(observation)
        features = _dense_layers(normalized, hidden_sizes, seeds)
    small = _small_initializer(next(seeds), output_scale)
    if isinstance(action_space, gym.spaces.Discrete):
        logits = keras.layers.Dense(int(action_space.n), kernel_initializer=small, name="logits")(
            features
        )
        outputs = keras.layers.Softmax(name="probabilities")(logits)
    else:
        (dims,) = action_space.shape
        mean = keras.layers.Dense(dims, kernel_initializer=small, name="mean")(features)
        # A Dense layer fed zeros outputs its bias: a learned log σ that ignores the state.
        zeros = keras.ops.zeros_like(normalized[:, :1])
        log_std = keras.layers.Dense(
            dims,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(initial_log_std),
            name="log_std",
        )(zeros)
        std = keras.layers.Activation("exponential", name="std")(log_std)
        outputs = {"mean": mean, "std": std}
    return keras.Model(observation, outputs, name="policy")


def build_value(
    policy: keras.Model,
    hidden_sizes: Sequence[int] = (32,),
    *,
    seed: int = 0,
    observation_space: gym.spaces.Box | None = None,
    torso: str = "auto",
) -> keras.Model:
    """Builds the state-value network v̂(s, w): observations [B, O] → values [B, 1].

    A tanh MLP with `hidden_sizes` and a linear output; for images (`observation_space`
    then needed), its own `torso` as the policy's, with its own weights. When `policy`
    normalises its observations, v̂ reads them through the policy's normalisation
    statistics (shared, not copied; they stay the policy's variables, not v̂'s weights).
    """
    seeds = itertools.count(1000 * seed + 500)  # distinct from the policy's seeds
    if len(policy.input_shape) == 4:
        if observation_space is None:
            raise ValueError("an image policy's value network needs its observation_space")
        observation = _observation_input(observation_space)
        features = _image_torso(observation, observation_space, torso, hidden_sizes, seeds)
    else:
        observation = keras.Input(policy.input_shape[1:], name="observation", dtype="float32")
        features = _dense_layers(_normalized(policy, observation), hidden_sizes, seeds)
    value = keras.layers.Dense(1, kernel_initializer=_small_initializer(next(seeds)))(features)
    return keras.Model(observation, value, name="value")


def distribution_model(policy: keras.Model) -> keras.Model:
    """The same weights, read before the output activation.

    The observation normalisation, if any, reads its variables at every call (the Keras
    layer keeps a snapshot made when its statistics were last finalised), so compiled
    functions built once see statistics updated later.

    Returns:
        A model from observations [B, O] to logits [B, A] (Discrete) or to
        {"mean": [B, D], "log_std": [B, D]} (Box).

    Raises:
        InputError: `policy` was not built by `build_policy`.
    """
    outputs = _parameter_outputs(policy)
    if NORMALIZER not in {layer.name for layer in policy.layers}:
        return keras.Model(policy.input, outputs)
    after_normalization = keras.Model(policy.get_layer(NORMALIZER).output, outputs)
    return keras.Model(policy.input, after_normalization(_normalized(policy, policy.input)))


def _parameter_outputs(policy: keras.Model):
    """The logits [B, A], or {"mean", "log_std"} [B, D], of a model `build_policy` made.

    Checks the model is shaped as `build_policy` makes it: a functional model with one
    float input [B, O] and either a "logits" layer [B, A] under one output [B, A] (the
    probabilities), or "mean" and "log_std" layers [B, D] under the outputs
    {"mean", "std"}, each [B, D]. A Sequential model, or any other model that merely has a
    layer of one of those names, is refused rather than failing later.

    Raises:
        InputError: naming what does not fit.
    """

    def refuse(why: str):
        raise InputError(f"is not a reinforce_tf policy: {why}", field="policy")

    try:
        observation, output = policy.input, policy.output
        layers = {layer.name: layer for layer in policy.layers}
        logits = layers["logits"].output if "logits" in layers else None
        gaussian = {name: layers[name].output for name in ("mean", "log_std") if name in layers}
    except (AttributeError, ValueError):  # Sequential, subclassed, or a shared layer
        refuse("it is not a functional Keras model with one input and defined outputs")
    if not _is_observation_input(observation):
        refuse(
            "its input must be one float tensor [batch, observation size] (or an image "
            "[batch, height, width, channels] of floats, uint8 or bool)"
        )
    if logits is not None:
        if not (_is_batch_of_vectors(logits) and _is_batch_of_vectors(output)):
            refuse("its 'logits' layer and its output must be [batch, actions] tensors")
        if tuple(output.shape) != tuple(logits.shape):
            refuse("its output (the probabilities) must have the shape of its 'logits' layer")
        return logits
    if len(gaussian) == 2:
        shape = tuple(getattr(gaussian["mean"], "shape", ()))
        tensors = [*gaussian.values(), *(output.values() if isinstance(output, dict) else [])]
        if not (
            isinstance(output, dict)
            and set(output) == {"mean", "std"}
            and all(_is_batch_of_vectors(t) and tuple(t.shape) == shape for t in tensors)
        ):
            refuse(
                "a Gaussian policy's outputs must be {'mean', 'std'} and its 'mean' and "
                "'log_std' layers [batch, action dims] tensors of one shape"
            )
        return gaussian
    refuse("it has no layer named 'logits' (discrete actions) or 'mean' and 'log_std' (Box)")


def _is_observation_input(tensor) -> bool:
    """A single symbolic input [None, O] of floats, or [None, H, W, C] of floats, uint8 or
    bool, its sizes known."""
    shape = getattr(tensor, "shape", None)
    dtype = str(getattr(tensor, "dtype", ""))
    if _is_batch_of_vectors(tensor):
        return "float" in dtype
    return (
        isinstance(tensor, keras.KerasTensor)
        and len(shape) == 4
        and all(isinstance(size, int) for size in shape[1:])
        and ("float" in dtype or dtype in ("uint8", "bool"))
    )


def _is_batch_of_vectors(tensor) -> bool:
    """A single symbolic tensor [None, n] with n known."""
    shape = getattr(tensor, "shape", None)
    return (
        isinstance(tensor, keras.KerasTensor)
        and shape is not None
        and len(shape) == 2
        and isinstance(shape[-1], int)
    )


def update_observation_statistics(policy: keras.Model, observations: np.ndarray) -> None:
    """Merges a batch of observations into the policy's running mean and variance.

    The parallel form of Welford's algorithm (Chan et al. 1979): with n, μ, σ² so far and
    a batch of m observations with mean μ_b and variance σ_b², δ = μ_b − μ, n' = n + m,
    μ' = μ + δ m/n',  σ'² = (n σ² + m σ_b² + δ² n m/n') / n'.
    So μ and σ² are the exact mean and (population) variance of all observations seen,
    each step weighted equally, whatever the batch sizes.

    Args:
        policy: built with `normalize_observations=True`.
        observations: [N, O] the new observations.
    """
    layer = policy.get_layer(NORMALIZER)
    batch = np.asarray(observations, np.float64).reshape(-1, policy.input_shape[-1])
    m = len(batch)
    if m == 0:
        return
    n = float(layer.count.numpy())
    mean = layer.adapt_mean.numpy().astype(np.float64)
    variance = layer.adapt_variance.numpy().astype(np.float64)
    delta = batch.mean(axis=0) - mean
    total = n + m
    layer.adapt_mean.assign((mean + delta * m / total).astype(np.float32))
    layer.adapt_variance.assign(
        ((n * variance + m * batch.var(axis=0) + delta**2 * n * m / total) / total).astype(
            np.float32
        )
    )
    layer.count.assign(int(total))
    layer.finalize_state()  # refresh the layer's own snapshot for eager calls of `policy`


def _normalized(policy: keras.Model, observation):
    """`observation` normalised by the policy's statistics, read live; as is without them."""
    if NORMALIZER not in {layer.name for layer in policy.layers}:
        return observation
    layer = policy.get_layer(NORMALIZER)
    # The formula of keras.layers.Normalization, on its variables rather than its snapshot.
    # Each op takes the symbolic `observation`, so the graph keeps the variables themselves
    # (an op on a variable alone would run once, now, and freeze its value).
    variance = keras.ops.zeros_like(observation) + layer.adapt_variance  # [B, O]
    scale = keras.ops.maximum(keras.ops.sqrt(variance), keras.config.epsilon())
    return (observation - layer.adapt_mean) / scale


def _dense_layers(features, hidden_sizes: Sequence[int], seeds, activation: str = "tanh"):
    """Dense layers of `hidden_sizes`: tanh with Glorot's initialisation, or ReLU with He's
    (which keeps a ReLU stack's activations at unit scale); one initializer seed each."""
    initializer = {"tanh": keras.initializers.GlorotUniform, "relu": keras.initializers.HeUniform}
    for width in hidden_sizes:
        features = keras.layers.Dense(
            width,
            activation=activation,
            kernel_initializer=initializer[activation](seed=next(seeds)),
        )(features)
    return features


def _observation_input(observation_space: gym.spaces.Box):
    """The model's input [B, *shape], of the dtype the rollout stores (`observation_dtype`)."""
    dtype = observation_dtype(observation_space).name
    return keras.Input(observation_space.shape, name="observation", dtype=dtype)


def _check_torso(observation_space: gym.spaces.Box, torso: str) -> None:
    """Raises `InputError` (field torso) when `torso` cannot read `observation_space`."""
    shape = observation_space.shape
    if torso not in TORSOS:
        raise InputError(f"must be one of {', '.join(TORSOS)}; got {torso!r}", field="torso")
    if len(shape) == 1 and torso not in ("auto", "mlp"):
        raise InputError(
            f"must be auto or mlp for flat observations (the env's are {observation_space}); "
            f"the {torso} torso convolves images [height, width, channels]; got {torso!r}",
            field="torso",
        )
    if len(shape) == 3:
        side = min_image_side(resolved_torso(observation_space, torso))
        if min(shape[:2]) < side:
            raise InputError(
                f"the {resolved_torso(observation_space, torso)} torso needs images of at least "
                f"{side}×{side} pixels; the env's are {shape[0]}×{shape[1]} "
                f"({observation_space}); use --torso=minatar or --torso=mlp",
                field="torso",
            )


def _pixel_scale(observation_space: gym.spaces.Box) -> tuple[float, float]:
    """(scale, offset) mapping [low, high] to [0, 1]: 1/(high − low) and −low/(high − low)
    when the bounds are finite and the same for every pixel, else (1, 0)."""
    low = np.asarray(observation_space.low, np.float64)
    high = np.asarray(observation_space.high, np.float64)
    uniform = low.min() == low.max() and high.min() == high.max()
    if not (uniform and np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return 1.0, 0.0
    span = float(high.flat[0] - low.flat[0])
    if span <= 0:
        return 1.0, 0.0
    return 1.0 / span, -float(low.flat[0]) / span


def _image_torso(observation, observation_space, torso: str, hidden_sizes, seeds):
    """Raw frames [B, H, W, C] → features [B, F]: Rescaling, the torso's ReLU convolutions,
    Flatten, then Dense layers of `hidden_sizes` (ReLU after convolutions, else tanh)."""
    _check_torso(observation_space, torso)
    torso = resolved_torso(observation_space, torso)
    scale, offset = _pixel_scale(observation_space)
    features = keras.layers.Rescaling(scale, offset, name=PIXELS)(observation)
    for filters, kernel, stride in CONVOLUTIONS[torso]:
        features = keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            activation="relu",
            # He's initialisation keeps a ReLU stack's activations at unit scale.
            kernel_initializer=keras.initializers.HeUniform(seed=next(seeds)),
        )(features)
    features = keras.layers.Flatten()(features)
    return _dense_layers(features, hidden_sizes, seeds, "tanh" if torso == "mlp" else "relu")


def _small_initializer(seed: int, scale: float = 0.01) -> keras.initializers.Initializer:
    """Glorot-uniform times `scale`: U(±scale·√(6/(fan_in + fan_out)))."""
    return keras.initializers.VarianceScaling(scale**2, "fan_avg", "uniform", seed=seed)


def make_distribution(
    parameters: tf.Tensor | dict[str, tf.Tensor], half_range: tf.Tensor | None = None
) -> Distribution:
    """Wraps `distribution_model` outputs in their distribution: Categorical, or a
    DiagGaussian, tanh-squashed into bounds of half-range `half_range` [D] when given."""
    if isinstance(parameters, dict):
        gaussian = DiagGaussian(parameters["mean"], parameters["log_std"])
        return gaussian if half_range is None else TanhDiagGaussian(gaussian, half_range)
    return Categorical(parameters)


def make_actor(
    policy: keras.Model,
    *,
    greedy: bool = False,
    seed: int = 0,
    rng: tf.random.Generator | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled act function: observations [B, O] (or images [B, H, W, C], in the dtype
    the policy takes) → actions [B] or [B, D] (NumPy).

    One `tf.function` call acts for all B envs; its input signature has B = None, so it is
    traced once for every batch size (XLA compiles once per batch size seen). Sampled
    actions draw from a `tf.random.Generator` seeded with `seed` (or from `rng`, a generator
    the caller can checkpoint); greedy actions take the mode (argmax, or the mean).
    """
    parameters = distribution_model(policy)
    rng = tf.random.Generator.from_seed(seed) if rng is None else rng
    shape = policy.input_shape[1:]
    dtype = tf.as_dtype(policy.input.dtype)  # float32; uint8 or bool for raw frames

    # XLA-compiled, and called through its traced graph to skip tf.function's per-call
    # argument checks: acting is most of the training loop, and this is the fastest act()
    # call of the variants docs/benchmarks.md compares.
    @tf.function(input_signature=[tf.TensorSpec([None, *shape], dtype)], jit_compile=True)
    def act(observations):
        distribution = make_distribution(parameters(observations, training=False))
        return distribution.mode() if greedy else distribution.sample(rng)

    graph = act.get_concrete_function()
    return lambda observations: graph(tf.constant(observations, dtype)).numpy()
