"""The REINFORCE step (Williams 1992; Sutton & Barto §13.3), with its optional baseline (§13.4).

Policy-gradient theorem ⇒ ∇J(θ) = E[G_t ∇ ln π(A_t|S_t, θ)]. An autodiff framework gives
that gradient as the gradient of a surrogate loss in which G_t is a constant:

    L(θ) = −Σ_t G_t ln π(A_t|S_t, θ),     ∇L = −Σ_t G_t ∇ ln π(A_t|S_t, θ),

and `optimizer.minimize(L)` steps against ∇L, i.e. along the estimate of ∇J: minimising the
negative maximises J. Shapes: N = steps in an update, O = observation size, D = action dims.

The options, each off by default:
- baseline b_t = v̂(S_t, w), a learned state value: the weight becomes δ_t = G_t − v̂(S_t, w),
  held constant in the policy loss, and w takes a `minimize` step on ½ Σ_t δ_t², whose
  gradient −Σ_t δ_t ∇v̂(S_t, w) is Sutton & Barto's w ← w + α_w δ ∇v̂(S_t, w). A baseline
  that does not depend on A_t leaves E[∇L] unchanged and can shrink its variance.
- entropy bonus: L −= β Σ_t H(π(·|S_t, θ)), which pushes toward exploration.
- clipping: the policy gradient is rescaled to global norm ≤ c before it is applied.
- tanh squashing of Box actions: ln π is the squashed density of the stored pre-squash
  actions (`distributions.TanhDiagGaussian`); its gradient is the Gaussian's.
"""

import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.optimizers import Minimize
from reinforce_tf.policy import distribution_model, make_distribution

Metrics = dict[str, tf.Tensor]


