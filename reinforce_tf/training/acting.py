"""The training loop's actor: the policy's forward pass in NumPy for the MLPs and the
MinAtar network `build_policy` makes.

The serial loop calls its actor once per vector step. Through TensorFlow that call costs
0.3–0.4 ms whatever the network (docs/benchmarks.md: a trivial compiled function costs as
much as the policy), against ~0.9 ms of physics per 16-env HalfCheetah step and ~44 µs per
64-env CartPole step. The policies `build_policy` makes for flat observations are a few small
matrix products, which NumPy computes in tens of microseconds; so those act in NumPy. So does
the "minatar" torso's one small convolution (as a matrix product over 3×3 patches: 0.30 ms
for 64 MinAtar frames against 0.66 ms for the compiled call, measured alone). Any other model
(the Nature torso's three convolutions, a user's own) acts through the compiled
`policy.make_actor`.

Shapes: B = envs, O = observation size, A = discrete actions, D = action dims.
"""

import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.policy import NORMALIZER, make_actor

# The hidden activations `build_policy` uses (by identity: a user's lambda or activation layer
# is not one of them), as NumPy functions applied in place.
_ACTIVATIONS = {
    keras.activations.tanh: lambda x: np.tanh(x, out=x),
    keras.activations.relu: lambda x: np.maximum(x, 0.0, out=x),
}


def training_actor(policy: keras.Model, rng: tf.random.Generator):
    """The actor the trainer samples actions with: a `NumpyActor` when it can read
    `policy`, else `make_actor(policy, rng=rng)`. Both draw their randomness from `rng`, the
    generator the run's checkpoint saves."""
    layers = _numpy_layers(policy)
    if layers is None:
        return make_actor(policy, rng=rng)
    return NumpyActor(policy, rng, layers)


def greedy_actor(policy: keras.Model):
    """The mode of π(·|s): argmax of the logits, or μ; in NumPy when it can read `policy`
    (as `training_actor`), else `make_actor(policy, greedy=True)`. The NumPy one reads the
    parameters when it is made and at each `sync()`."""
    layers = _numpy_layers(policy)
    if layers is None:
        return make_actor(policy, greedy=True)
    return NumpyActor(policy, None, layers, greedy=True)


