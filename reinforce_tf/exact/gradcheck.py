"""The exact policy gradient of a finite MDP, and our REINFORCE estimate of it.

Shapes: S = states, A = actions, O = observation size, T = longest episode, N = episodes,
K = updates (batches of B episodes, N = K·B), P = number of policy weights.

Exact: with π[s, a] = π(a | observations[s], θ) from the Keras policy,

    J(θ) = μ₀ᵀ (I − γ P_π)⁻¹ r_π          (see `reinforce_tf.exact.tabular`)

is computed by `tf.linalg.solve` under a `tf.GradientTape`, which gives ∇_θ J exactly.

Estimate: play N episodes with the policy's own sampler (`make_actor`), weight step t by
w_t = γ^t (G_t − b_t), and take, for each update of B episodes, the gradient of minus the
agent's loss, −∇ [reinforce_loss(agent.log_prob(S, A), w) / B]: the very gradient
`Reinforce.update` hands to `minimize`. The policy-gradient theorem says its expectation is
∇J for any baseline b_t that does not depend on A_t, …, the end of the episode.
"""

import math
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.agent import Reinforce, reinforce_loss
from reinforce_tf.errors import InputError
from reinforce_tf.exact.short_corridor import corridor_mdp
from reinforce_tf.exact.tabular import TabularEnv, TabularMDP, random_mdp, state_values
from reinforce_tf.optimizers import SGD
from reinforce_tf.policy import build_policy, distribution_model, make_actor
from reinforce_tf.returns import discounted_returns, gamma_powers, loss_weights

BASELINES = ("none", "mean", "value")


def action_probabilities(policy: keras.Model, mdp: TabularMDP) -> tf.Tensor:
    """π[s, a] = softmax(logits(observations[s]))_a; [S, A] float64, differentiable in θ."""
    logits = distribution_model(policy)(tf.constant(mdp.observations))
    return tf.cast(tf.nn.softmax(logits), tf.float64)


def exact_objective(policy: keras.Model, mdp: TabularMDP, gamma: float) -> tf.Tensor:
    """J(θ) = μ₀ᵀ (I − γ P_π)⁻¹ r_π by a linear solve in float64 (scalar)."""
    probabilities = action_probabilities(policy, mdp)  # [S, A]
    p_pi = tf.einsum("sa,sat->st", probabilities, mdp.transitions)  # [S, S]
    r_pi = tf.einsum("sa,sa->s", probabilities, mdp.rewards)  # [S]
    identity = tf.eye(mdp.num_states, dtype=tf.float64)
    values = tf.linalg.solve(identity - gamma * p_pi, r_pi[:, None])[:, 0]  # [S]
    return tf.reduce_sum(mdp.initial * values)


def flat(tensors: list[tf.Tensor]) -> np.ndarray:
    """Concatenates gradients of all weights into one float64 vector [P]."""
    return np.concatenate([np.ravel(np.asarray(t, np.float64)) for t in tensors])


def exact_gradient(policy: keras.Model, mdp: TabularMDP, gamma: float) -> np.ndarray:
    """∇_θ J(θ) over `policy.trainable_variables`, flattened; [P] float64."""
    with tf.GradientTape() as tape:
        objective = exact_objective(policy, mdp, gamma)
    return flat(tape.gradient(objective, policy.trainable_variables))