def reinforce_loss(log_probs: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """L = −Σ_t w_t ln π(A_t|S_t, θ), with the weights w_t (returns G_t) held constant.

    Args:
        log_probs: [N] ln π(A_t|S_t, θ), differentiable in θ.
        weights: [N] w_t; never differentiated (`tf.stop_gradient`).

    Returns:
        Scalar loss.
    """
    return -tf.reduce_sum(tf.stop_gradient(weights) * log_probs)


def value_loss(values: tf.Tensor, returns: tf.Tensor) -> tf.Tensor:
    """½ Σ_t (G_t − v̂(S_t, w))², the targets G_t held constant.

    Its gradient is −Σ_t δ_t ∇v̂(S_t, w): one SGD step is Sutton & Barto's w-update.

    Args:
        values: [N] v̂(S_t, w), differentiable in w.
        returns: [N] G_t.

    Returns:
        Scalar loss.
    """
    return 0.5 * tf.reduce_sum(tf.square(tf.stop_gradient(returns) - values))


class Reinforce:
    """Updates a policy (and its value baseline) by REINFORCE.

    Args:
        policy: the Keras policy from `build_policy`.
        optimizer: its optimizer (one with `minimize`).
        value: the state-value network v̂ [N, O] → [N, 1] of the baseline, or None (no
            learned baseline).
        value_optimizer: v̂'s optimizer; given exactly when `value` is.
        entropy_coef: β ≥ 0 of the entropy bonus.
        max_grad_norm: clip the policy gradient to this global norm; None for no clipping.
        squash_half_range: [D] half-ranges (high − low)/2 of a Box whose actions are
            tanh-squashed into its bounds; None for actions as sampled (clipped by the env
            side).

    `update` and `update_per_step` are compiled once, at the first call, for any number of
    steps N (`AnyLengthFunction`), so new lengths never retrace. Both return a dict of metrics:
    "policy_loss" (the REINFORCE term, without the entropy bonus), "entropy" (the mean of
    H(π(·|S_t)) over the steps), "grad_norm" (the policy gradient's global norm before
    clipping) and, with a value baseline, "value_loss".
    """

    def __init__(
        self,
        policy: keras.Model,
        optimizer: Minimize,
        *,
        value: keras.Model | None = None,
        value_optimizer: Minimize | None = None,
        entropy_coef: float = 0.0,
        max_grad_norm: float | None = None,
        squash_half_range: np.ndarray | None = None,
    ):
        if (value is None) != (value_optimizer is None):
            raise ValueError("`value` and `value_optimizer` go together: give both or neither")
        self.policy = policy
        self.optimizer = optimizer
        self.value = value
        self.value_optimizer = value_optimizer
        self.entropy_coef = float(entropy_coef)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self._parameters = distribution_model(policy)
        self._half_range = (
            None if squash_half_range is None else tf.constant(squash_half_range, tf.float32)
        )
        optimizer.build(policy.trainable_variables)
        if value is not None:
            value_optimizer.build(value.trainable_variables)
        # Compiled here, not by decorating the methods: a decorated method holds only a
        # weak reference to `self`, and `Reinforce(...).update(...)` would lose its agent.
        # `_update` has no tensor-dependent Python control flow: skipping AutoGraph's source
        # conversion halves its tracing time. The per-step loop needs AutoGraph.
        self.update = AnyLengthFunction(self._update, autograph=False)
        self.update_per_step = AnyLengthFunction(self._update_per_step)

    def log_prob(self, observations: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """ln π(A_t|S_t, θ) for observations [N, O] and actions [N] or [N, D]; [N]."""
        return self.distribution(observations).log_prob(actions)

    def distribution(self, observations: tf.Tensor):
        """π(·|S_t, θ) for observations [N, O]: Categorical, DiagGaussian or TanhDiagGaussian."""
        return make_distribution(self._parameters(observations), self._half_range)

    def state_value(self, observations: tf.Tensor) -> tf.Tensor:
        """v̂(S_t, w) for observations [N, O]; [N]."""
        return self.value(observations)[:, 0]

    def policy_loss(
        self,
        observations: tf.Tensor,
        actions: tf.Tensor,
        advantages: tf.Tensor,
        num_episodes: tf.Tensor,
        gamma_powers: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The policy's loss on the steps of E whole episodes, differentiable in θ:

            L(θ) = −(1/E) Σ_t γ^t δ_t ln π(A_t|S_t, θ) − β (1/E) Σ_t H(π(·|S_t, θ)).

        The one place where Sutton & Barto's γ^t multiplies the weights: the trainer, the
        gradient check and the benchmark all reach the loss through here.

        Args:
            observations: [N] + observation shape, S_t.
            actions: [N] or [N, D] A_t.
            advantages: [N] δ_t = G_t − b_t, held constant.
            num_episodes: scalar float E.
            gamma_powers: [N] γ^t, or None for 1.

        Returns:
            (L, the REINFORCE term alone, [N] the entropies H(π(·|S_t))).
        """
        weights = advantages if gamma_powers is None else gamma_powers * advantages
        distribution = self.distribution(observations)
        reinforce = reinforce_loss(distribution.log_prob(actions), weights) / num_episodes
        entropy = distribution.entropy()  # [N]
        loss = reinforce - self.entropy_coef * tf.reduce_sum(entropy) / num_episodes
        return loss, reinforce, entropy

    def _update(
        self,
        observations: tf.Tensor,
        actions: tf.Tensor,
        returns: tf.Tensor,
        num_episodes: tf.Tensor,
        gamma_powers: tf.Tensor | None = None,
    ) -> Metrics:
        """One policy `minimize` (and one value `minimize`) on the steps of whole episodes.

        With E = `num_episodes`, b_t = v̂(S_t, w) (or 0 without a value network) and
        δ_t = G_t − b_t:
            policy:  L(θ) = −(1/E) Σ_t γ^t δ_t ln π(A_t|S_t, θ) − β (1/E) Σ_t H(π(·|S_t, θ))
            value:   L(w) = (1/E) ½ Σ_t δ_t²
        E = 1 is exactly the per-episode loss; both losses average over episodes alike.
        δ_t is computed once, with w before its step, as in Sutton & Barto's pseudo-code.

        Args:
            observations: [N, O] S_t.
            actions: [N] or [N, D] A_t.
            returns: [N] G_t (as given: possibly standardised or minus a mean baseline by
                the caller); the value network's target.
            num_episodes: scalar float E.
            gamma_powers: [N] γ^t (Sutton & Barto's factor), or None for 1.

        Returns:
            Scalar metrics, each measured before the step.
        """
        metrics = {}
        if self.value is not None:
            with tf.GradientTape() as value_tape:
                values = self.state_value(observations)  # [N]
                metrics["value_loss"] = value_loss(values, returns) / num_episodes
            advantages = returns - values  # δ_t, with w before the step
            self.value_optimizer.minimize(
                metrics["value_loss"], self.value.trainable_variables, tape=value_tape
            )
        else:
            advantages = returns
        with tf.GradientTape() as tape:
            loss, policy_loss, entropy = self.policy_loss(
                observations, actions, advantages, num_episodes, gamma_powers
            )
        theta = self.policy.trainable_variables  # θ ← θ − α ∇L, ∇L clipped if asked
        grad_norm = self.optimizer.minimize(loss, theta, tape=tape, clip_norm=self.max_grad_norm)
        metrics.update(
            policy_loss=policy_loss, entropy=tf.reduce_mean(entropy), grad_norm=grad_norm
        )
        return metrics

    def _update_per_step(
        self,
        observations: tf.Tensor,
        actions: tf.Tensor,
        returns: tf.Tensor,
        gamma_powers: tf.Tensor | None = None,
    ) -> Metrics:
        """Sutton & Barto's loop: for t = 0 … T−1, one `minimize` per network on step t.

        θ (and w) change between steps, so step t's gradient is taken at the parameters
        left by step t−1, as in the book's pseudo-code: δ = G_t − v̂(S_t, w);
        w ← w + α_w δ ∇v̂(S_t, w); θ ← θ + α γ^t δ ∇ln π(A_t|S_t, θ) (+ the entropy term).

        Args:
            as `update`, for one episode of T steps.

        Returns:
            Per-step metrics, each a [T] tensor: step t's values before its update.
        """
        steps = tf.shape(returns)[0]
        names = ["policy_loss", "entropy", "grad_norm"]
        if self.value is not None:
            names.append("value_loss")
        series = {name: tf.TensorArray(tf.float32, size=steps) for name in names}
        for t in tf.range(steps):
            step = self._update(
                observations[t : t + 1],
                actions[t : t + 1],
                returns[t : t + 1],
                tf.constant(1.0),
                None if gamma_powers is None else gamma_powers[t : t + 1],
            )
            series = {name: series[name].write(t, step[name]) for name in names}
        return {name: values.stack() for name, values in series.items()}


class AnyLengthFunction:
    """A `tf.function` traced once, at its first call, for inputs of any leading length N.

    Tensor (or array) arguments of shape [N, ...] are traced as [None, ...]; scalars, None
    and Python values as given. Left to `reduce_retracing`, the function would trace twice
    (for the first call's N, then for N = None), and tracing an update is a sizeable part of
    a short run (docs/benchmarks.md).
    """

    def __init__(self, python_function, *, autograph: bool = True):
        self.function = tf.function(python_function, reduce_retracing=True, autograph=autograph)

    def __call__(self, *args):
        if self.function.experimental_get_tracing_count() == 0:
            self.function.get_concrete_function(*map(_any_length_spec, args))
        return self.function(*args)

    def experimental_get_tracing_count(self) -> int:
        """How many times the function was traced (as `tf.function`'s method)."""
        return self.function.experimental_get_tracing_count()


def _any_length_spec(value):
    """A TensorSpec with the leading dimension unknown for a tensor or array of rank ≥ 1."""
    if not isinstance(value, (tf.Tensor, np.ndarray)) or len(value.shape) == 0:
        return value
    return tf.TensorSpec([None, *value.shape[1:]], tf.as_dtype(value.dtype))