class NumpyActor:
    """Samples A_t ~ π(·|S_t, θ) for a batch of flat observations [B, O] (or frames
    [B, H, W, C] for the "minatar" torso), in NumPy.

    π is read from a `build_policy` model (`_numpy_layers`): frames x ↦ the Flatten of
    ReLU(conv₃ₓ₃(x·scale + offset) + b) for the minatar torso, or s ↦ (s − μ)/max(σ, ε) if
    it normalises observations, then h ↦ f(h W_i + b_i) for its hidden Dense layers (f = tanh
    or ReLU), then the head: logits = h W + b with the action drawn by Gumbel-max,
    argmax_a(logits_a + g_a), g_a ~ Gumbel(0, 1) (Discrete); or u = μ + σ ε, μ = h W + b,
    σ = exp(log σ), ε ~ N(0, I) (Box; u as sampled, before clipping or squashing). The
    same float32 operations as the Keras model, so its parameters agree to rounding.

    `sync()` copies θ (and the normalisation statistics) out of the model and seeds this
    collection's NumPy generator with a 128-bit seed drawn from `rng`. `RolloutCollector`
    calls it at the start of every collection, the only time they can change (updates and
    statistics come between collections); so a run resumed with `rng` from its checkpoint
    acts exactly as the uninterrupted run. Making the actor reads θ and draws nothing from
    `rng` (so a Ray worker, whose generator is reset to the learner's state before each
    collection, draws exactly what the single-process actor draws).
    """

    def __init__(
        self, policy: keras.Model, rng: tf.random.Generator | None, layers, greedy: bool = False
    ):
        self._rng = rng
        self._layers = layers
        self._greedy = greedy
        self._discrete = "logits" in {layer.name for layer in policy.layers}
        self._read_parameters()
        self._numpy_rng = None  # seeded at the first sync or call: making it draws nothing

    def sync(self) -> None:
        """Reads the policy's current parameters and starts a new random stream."""
        self._read_parameters()
        if not self._greedy:
            self._reseed()

    def _reseed(self) -> None:
        seed = self._rng.make_seeds(1)[:, 0].numpy().astype(np.uint64)  # 2 × 64 bits
        self._numpy_rng = np.random.default_rng(seed)

    def _read_parameters(self) -> None:
        normalizer, image, hidden, head, log_std = self._layers
        self._pixels = self._convolution = None
        if image is not None:
            rescaling, convolution = image
            self._pixels = (np.float32(rescaling.scale), np.float32(rescaling.offset))
            self._convolution = (convolution.kernel.numpy(), convolution.bias.numpy())
        self._shift = self._scale = None
        if normalizer is not None:
            variance = normalizer.adapt_variance.numpy()
            self._shift = normalizer.adapt_mean.numpy()
            self._scale = np.maximum(np.sqrt(variance), np.float32(keras.config.epsilon()))
        self._hidden = [
            (layer.kernel.numpy(), layer.bias.numpy(), activation) for layer, activation in hidden
        ]
        self._head = (head.kernel.numpy(), head.bias.numpy())
        # log σ is the bias of a Dense layer fed zeros: the state-independent vector [D].
        self._std = None if log_std is None else np.exp(log_std.bias.numpy())

    def forward(self, observations: np.ndarray) -> np.ndarray:
        """Observations [B, O] (or frames [B, H, W, C]) → the head's output: logits [B, A] or
        μ [B, D], float32."""
        h = np.array(observations, np.float32)
        if self._pixels is not None:
            h = self._image_features(h)
        if self._shift is not None:
            h -= self._shift
            h /= self._scale
        for kernel, bias, activation in self._hidden:
            h = h @ kernel
            h += bias
            h = activation(h)
        kernel, bias = self._head
        h = h @ kernel
        h += bias
        return h

    def _image_features(self, frames: np.ndarray) -> np.ndarray:
        """Frames [B, H, W, C] float32 → the Flatten of the ReLU 3×3 convolution (valid,
        stride 1) of the rescaled frames, [B, (H − 2)(W − 2)F]: x ↦ x·scale + offset, then
        for each position the [9C] patch (row, column, channel order, as Keras's kernel
        [3, 3, C, F] is laid out) times the kernel reshaped [9C, F], plus the bias."""
        scale, offset = self._pixels
        frames *= scale
        frames += offset
        kernel, bias = self._convolution
        rows, columns = kernel.shape[:2]
        patches = np.lib.stride_tricks.sliding_window_view(frames, (rows, columns), axis=(1, 2))
        patches = patches.transpose(0, 1, 2, 4, 5, 3)  # [B, H', W', 3, 3, C]
        h = patches.reshape(-1, kernel[..., 0].size) @ kernel.reshape(-1, kernel.shape[-1])
        h += bias
        np.maximum(h, 0.0, out=h)
        return h.reshape(len(frames), -1)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        """Observations [B, O] (or frames [B, H, W, C]) → sampled (or, greedy, the most
        probable) actions [B] int32 or [B, D] float32."""
        out = self.forward(observations)
        if self._greedy:
            return np.argmax(out, axis=-1).astype(np.int32) if self._discrete else out
        if self._numpy_rng is None:
            self._reseed()
        if self._discrete:
            return np.argmax(out + self._numpy_rng.gumbel(size=out.shape), axis=-1).astype(np.int32)
        noise = self._numpy_rng.standard_normal(out.shape, np.float32)
        noise *= self._std
        noise += out  # μ + σ ε, as the Keras model's float32 operations give it
        return noise