class Episodes(NamedTuple):
    """N episodes, time-major and padded to the longest (T).

    Attributes:
        states: [T, N] int hidden states S_t (0 after the end).
        actions: [T, N] int32 A_t.
        rewards: [T, N] float32 R_{t+1} (0 after the end).
        dones: [T, N] bool, True at each episode's last step.
        valid: [T, N] bool, True at the steps of the episode.
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    valid: np.ndarray


def sample_episodes(
    mdp: TabularMDP, policy: keras.Model, num_episodes: int, seed: int = 0
) -> Episodes:
    """Plays `num_episodes` episodes of `mdp` at once, actions drawn by `make_actor(policy)`.

    The next state is drawn from P[s, a, ·] (or the end) with a NumPy generator seeded
    with `seed`, the same dynamics `TabularEnv` steps one episode at a time.
    """
    rng = np.random.default_rng(seed)
    act = make_actor(policy, seed=seed)
    end = 1.0 - mdp.transitions.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(np.concatenate([mdp.transitions, end], axis=-1), axis=-1)
    state = rng.choice(mdp.num_states, size=num_episodes, p=mdp.initial)
    running = np.ones(num_episodes, bool)
    columns = {name: [] for name in Episodes._fields}
    while running.any():
        action = act(mdp.observations[state])
        outcome = (rng.random(num_episodes)[:, None] > cumulative[state, action]).sum(axis=1)
        ended = running & (outcome >= mdp.num_states)
        columns["states"].append(state)
        columns["actions"].append(action)
        columns["rewards"].append(np.where(running, mdp.rewards[state, action], 0.0))
        columns["dones"].append(ended)
        columns["valid"].append(running)
        running = running & ~ended
        state = np.where(running, np.minimum(outcome, mdp.num_states - 1), 0)
    return Episodes(
        states=np.stack(columns["states"]),
        actions=np.stack(columns["actions"]).astype(np.int32),
        rewards=np.stack(columns["rewards"]).astype(np.float32),
        dones=np.stack(columns["dones"]),
        valid=np.stack(columns["valid"]),
    )


def step_weights(
    episodes: Episodes,
    gamma: float,
    baseline: str = "none",
    batch_episodes: int = 1,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """w_t = γ^t (G_t − b_t) at valid steps, 0 elsewhere; [T, N] float32.

    γ^t G_t comes from the trainer's `loss_weights` (returns not normalised: standardising
    G over a batch makes the estimate biased, by design). Baselines b_t:
      - "none": 0.
      - "mean": the mean of G_t at the same t over the *other* B − 1 episodes of the update
        (finished ones count as G_t = 0). Leave-one-out: b_t is independent of the episode
        it is subtracted from, so the estimate stays unbiased (the mean including the
        episode itself would bias it by O(1/B)).
      - "value": the exact v_π(S_t) (`values`), the state-value baseline at its ideal.

    Raises:
        InputError: an unknown baseline; "mean" with fewer than 2 episodes per update.
    """
    if baseline not in BASELINES:
        raise InputError(f"must be one of {', '.join(BASELINES)}; got {baseline!r}", "baseline")
    length, count = episodes.valid.shape
    time_steps = np.broadcast_to(np.arange(length)[:, None], (length, count))
    weights = loss_weights(
        episodes.rewards,
        episodes.dones,
        episodes.valid,
        time_steps,
        gamma,
        normalize_returns=False,
    ) * gamma_powers(gamma, time_steps)
    if length and count % batch_episodes:
        raise ValueError(f"{count} episodes do not split into updates of {batch_episodes}")
    if baseline == "none":
        return weights
    if baseline == "value":
        offsets = values[episodes.states]
    else:
        if batch_episodes < 2:
            raise InputError("a leave-one-out mean needs at least 2 episodes per update")
        returns = discounted_returns(episodes.rewards, episodes.dones, gamma)  # [T, N]
        batches = returns.reshape(length, count // batch_episodes, batch_episodes)
        others = batches.sum(axis=-1, keepdims=True) - batches
        offsets = (others / (batch_episodes - 1)).reshape(length, count)
    discount = np.power(gamma, time_steps, dtype=np.float64)
    return np.where(episodes.valid, weights - discount * offsets, 0.0).astype(np.float32)


class UpdateGradients:
    """−∇ of the agent's loss for each update of B consecutive episodes.

    Update k's loss is reinforce_loss(agent.log_prob(S, A), w) / B over its episodes' steps
    (padding steps have w = 0 and add nothing): what `Reinforce.update` minimises.
    `tf.vectorized_map` takes the K gradients in parallel, a chunk of updates at a time,
    in one `tf.function` traced once for all shapes.
    """

    def __init__(self, policy: keras.Model, chunk_steps: int = 1 << 20):
        self.agent = Reinforce(policy, SGD(learning_rate=0.0))
        self.chunk_steps = chunk_steps
        (obs_size,) = policy.input_shape[1:]
        self._gradients = tf.function(
            self._update_gradients,
            input_signature=[
                tf.TensorSpec([None, None, obs_size], tf.float32),
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None, None], tf.float32),
                tf.TensorSpec([], tf.float32),
            ],
        )

    def _update_gradients(self, observations, actions, weights, batch_episodes):
        variables = self.agent.policy.trainable_variables

        def one_update(inputs):
            observations, actions, weights = inputs  # [B·T, O], [B·T], [B·T]
            with tf.GradientTape() as tape:
                log_probs = self.agent.log_prob(observations, actions)
                loss = reinforce_loss(log_probs, weights) / batch_episodes
            return [-gradient for gradient in tape.gradient(loss, variables)]

        per_update = tf.vectorized_map(one_update, (observations, actions, weights))
        return tf.concat([tf.reshape(g, [tf.shape(g)[0], -1]) for g in per_update], axis=1)

    def __call__(
        self, mdp: TabularMDP, episodes: Episodes, weights: np.ndarray, batch_episodes: int
    ) -> np.ndarray:
        """The K = N // B update gradients; [K, P] float64."""
        length, count = weights.shape
        updates = count // batch_episodes
        steps = length * batch_episodes

        def to_updates(array):  # [T, N, ...] → [K, B·T, ...]: update k = episodes kB … kB+B−1
            array = np.swapaxes(array[:, : updates * batch_episodes], 0, 1)
            return array.reshape(updates, steps, *array.shape[2:])

        observations = to_updates(mdp.observations[episodes.states])
        actions = to_updates(episodes.actions)
        weights = to_updates(weights)
        chunk = max(1, self.chunk_steps // steps)
        parts = [
            self._gradients(
                observations[k : k + chunk],
                actions[k : k + chunk],
                weights[k : k + chunk],
                tf.constant(batch_episodes, tf.float32),
            )
            for k in range(0, updates, chunk)
        ]
        return np.concatenate([np.asarray(part, np.float64) for part in parts])


class Comparison(NamedTuple):
    """The estimate ĝ (mean of K update gradients) against the exact g.

    Attributes:
        exact: [P] g = ∇J.
        estimate: [P] ĝ.
        cosine: ĝ·g / (‖ĝ‖ ‖g‖).
        relative_error: ‖ĝ − g‖ / ‖g‖.
        interval: (low, high) 95% interval of the relative error, ± 1.96 times its standard
            deviation over bootstrap resamples of the updates (clipped at 0).
        standard_error: √(tr Cov[g_k] / K) / ‖g‖, the RMS relative error of an unbiased
            estimate from K updates; shrinks as 1/√N.
        max_abs_z: max_i |ĝ_i − g_i| / (sd_i / √K), weights with sd_i > 0.
        episode_variance: tr Cov of one episode's gradient, B · tr Cov[g_k].
        num_episodes: N = K·B.
    """

    exact: np.ndarray
    estimate: np.ndarray
    cosine: float
    relative_error: float
    interval: tuple[float, float]
    standard_error: float
    max_abs_z: float
    episode_variance: float
    num_episodes: int


def compare(
    exact: np.ndarray, gradients: np.ndarray, batch_episodes: int, seed: int = 0
) -> Comparison:
    """Statistics of the K update gradients `gradients` [K, P] against `exact` [P]."""
    updates = len(gradients)
    estimate = gradients.mean(axis=0)
    norm = np.linalg.norm(exact)
    relative_error = float(np.linalg.norm(estimate - exact) / norm)
    cosine = float(estimate @ exact / (np.linalg.norm(estimate) * norm))
    variances = gradients.var(axis=0, ddof=1)  # [P]
    # Bootstrap over at most 256 blocks of consecutive updates (block means are i.i.d. too).
    blocks = np.array_split(gradients, min(updates, 256))
    block_means = np.stack([block.mean(axis=0) for block in blocks])  # [M, P]
    sizes = np.array([len(block) for block in blocks], np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(blocks), (1000, len(blocks)))
    counts = sizes[picks]  # [1000, M]
    resampled = np.einsum("rm,rmp->rp", counts, block_means[picks]) / counts.sum(1)[:, None]
    spread_of_error = np.std(np.linalg.norm(resampled - exact, axis=1) / norm)
    spread = variances > 1e-12 * max(variances.max(), 1e-300)
    z = (estimate - exact)[spread] / np.sqrt(variances[spread] / updates)
    return Comparison(
        exact=exact,
        estimate=estimate,
        cosine=cosine,
        relative_error=relative_error,
        interval=(
            float(max(0.0, relative_error - 1.96 * spread_of_error)),
            float(relative_error + 1.96 * spread_of_error),
        ),
        standard_error=float(np.sqrt(variances.sum() / updates) / norm),
        max_abs_z=float(np.abs(z).max()) if z.size else 0.0,
        episode_variance=float(batch_episodes * variances.sum()),
        num_episodes=updates * batch_episodes,
    )


def check_gradient(
    policy: keras.Model,
    mdp: TabularMDP,
    gamma: float,
    num_episodes: int,
    batch_episodes: int = 1,
    baseline: str = "none",
    seed: int = 0,
    episodes: Episodes | None = None,
    estimator: UpdateGradients | None = None,
) -> Comparison:
    """Samples `num_episodes` episodes (or uses the first of `episodes`) and compares our
    estimate of ∇J from updates of `batch_episodes` episodes with the exact gradient.
    `estimator` (for `policy`) reuses one compiled gradient function across calls.

    Raises:
        InputError: fewer than 2 updates, or a bad baseline.
    """
    if batch_episodes < 1 or num_episodes < 2 * batch_episodes:
        raise InputError(
            f"needs at least 2 updates of {batch_episodes} >= 1 episodes; got {num_episodes}",
            field="episodes",
        )
    num_episodes -= num_episodes % batch_episodes
    if episodes is None:
        episodes = sample_episodes(mdp, policy, num_episodes, seed)
    episodes = Episodes(*(array[:, :num_episodes] for array in episodes))
    probabilities = action_probabilities(policy, mdp).numpy()
    values = state_values(mdp, probabilities, gamma)
    weights = step_weights(episodes, gamma, baseline, batch_episodes, values)
    gradients = (estimator or UpdateGradients(policy))(mdp, episodes, weights, batch_episodes)
    return compare(exact_gradient(policy, mdp, gamma), gradients, batch_episodes, seed)


class Problem(NamedTuple):
    """A policy on a finite MDP with its discount."""

    name: str
    policy: keras.Model
    mdp: TabularMDP
    gamma: float


def corridor_problem(probability_right: float = 0.3) -> Problem:
    """The short corridor (γ = 1) with a linear softmax policy at π(right) = p.

    The observation is [1.0], so logits = kernel + bias; kernel [[0, ln(p/(1−p))]] and a
    zero bias give π(right) = p. ∇J then has the closed form dv/dp · p(1 − p) =
    (2p² − 8p + 4) / (p(1 − p)) along logit(right) (8.476 at p = 0.3).
    """
    mdp = corridor_mdp()
    env = TabularEnv(mdp)
    policy = build_policy(env.observation_space, env.action_space, hidden_sizes=())
    logit = math.log(probability_right / (1.0 - probability_right))
    policy.get_layer("logits").set_weights(
        [np.array([[0.0, logit]], np.float32), np.zeros(2, np.float32)]
    )
    return Problem("short corridor", policy, mdp, 1.0)


def random_problem(seed: int = 0) -> Problem:
    """A random 5-state, 3-action MDP (γ = 0.9) and a tanh MLP policy (16 units) as
    `build_policy` initialises it with `seed`.
    """
    mdp = random_mdp(num_states=5, num_actions=3, seed=seed)
    env = TabularEnv(mdp)
    policy = build_policy(env.observation_space, env.action_space, hidden_sizes=(16,), seed=seed)
    return Problem("random MDP (5 states, 3 actions)", policy, mdp, 0.9)
