"""The exact policy gradient of a finite MDP, and the trainer's REINFORCE estimate of it.

Shapes: S = states, A = actions, O = observation size, T = longest episode, N = episodes,
B = episodes per update, K = updates (N = K·B), M = B·T steps of an update (padded),
P = number of policy weights.

Exact: with π[s, a] = π(a | observations[s], θ) from the Keras policy,

    J(θ) = μ₀ᵀ (I − γ P_π)⁻¹ r_π          (see `reinforce_tf.exact.tabular`)

is computed by `tf.linalg.solve` under a `tf.GradientTape`, which gives ∇_θ J exactly.

Estimate: play N episodes through the trainer's own `RolloutCollector`, with the trainer's
own sampler (`acting.training_actor`: NumPy for these MLP policies), on a Gymnasium vector env of `TabularEnv` copies (the MDP's
dynamics, `tabular.next_states`): collections of E episodes in fewer envs than E, so each
env takes the next episode as it frees up and envs play different numbers of them. What
the check averages is therefore the collector's selection of episodes. Split them into K
updates of B episodes (a batch update is one collection, E = B). Each update goes through
the trainer's own code: its episodes become the trainer's `Rollout`, the trainer's
`learner.rollout_weights` and `learner.rollout_gamma_powers` (with the `TrainConfig` of
`train_config`) give δ_t = G_t − b_t and γ^t, and the update's gradient is

    ĝ_k = −∇_θ L,   L(θ) = −(1/B) Σ_t γ^t δ_t ln π(A_t|S_t, θ)   (`Reinforce.policy_loss`),

the very gradient `Reinforce.update` hands to `minimize`. The policy-gradient theorem says
E[ĝ_k] = ∇J for any baseline b_t that does not depend on A_t, …, the end of the episode.
Baselines (`reinforce_tf.config.BASELINES`):
  - "none": b_t = 0.
  - "mean": the trainer's `--baseline=mean` (`returns.leave_one_out_mean`): b_t = the mean
    G_t of the update's other episodes still running at t, 0 if none is.
  - "value": b_t = v_π(S_t), exact: the learned baseline v̂(S_t, w) at its ideal, subtracted
    here where `Reinforce.update` would subtract v̂.
"""

import math
from typing import NamedTuple

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.agent import Reinforce
from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError
from reinforce_tf.exact.short_corridor import corridor_mdp
from reinforce_tf.exact.tabular import TabularEnv, TabularMDP, random_mdp, state_values
from reinforce_tf.optimizers import SGD
from reinforce_tf.policy import build_policy, distribution_model
from reinforce_tf.training.acting import training_actor
from reinforce_tf.training.learner import rollout_gamma_powers, rollout_weights
from reinforce_tf.training.rollout import Rollout, RolloutCollector

# `TrainConfig` wants an env id; the check makes no env from it.
CONFIG_ENV = "tabular"
# The sampler's envs, and its episodes per collection when updates are per episode: more
# episodes than envs (and not a multiple), so envs play different numbers of episodes.
SAMPLER_ENVS = 5
COLLECTION_EPISODES = 16


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


class _StateLog(gym.Wrapper):
    """Records the hidden state behind each observation its `TabularEnv` returns."""

    def __init__(self, env: TabularEnv):
        super().__init__(env)
        self.states: list[int] = []

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.states.append(info["state"])
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.states.append(info["state"])
        return observation, reward, terminated, truncated, info