def _numpy_layers(policy: keras.Model):
    """(normalisation layer or None, (Rescaling, Conv2D) or None, [(hidden Dense, NumPy
    activation)], head Dense, log σ Dense or None) when `policy` is shaped as `build_policy`
    makes it for flat observations (one chain from the input through float32 Dense layers
    with biases, tanh or ReLU hidden, linear head) or for frames with the "minatar" torso
    (the "pixels" Rescaling, one ReLU 3×3 convolution, Flatten, then that chain); for Box a
    linear "log_std" Dense fed zeros. None for any other model, which then acts through
    TensorFlow."""
    by_name = {layer.name: layer for layer in policy.layers}
    head = by_name.get("logits") or by_name.get("mean")
    log_std = by_name.get("log_std")
    normalizer = by_name.get(NORMALIZER)
    image = _minatar_torso(policy) if len(policy.input_shape) == 4 else None
    if head is None or ("mean" in by_name) != (log_std is not None):
        return None
    if len(policy.input_shape) != 2 and image is None:
        return None
    if normalizer is not None and not (
        type(normalizer) is keras.layers.Normalization
        and normalizer.axis == (-1,)
        and normalizer.input is policy.input
    ):
        return None
    expected = {"observation", "probabilities", "std", NORMALIZER, "logits", "mean", "log_std"}
    if image is not None:
        features = image[2].output
        expected |= {layer.name for layer in image}
        image = image[:2]
    else:
        features = policy.input if normalizer is None else normalizer.output
    hidden = [layer for layer in policy.layers if layer.name not in expected]
    chain = []
    for layer in hidden:
        activation = _ACTIVATIONS.get(layer.activation) if _is_dense(layer) else None
        if activation is None or layer.input is not features:
            return None
        chain.append((layer, activation))
        features = layer.output
    if not (_is_linear_dense(head) and head.input is features):
        return None
    if log_std is not None and not (
        _is_linear_dense(log_std) and _made_by(log_std.input, "ZerosLike")
    ):
        return None
    return normalizer, image, chain, head, log_std


def _minatar_torso(policy: keras.Model):
    """(Rescaling, Conv2D, Flatten) when the frames go through `build_policy`'s "minatar"
    torso: the float32 "pixels" Rescaling of the input, one ReLU 3×3 convolution (valid,
    stride 1, channels last, with a bias), Flatten; else None."""
    layers = policy.layers[1:4]
    if len(layers) < 3 or [type(layer) for layer in layers] != [
        keras.layers.Rescaling,
        keras.layers.Conv2D,
        keras.layers.Flatten,
    ]:
        return None
    rescaling, convolution, flatten = layers
    convolution_ok = (
        convolution.kernel_size == (3, 3)
        and convolution.strides == (1, 1)
        and convolution.padding == "valid"
        and convolution.dilation_rate == (1, 1)
        and convolution.groups == 1
        and convolution.data_format == "channels_last"
        and convolution.use_bias
        and convolution.activation is keras.activations.relu
        and convolution.compute_dtype == "float32"
    )
    chained = (
        rescaling.input is policy.input
        and convolution.input is rescaling.output
        and flatten.input is convolution.output
        and flatten.data_format == "channels_last"
    )
    plain = rescaling.compute_dtype == "float32" and all(
        np.ndim(value) == 0 for value in (rescaling.scale, rescaling.offset)
    )
    return (rescaling, convolution, flatten) if convolution_ok and chained and plain else None


def _is_dense(layer) -> bool:
    """A plain float32 Dense layer with a bias (not quantized, not mixed precision)."""
    return (
        type(layer) is keras.layers.Dense
        and layer.use_bias
        and layer.quantization_mode is None
        and layer.compute_dtype == "float32"
    )


def _is_linear_dense(layer) -> bool:
    return _is_dense(layer) and layer.activation is keras.activations.linear


def _made_by(tensor, operation: str) -> bool:
    """Whether the symbolic `tensor` is the output of a Keras operation of that class."""
    history = getattr(tensor, "_keras_history", None)
    return history is not None and type(history.operation).__name__ == operation
