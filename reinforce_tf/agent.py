"""The REINFORCE step (Williams 1992; Sutton & Barto §13.3).

Policy-gradient theorem ⇒ ∇J(θ) = E[G_t ∇ ln π(A_t|S_t, θ)]. An autodiff framework gives
that gradient as the gradient of a surrogate loss in which G_t is a constant:

    L(θ) = −Σ_t G_t ln π(A_t|S_t, θ),     ∇L = −Σ_t G_t ∇ ln π(A_t|S_t, θ),

and `optimizer.minimize(L)` steps against ∇L, i.e. along the estimate of ∇J: minimising the
negative maximises J. Shapes: N = steps in an update, O = observation size, D = action dims.
"""

import keras
import tensorflow as tf

from reinforce_tf.optimizers import Minimize
from reinforce_tf.policy import distribution_model, make_distribution


def reinforce_loss(log_probs: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """L = −Σ_t w_t ln π(A_t|S_t, θ), with the weights w_t (returns G_t) held constant.

    Args:
        log_probs: [N] ln π(A_t|S_t, θ), differentiable in θ.
        weights: [N] w_t; never differentiated (`tf.stop_gradient`).

    Returns:
        Scalar loss.
    """
    return -tf.reduce_sum(tf.stop_gradient(weights) * log_probs)


class Reinforce:
    """Updates a policy by REINFORCE; each update is one (or, per step, T) `minimize` calls.

    `update` and `update_per_step` are `tf.function`s with `reduce_retracing`, so episodes
    of new lengths reuse one trace with an unknown N.
    """

    def __init__(self, policy: keras.Model, optimizer: Minimize):
        self.policy = policy
        self.optimizer = optimizer
        self._parameters = distribution_model(policy)
        optimizer.build(policy.trainable_variables)
        # Compiled here, not by decorating the methods: a decorated method holds only a
        # weak reference to `self`, and `Reinforce(...).update(...)` would lose its agent.
        self.update = tf.function(self._update, reduce_retracing=True)
        self.update_per_step = tf.function(self._update_per_step, reduce_retracing=True)

    def log_prob(self, observations: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """ln π(A_t|S_t, θ) for observations [N, O] and actions [N] or [N, D]; [N]."""
        return make_distribution(self._parameters(observations)).log_prob(actions)

    def _update(
        self,
        observations: tf.Tensor,
        actions: tf.Tensor,
        weights: tf.Tensor,
        num_episodes: tf.Tensor,
    ) -> tf.Tensor:
        """One `minimize` on the steps of `num_episodes` whole episodes.

        L = −(1/E) Σ_t w_t ln π(A_t|S_t, θ): the answer's per-episode minibatch loss,
        averaged over the E episodes (E = 1 is exactly the answer's loss).

        Returns:
            The loss before the step (scalar).
        """
        with tf.GradientTape() as tape:
            loss = reinforce_loss(self.log_prob(observations, actions), weights) / num_episodes
        self.optimizer.minimize(loss, self.policy.trainable_variables, tape=tape)
        return loss

    def _update_per_step(
        self, observations: tf.Tensor, actions: tf.Tensor, weights: tf.Tensor
    ) -> tf.Tensor:
        """Sutton & Barto's loop: for t = 0 … T−1, one `minimize` on −w_t ln π(A_t|S_t, θ).

        θ changes between steps, so step t's gradient is taken at the θ left by step t−1,
        as in the book's pseudo-code (with w_t = γ^t G_t when `gamma_power` is set).

        Returns:
            [T] the loss of each step before its update.
        """
        steps = tf.shape(weights)[0]
        losses = tf.TensorArray(tf.float32, size=steps)
        for t in tf.range(steps):
            with tf.GradientTape() as tape:
                log_prob = self.log_prob(observations[t : t + 1], actions[t : t + 1])
                loss = reinforce_loss(log_prob, weights[t : t + 1])
            self.optimizer.minimize(loss, self.policy.trainable_variables, tape=tape)
            losses = losses.write(t, loss)
        return losses.stack()
