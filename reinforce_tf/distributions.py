"""The policy's action distributions in pure TensorFlow.

Shapes: B = batch of states, A = number of discrete actions, D = action dimensions.
Each distribution is a NamedTuple of its parameters, so it passes through `tf.function`.
"""

import math
from typing import NamedTuple

import tensorflow as tf

_LOG_2PI = math.log(2.0 * math.pi)


class Categorical(NamedTuple):
    """π(a|s) = softmax(logits)_a over A actions.

    Attributes:
        logits: [B, A] float32 unnormalised log-probabilities.
    """

    logits: tf.Tensor

    def log_prob(self, actions: tf.Tensor) -> tf.Tensor:
        """ln π(a|s) = logits_a − logsumexp(logits), via log-softmax for stability.

        Args:
            actions: [B] integer action indices.

        Returns:
            [B] float32 log-probabilities.
        """
        log_probs = tf.nn.log_softmax(self.logits)  # [B, A]
        return tf.gather(log_probs, tf.cast(actions, tf.int32), axis=1, batch_dims=1)

    def entropy(self) -> tf.Tensor:
        """H = −Σ_a π(a) ln π(a); [B]."""
        log_probs = tf.nn.log_softmax(self.logits)
        return -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)

    def sample(self, rng: tf.random.Generator) -> tf.Tensor:
        """Gumbel-max sampling: argmax_a(logits_a + g_a), g_a ~ Gumbel(0, 1); [B] int32."""
        uniform = rng.uniform(tf.shape(self.logits), minval=1e-20, maxval=1.0)
        gumbel = -tf.math.log(-tf.math.log(uniform))
        return tf.argmax(self.logits + gumbel, axis=-1, output_type=tf.int32)

    def mode(self) -> tf.Tensor:
        """The most probable action; [B] int32."""
        return tf.argmax(self.logits, axis=-1, output_type=tf.int32)

    def kl(self, other: "Categorical") -> tf.Tensor:
        """KL(π ‖ π') = Σ_a π(a) (ln π(a) − ln π'(a)) against `other` π'; [B]."""
        log_probs = tf.nn.log_softmax(self.logits)
        difference = log_probs - tf.nn.log_softmax(other.logits)
        return tf.reduce_sum(tf.exp(log_probs) * difference, axis=-1)


class DiagGaussian(NamedTuple):
    """π(a|s) = Π_d N(a_d; μ_d(s), σ_d²), σ = exp(log_std).

    Attributes:
        mean: [B, D] float32 μ.
        log_std: [B, D] (or broadcastable) float32 ln σ.
    """

    mean: tf.Tensor
    log_std: tf.Tensor

    def log_prob(self, actions: tf.Tensor) -> tf.Tensor:
        """ln π(a|s) = Σ_d [−½((a_d − μ_d)/σ_d)² − ln σ_d − ½ ln 2π].

        Args:
            actions: [B, D] float actions as sampled, before any clipping to bounds.

        Returns:
            [B] float32 log-densities.
        """
        z = (tf.cast(actions, tf.float32) - self.mean) * tf.exp(-self.log_std)
        log_density = -0.5 * tf.square(z) - self.log_std - 0.5 * _LOG_2PI
        return tf.reduce_sum(log_density, axis=-1)

    def entropy(self) -> tf.Tensor:
        """H = Σ_d [ln σ_d + ½ ln(2πe)]; [B]."""
        log_std = tf.broadcast_to(self.log_std, tf.shape(self.mean))
        return tf.reduce_sum(log_std + 0.5 * (_LOG_2PI + 1.0), axis=-1)

    def sample(self, rng: tf.random.Generator) -> tf.Tensor:
        """a = μ + σ ε, ε ~ N(0, I); [B, D] float32."""
        return self.mean + tf.exp(self.log_std) * rng.normal(tf.shape(self.mean))

    def mode(self) -> tf.Tensor:
        """The mean μ; [B, D] float32."""
        return self.mean

    def kl(self, other: "DiagGaussian") -> tf.Tensor:
        """KL(N(μ, σ²) ‖ N(μ', σ'²)) = Σ_d [ln σ'_d − ln σ_d + (σ_d² + (μ_d − μ'_d)²) / (2σ'_d²)
        − ½] against `other`; [B]."""
        log_ratio = other.log_std - self.log_std
        squared = tf.exp(2.0 * self.log_std) + tf.square(self.mean - other.mean)
        return tf.reduce_sum(log_ratio + 0.5 * squared * tf.exp(-2.0 * other.log_std) - 0.5, -1)


def log_one_minus_tanh_squared(u: tf.Tensor) -> tf.Tensor:
    """ln(1 − tanh²(u)) = 2 (ln 2 − u − softplus(−2u)), exact and finite for any real u.

    (1 − tanh² u = 4 / (eᵘ + e⁻ᵘ)² = 4 e⁻²ᵘ / (1 + e⁻²ᵘ)²; the direct form gives ln 0 = −inf
    once tanh(u) rounds to ±1, at |u| ≳ 9 in float32.)
    """
    return 2.0 * (math.log(2.0) - u - tf.math.softplus(-2.0 * u))


class TanhDiagGaussian(NamedTuple):
    """A Box action a = c + h ⊙ tanh(u), u ~ N(μ(s), σ²) the pre-squash diagonal Gaussian.

    c = (high + low)/2 and h = (high − low)/2 put a in the Box's bounds. a ↔ u is one to one,
    so, by the change of variables,

        ln π(a|s) = ln N(u; μ, σ²) − Σ_d ln(h_d (1 − tanh²(u_d))).

    Actions in and out are the pre-squash u (what the rollout stores): the correction does
    not depend on θ, so ∇_θ ln π(a|s) = ∇_θ ln N(u; μ, σ²) exactly. The env gets a
    (`training.envs.to_env_actions`).

    Attributes:
        gaussian: the pre-squash `DiagGaussian` of u.
        half_range: [D] float32 h.
    """

    gaussian: DiagGaussian
    half_range: tf.Tensor

    def log_prob(self, actions: tf.Tensor) -> tf.Tensor:
        """ln π(a|s) of the squashed actions a, given their pre-squash u.

        Args:
            actions: [B, D] float pre-squash samples u.

        Returns:
            [B] float32 log-densities of a = c + h ⊙ tanh(u).
        """
        u = tf.cast(actions, tf.float32)
        log_jacobian = log_one_minus_tanh_squared(u) + tf.math.log(self.half_range)  # [B, D]
        return self.gaussian.log_prob(u) - tf.reduce_sum(log_jacobian, axis=-1)

    def entropy(self) -> tf.Tensor:
        """H of the pre-squash Gaussian, Σ_d [ln σ_d + ½ ln(2πe)]; [B]. (The squashed
        distribution's entropy has no closed form; this is what the entropy bonus uses.)"""
        return self.gaussian.entropy()

    def sample(self, rng: tf.random.Generator) -> tf.Tensor:
        """Pre-squash u = μ + σ ε, ε ~ N(0, I); [B, D] float32."""
        return self.gaussian.sample(rng)

    def mode(self) -> tf.Tensor:
        """The pre-squash mean μ; [B, D] float32 (its squash is the greedy action)."""
        return self.gaussian.mode()

    def kl(self, other: "TanhDiagGaussian") -> tf.Tensor:
        """KL of the squashed distributions against `other` (same bounds); [B]. The squash is
        one to one and the same for both, so this is the pre-squash Gaussians' KL exactly."""
        return self.gaussian.kl(other.gaussian)