class EpisodeSampler:
    """Plays episodes of `mdp` with `policy` the way the trainer does: `RolloutCollector`
    with the trainer's actor (`training_actor`, seeded with `seed`) on a `SyncVectorEnv` of
    `num_envs` `TabularEnv` copies (next-step autoreset; env b seeded seed + b), which also
    record their hidden states.
    """

    def __init__(
        self, mdp: TabularMDP, policy: keras.Model, *, num_envs: int = SAMPLER_ENVS, seed: int = 0
    ):
        self.env = gym.vector.SyncVectorEnv(
            [lambda: _StateLog(TabularEnv(mdp)) for _ in range(num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        )
        actor = training_actor(policy, tf.random.Generator.from_seed(seed))
        self.collector = RolloutCollector(self.env, actor, seed)

    def collect(self, num_episodes: int) -> tuple[Rollout, np.ndarray]:
        """One collection of `num_episodes` episodes (`RolloutCollector.collect`).

        Returns:
            The trainer's `Rollout` [T, B] and the hidden states S_t behind its
            observations, [T, B] int (meaningful at its valid steps).
        """
        for log in self.env.envs:
            log.states.clear()
        rollout = self.collector.collect(num_episodes)
        steps = len(rollout.valid)
        # Each env's log: the state after the collection's reset, then after each row until
        # the env idles (idle envs are not stepped: their logs are padded with their last
        # state), so row t's observation S_t is the log's entry t.
        states = np.stack(
            [(log.states + log.states[-1:] * steps)[:steps] for log in self.env.envs], axis=1
        )  # [T, B]
        return rollout, states.reshape(steps, self.env.num_envs)

    def close(self) -> None:
        self.env.close()


def episodes_of(rollout: Rollout, states: np.ndarray) -> Episodes:
    """The rollout's episodes one per column, in its order (by end step, then env), each
    from t = 0; `states` [T, B] are the hidden states behind its observations."""
    ends = rollout.dones  # [T, B], True only at counted steps
    # Each counted step's episode: the j-th of its env (j = ends before it in the column) ...
    in_column = np.cumsum(ends, axis=0) - ends  # [T, B]
    end_rows, end_envs = np.nonzero(ends)  # row-major: the rollout's episode order
    number = np.zeros((in_column.max(initial=0) + 1, ends.shape[1]), np.int64)
    number[in_column[end_rows, end_envs], end_envs] = np.arange(len(end_rows))
    # ... and its place in the rollout's order, k; its step within the episode, t.
    rows, envs = np.nonzero(rollout.valid)
    k = number[in_column[rows, envs], envs]
    t = rollout.time_steps[rows, envs]
    shape = (int(rollout.episode_lengths.max(initial=0)), len(end_rows))  # [T, N]
    episodes = Episodes(
        states=np.zeros(shape, np.int64),
        actions=np.zeros(shape, np.int32),
        rewards=np.zeros(shape, np.float32),
        dones=np.zeros(shape, bool),
        valid=np.zeros(shape, bool),
    )
    episodes.states[t, k] = states[rows, envs]
    episodes.actions[t, k] = rollout.actions[rows, envs]
    episodes.rewards[t, k] = rollout.rewards[rows, envs]
    episodes.dones[t, k] = ends[rows, envs]
    episodes.valid[t, k] = True
    return episodes


def concatenate(parts: list[Episodes]) -> Episodes:
    """Episodes side by side, in order, padded to the longest."""
    length = max((part.valid.shape[0] for part in parts), default=0)

    def padded(array):
        return np.pad(array, [(0, length - len(array)), (0, 0)])

    return Episodes(
        *(np.concatenate([padded(a) for a in arrays], axis=1) for arrays in zip(*parts))
    )


def sample_episodes(
    mdp: TabularMDP,
    policy: keras.Model,
    num_episodes: int,
    *,
    seed: int = 0,
    num_envs: int = SAMPLER_ENVS,
    collection_episodes: int = COLLECTION_EPISODES,
) -> Episodes:
    """Plays ⌊`num_episodes` / E⌋ collections of E = `collection_episodes` episodes through
    the trainer's collector (`EpisodeSampler`) and lists their episodes one per column,
    collection by collection, each in its rollout's order.

    Only whole collections: keeping a prefix of one (its first episodes to end) would
    favour short episodes.
    """
    sampler = EpisodeSampler(mdp, policy, num_envs=num_envs, seed=seed)
    try:
        parts = [
            episodes_of(*sampler.collect(collection_episodes))
            for _ in range(num_episodes // collection_episodes)
        ]
    finally:
        sampler.close()
    return concatenate(parts)


def train_config(gamma: float, *, batch_episodes: int = 1, baseline: str = "none") -> TrainConfig:
    """The trainer's config whose estimate is checked.

    One update per episode (B = 1) or per batch of `batch_episodes`; returns not standardised
    (standardising by batch statistics biases the estimate, a deliberate trade); γ^t on
    (without it the estimate is of E[Σ_t G_t ∇ln π(A_t|S_t)], not ∇J, when γ < 1). With
    baseline "value" the trainer's `rollout_weights` are the plain G_t: its learned v̂(S_t, w)
    is subtracted later, inside `Reinforce.update`.

    Raises:
        InputError: from `TrainConfig`: a baseline not in `reinforce_tf.config.BASELINES`,
            or "mean" with B < 2.
    """
    return TrainConfig(
        env=CONFIG_ENV,
        gamma=gamma,
        update="episode" if batch_episodes == 1 else "batch",
        batch_episodes=batch_episodes,
        normalize_returns=False,
        gamma_power=True,
        baseline=baseline,
    )


def to_rollout(mdp: TabularMDP, episodes: Episodes) -> Rollout:
    """The episodes as the trainer's time-major `Rollout`: episode b in column (env) b from t = 0.

    Episode returns and lengths are listed by the step they ended at, then by column, as
    `RolloutCollector` lists them.
    """
    length, count = episodes.valid.shape
    time_steps = np.tile(np.arange(length, dtype=np.int32)[:, None], (1, count))  # [T, B]
    returns_so_far = np.cumsum(episodes.rewards, axis=0, dtype=np.float64)  # [T, B]
    return Rollout(
        observations=mdp.observations[episodes.states],  # [T, B, O]
        actions=episodes.actions,
        rewards=episodes.rewards,
        dones=episodes.dones,
        valid=episodes.valid,
        time_steps=time_steps,
        episode_returns=returns_so_far[episodes.dones],
        episode_lengths=time_steps[episodes.dones].astype(np.int64) + 1,
    )


class UpdateInputs(NamedTuple):
    """The arguments of `Reinforce.policy_loss` for K updates of B episodes each.

    Update k holds episodes kB … kB+B−1, episode-major, each padded to T steps (M = B·T).

    Attributes:
        observations: [K, M, O] float32 S_t.
        actions: [K, M] int32 A_t.
        advantages: [K, M] float32 δ_t = G_t − b_t; 0 at padding steps, which so add nothing.
        gamma_powers: [K, M] float32 γ^t.
        num_episodes: B, the loss's E.
    """

    observations: np.ndarray
    actions: np.ndarray
    advantages: np.ndarray
    gamma_powers: np.ndarray
    num_episodes: int


def update_inputs(
    mdp: TabularMDP,
    episodes: Episodes,
    gamma: float,
    *,
    batch_episodes: int = 1,
    baseline: str = "none",
    values: np.ndarray | None = None,
) -> UpdateInputs:
    """What the trainer feeds `Reinforce.policy_loss` for each update of B episodes.

    Update k's episodes, cut to the longest of them, become a `Rollout` (`to_rollout`), and
    the trainer's `rollout_weights` and `rollout_gamma_powers` under
    `train_config(gamma, batch_episodes=B, baseline=baseline)` give G_t (minus
    `returns.leave_one_out_mean` for "mean") and γ^t: what `learner.update_from_rollout`
    computes for that update. "value" subtracts the exact v_π(S_t) from G_t.

    Args:
        episodes: N = K·B episodes.
        values: [S] v_π, for "value".

    Raises:
        InputError: a bad baseline (as `train_config`).
        ValueError: N not a multiple of B; "value" without `values`.
    """
    config = train_config(gamma, batch_episodes=batch_episodes, baseline=baseline)
    length, count = episodes.valid.shape
    if count % batch_episodes:
        raise ValueError(f"{count} episodes do not split into updates of {batch_episodes}")
    if baseline == "value" and values is None:
        raise ValueError('baseline "value" needs the exact state values `values`')
    advantages = np.zeros((length, count), np.float32)  # [T, N]
    powers = np.zeros((length, count), np.float32)  # [T, N]
    lengths = episodes.valid.sum(axis=0)  # [N]
    for start in range(0, count, batch_episodes):
        columns = slice(start, start + batch_episodes)
        steps = int(lengths[columns].max())
        rollout = to_rollout(mdp, Episodes(*(array[:steps, columns] for array in episodes)))
        advantages[:steps, columns] = rollout_weights(rollout, config)
        powers[:steps, columns] = rollout_gamma_powers(rollout, config)
    if baseline == "value":
        advantages = np.where(episodes.valid, advantages - values[episodes.states], 0.0)
    updates = count // batch_episodes

    def to_updates(array):  # [T, N, ...] → [K, B·T, ...]: update k = episodes kB … kB+B−1
        array = np.swapaxes(array, 0, 1)
        return array.reshape(updates, batch_episodes * length, *array.shape[2:])

    return UpdateInputs(
        observations=to_updates(mdp.observations[episodes.states]),
        actions=to_updates(episodes.actions),
        advantages=to_updates(advantages.astype(np.float32)),
        gamma_powers=to_updates(powers),
        num_episodes=batch_episodes,
    )


class UpdateGradients:
    """ĝ_k = −∇ of the agent's `Reinforce.policy_loss` for each update of `UpdateInputs`.

    `tf.vectorized_map` takes the K gradients in parallel, a chunk of updates at a time, in
    one `tf.function` traced once for all shapes. Padding steps have δ = 0 and add nothing.
    """

    def __init__(self, policy: keras.Model, *, chunk_steps: int = 1 << 20):
        self.agent = Reinforce(policy, SGD(learning_rate=0.0))
        self.chunk_steps = chunk_steps
        (obs_size,) = policy.input_shape[1:]
        self._gradients = tf.function(
            self._update_gradients,
            input_signature=[
                tf.TensorSpec([None, None, obs_size], tf.float32),
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None, None], tf.float32),
                tf.TensorSpec([None, None], tf.float32),
                tf.TensorSpec([], tf.float32),
            ],
        )

    def _update_gradients(self, observations, actions, advantages, gamma_powers, num_episodes):
        variables = self.agent.policy.trainable_variables

        def one_update(inputs):
            observations, actions, advantages, gamma_powers = inputs  # [M, O], [M], [M], [M]
            with tf.GradientTape() as tape:
                loss, _, _ = self.agent.policy_loss(
                    observations, actions, advantages, num_episodes, gamma_powers
                )
            return [-gradient for gradient in tape.gradient(loss, variables)]

        per_update = tf.vectorized_map(
            one_update, (observations, actions, advantages, gamma_powers)
        )
        return tf.concat([tf.reshape(g, [tf.shape(g)[0], -1]) for g in per_update], axis=1)

    def __call__(self, inputs: UpdateInputs) -> np.ndarray:
        """The K update gradients; [K, P] float64."""
        updates, steps = inputs.actions.shape
        chunk = max(1, self.chunk_steps // max(steps, 1))
        parts = [
            self._gradients(
                inputs.observations[k : k + chunk],
                inputs.actions[k : k + chunk],
                inputs.advantages[k : k + chunk],
                inputs.gamma_powers[k : k + chunk],
                tf.constant(inputs.num_episodes, tf.float32),
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
    exact: np.ndarray, gradients: np.ndarray, batch_episodes: int, *, seed: int = 0
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


def update_gradients(
    policy: keras.Model,
    mdp: TabularMDP,
    gamma: float,
    episodes: Episodes,
    *,
    batch_episodes: int = 1,
    baseline: str = "none",
    estimator: UpdateGradients | None = None,
) -> np.ndarray:
    """ĝ_k of the updates of B = `batch_episodes` consecutive episodes (the first N − N mod B
    of `episodes`); [K, P] float64. `estimator` (for `policy`) reuses one compiled gradient
    function across calls.

    Raises:
        InputError: a bad baseline.
    """
    count = episodes.valid.shape[1]
    episodes = Episodes(*(array[:, : count - count % batch_episodes] for array in episodes))
    values = state_values(mdp, action_probabilities(policy, mdp).numpy(), gamma)  # [S] v_π
    inputs = update_inputs(
        mdp, episodes, gamma, batch_episodes=batch_episodes, baseline=baseline, values=values
    )
    return (estimator or UpdateGradients(policy))(inputs)


def check_gradient(
    policy: keras.Model,
    mdp: TabularMDP,
    gamma: float,
    num_episodes: int,
    *,
    batch_episodes: int = 1,
    baseline: str = "none",
    seed: int = 0,
    episodes: Episodes | None = None,
    estimator: UpdateGradients | None = None,
) -> Comparison:
    """Samples `num_episodes` episodes through the trainer's collector (`sample_episodes`,
    one collection per update of `batch_episodes` >= 2), or uses the first of `episodes`,
    and compares the trainer's estimate of ∇J from updates of `batch_episodes` episodes with
    the exact gradient.

    Raises:
        InputError: fewer than 2 updates, or a bad baseline.
    """
    if batch_episodes < 1 or num_episodes < 2 * batch_episodes:
        raise InputError(
            f"needs at least 2 updates of {batch_episodes} >= 1 episodes; got {num_episodes}",
            field="episodes",
        )
    train_config(gamma, batch_episodes=batch_episodes, baseline=baseline)  # fail before sampling
    num_episodes -= num_episodes % batch_episodes
    if episodes is None:
        # A batch update is one collection; per-episode updates take collections of
        # COLLECTION_EPISODES (all their episodes, each its own update).
        collection = batch_episodes if batch_episodes > 1 else COLLECTION_EPISODES
        episodes = sample_episodes(
            mdp, policy, num_episodes, seed=seed, collection_episodes=collection
        )
    episodes = Episodes(*(array[:, :num_episodes] for array in episodes))
    gradients = update_gradients(
        policy,
        mdp,
        gamma,
        episodes,
        batch_episodes=batch_episodes,
        baseline=baseline,
        estimator=estimator,
    )
    return compare(exact_gradient(policy, mdp, gamma), gradients, batch_episodes, seed=seed)


class Problem(NamedTuple):
    """A policy on a finite MDP with its discount."""

    name: str
    policy: keras.Model
    mdp: TabularMDP
    gamma: float


def corridor_problem(*, probability_right: float = 0.3) -> Problem:
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


def random_problem(*, seed: int = 0) -> Problem:
    """A random 5-state, 3-action MDP (γ = 0.9) and a tanh MLP policy (16 units) as
    `build_policy` initialises it with `seed`.
    """
    mdp = random_mdp(num_states=5, num_actions=3, seed=seed)
    env = TabularEnv(mdp)
    policy = build_policy(env.observation_space, env.action_space, hidden_sizes=(16,), seed=seed)
    return Problem("random MDP (5 states, 3 actions)", policy, mdp, 0.9)
