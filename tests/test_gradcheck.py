"""The exact policy gradient, and our REINFORCE estimate of it, on finite MDPs.

Tolerances are statistical: under an unbiased estimate each weight's z-score
(ĝ_i − g_i) / (sd_i / √K) is ≈ N(0, 1); with ≤ 147 weights, P(any |z| > 4.5) < 147 · 6.8e-6
= 1e-3. A bias of 4.5 standard errors or more fails. Seeds are fixed, so each test is
deterministic.

Episodes come from the trainer's `RolloutCollector` (`gradcheck.sample_episodes`):
collections of 8 or 16 episodes in 5 envs, each env taking the next episode as it frees
up, so the z-scores check the collector's selection of episodes too.
"""

import functools
import math

import numpy as np
import pytest

from reinforce_tf.agent import Reinforce
from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError
from reinforce_tf.exact.gradcheck import (
    SAMPLER_ENVS,
    Episodes,
    EpisodeSampler,
    UpdateGradients,
    check_gradient,
    compare,
    concatenate,
    corridor_problem,
    episodes_of,
    exact_gradient,
    exact_objective,
    random_problem,
    sample_episodes,
    update_gradients,
    update_inputs,
)
from reinforce_tf.exact.short_corridor import corridor_mdp, corridor_value
from reinforce_tf.exact.tabular import state_values
from reinforce_tf.optimizers import SGD
from reinforce_tf.training.learner import update_from_rollout
from reinforce_tf.training.rollout import Rollout

Z_BOUND = 4.5


@functools.cache
def sampled(problem_maker, collection_episodes, count=4096, seed=1):
    """A problem and `count` of its episodes, played in collections of
    `collection_episodes` by the trainer's collector (sampled once per module)."""
    problem = problem_maker()
    return problem, sample_episodes(
        problem.mdp, problem.policy, count, seed=seed, collection_episodes=collection_episodes
    )


def test_exact_gradient_of_corridor_equals_hand_value():
    # p = 0.3; J(p) = (2p − 4)/(p(1 − p)), dJ/dp = (2p² − 8p + 4)/(p(1 − p))², and
    # dp/dlogit_right = p(1 − p) = −dp/dlogit_left, so dJ/dlogit_right = 1.78/0.21 = 8.47619.
    # Observation [1.0]: kernel and bias get the same gradient, [−8.476, 8.476] each.
    problem = corridor_problem(probability_right=0.3)
    objective = exact_objective(problem.policy, problem.mdp, problem.gamma)
    np.testing.assert_allclose(objective, corridor_value(0.3), rtol=1e-6)
    hand = 1.78 / 0.21
    np.testing.assert_allclose(
        exact_gradient(problem.policy, problem.mdp, problem.gamma),
        [-hand, hand, -hand, hand],
        rtol=1e-5,
    )


def test_exact_gradient_of_random_mdp_matches_finite_differences():
    # J from the NumPy solve at θ ± ε along one direction u: (J₊ − J₋)/2ε ≈ ∇J·u.
    problem = random_problem(seed=1)
    gradient = exact_gradient(problem.policy, problem.mdp, problem.gamma)
    variables = problem.policy.trainable_variables
    rng = np.random.default_rng(0)
    directions = [rng.normal(size=v.shape).astype(np.float32) for v in variables]
    original = [v.numpy() for v in variables]

    def objective_at(scale):
        for v, o, d in zip(variables, original, directions, strict=True):
            v.assign(o + scale * d)
        values = state_values(
            problem.mdp,
            np.asarray(problem.policy(problem.mdp.observations), np.float64),
            problem.gamma,
        )
        return float(problem.mdp.initial @ values)

    epsilon = 1e-2
    numeric = (objective_at(epsilon) - objective_at(-epsilon)) / (2 * epsilon)
    objective_at(0.0)
    analytic = gradient @ np.concatenate([d.ravel() for d in directions])
    np.testing.assert_allclose(numeric, analytic, rtol=1e-3)


def test_sampled_returns_match_the_closed_form_value():
    # 4096 corridor episodes at p = 0.3: mean return ≈ v(s0) = −16.19 within 4.5 std errors.
    _, episodes = sampled(corridor_problem, 16)
    returns = episodes.rewards.sum(axis=0)
    error = (returns.mean() - corridor_value(0.3)) / (returns.std() / math.sqrt(len(returns)))
    assert abs(error) < Z_BOUND


def test_episodes_of_a_rollout_are_listed_in_its_order_from_t_0():
    # Two envs, three episodes (states 0–2 and 9 as the reset row's, actions and rewards
    # numbered by row):
    #   row:   0    1    2      3
    #   env 0: A₀   A₁E  reset  C₀E      A: 2 steps, C: 1 step
    #   env 1: B₀   B₁   B₂E    idle     B: 3 steps
    # By end row, then env: A (row 1), B (row 2), C (row 3).
    valid = np.array([[1, 1], [1, 1], [0, 1], [1, 0]], bool)
    dones = np.array([[0, 0], [1, 0], [0, 1], [1, 0]], bool)
    time_steps = np.array([[0, 0], [1, 1], [0, 2], [0, 0]], np.int32)
    numbered = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    rollout = Rollout(
        observations=np.zeros((4, 2, 1), np.float32),
        actions=numbered.astype(np.int32),
        rewards=numbered.astype(np.float32),
        dones=dones,
        valid=valid,
        time_steps=time_steps,
        episode_returns=np.array([4.0, 12.0, 7.0]),
        episode_lengths=np.array([2, 3, 1]),
    )
    states = np.array([[0, 1], [2, 0], [9, 2], [1, 9]])
    episodes = episodes_of(rollout, states)
    np.testing.assert_array_equal(episodes.valid, [[1, 1, 1], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(episodes.dones, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(episodes.rewards, [[1, 2, 7], [3, 4, 0], [0, 6, 0]])
    np.testing.assert_array_equal(episodes.actions, episodes.rewards)
    np.testing.assert_array_equal(episodes.states, [[0, 1, 1], [2, 0, 0], [0, 2, 0]])
    both = concatenate([episodes, Episodes(*(a[:1, :1] for a in episodes))])
    assert both.valid.shape == (3, 4) and not both.valid[1:, 3].any()


def test_the_sampler_plays_the_collectors_episodes():
    # 16 corridor episodes in 5 envs: the collector's own rollout, its episodes listed whole
    # (their rewards sum to the rollout's returns), and envs play different numbers of them.
    problem = corridor_problem()
    sampler = EpisodeSampler(problem.mdp, problem.policy, seed=0)
    rollout, states = sampler.collect(16)
    sampler.close()
    per_env = rollout.dones.sum(axis=0)
    assert per_env.sum() == 16 and len(per_env) == SAMPLER_ENVS and len(set(per_env)) > 1
    episodes = episodes_of(rollout, states)
    np.testing.assert_allclose(episodes.rewards.sum(axis=0), rollout.episode_returns)
    np.testing.assert_array_equal(episodes.valid.sum(axis=0), rollout.episode_lengths)
    # The corridor starts in s₀ and ends from s₂ going right (action 1): hidden states agree.
    assert (episodes.states[0] == 0).all()
    last = episodes.dones
    np.testing.assert_array_equal(episodes.states[last], 2)
    np.testing.assert_array_equal(episodes.actions[last], 1)


def test_mean_baseline_weights_are_the_trainers_by_hand():
    # One update of B = 3 episodes, γ = 0.5 (states and actions do not matter here):
    #   t:          0  1  2        G_t                       b_t (others running at t)
    #   episode 0:  1  1  1   →   1.75, 1.5, 1     b = (2 + 2)/2 = 2, 4 (ep. 2 only), 0 (none)
    #   episode 1:  2         →   2                b = (1.75 + 2)/2 = 1.875
    #   episode 2:  0  4      →   2, 4             b = 1.875, 1.5 (ep. 0 only)
    # δ = G − b: [−0.25, −2.5, 1], [0.125, pad, pad], [0.125, 2.5, pad], episode-major.
    # (The old check's mean, finished episodes as G = 0 over B − 1 = 2, gave −0.5 at ep. 0 t 1.)
    valid = np.array([[1, 1, 1], [1, 0, 1], [1, 0, 0]], bool)  # [T, N]
    rewards = np.array([[1, 2, 0], [1, 0, 4], [1, 0, 0]], np.float32)
    dones = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], bool)
    zeros = np.zeros((3, 3), np.int32)
    episodes = Episodes(zeros, zeros, rewards, dones, valid)
    inputs = update_inputs(corridor_mdp(), episodes, 0.5, batch_episodes=3, baseline="mean")
    assert inputs.advantages.shape == (1, 9) and inputs.num_episodes == 3
    np.testing.assert_allclose(
        inputs.advantages[0], [-0.25, -2.5, 1, 0.125, 0, 0, 0.125, 2.5, 0], atol=1e-6
    )
    # γ^t at each episode's valid steps: 1, 0.5, 0.25.
    np.testing.assert_allclose(inputs.gamma_powers[0][valid.T.ravel()], [1, 0.5, 0.25, 1, 1, 0.5])
    with pytest.raises(InputError, match="baseline"):
        update_inputs(corridor_mdp(), episodes, 0.5, batch_episodes=1, baseline="mean")


@pytest.mark.parametrize("baseline", ["none", "mean"])
def test_update_gradient_is_what_the_agent_step_applies(baseline):
    # One SGD step of the trainer's update_from_rollout on the collector's own Rollout of
    # update 0 (4 episodes in 3 envs, so one env plays two; the trainer computes the mean
    # baseline and γ^t from that layout; config written out here) moves θ by α ĝ_0, the
    # check's gradient of the same episodes laid out one per column.
    problem = random_problem(seed=0)
    sampler = EpisodeSampler(problem.mdp, problem.policy, num_envs=3, seed=0)
    collections = [sampler.collect(4) for _ in range(2)]
    sampler.close()
    first = collections[0][0]
    assert first.dones.sum(axis=0).max() == 2  # an env played two of the episodes
    episodes = concatenate([episodes_of(*collection) for collection in collections])
    lengths = episodes.valid.sum(axis=0)
    # Update 0's episodes end at different steps, so "still running at t" matters: the old
    # check's mean (ended episodes as G = 0) gives other weights.
    assert len(set(lengths[:4])) > 1
    estimator = UpdateGradients(problem.policy)
    gradients = update_gradients(
        problem.policy,
        problem.mdp,
        problem.gamma,
        episodes,
        batch_episodes=4,
        baseline=baseline,
        estimator=estimator,
    )
    config = TrainConfig(
        env="tabular",
        gamma=problem.gamma,
        update="batch",
        batch_episodes=4,
        normalize_returns=False,
        gamma_power=True,
        baseline=baseline,
    )
    variables = problem.policy.trainable_variables
    saved = [v.numpy() for v in variables]
    agent = Reinforce(problem.policy, SGD(learning_rate=0.5))
    update_from_rollout(agent, first, config)
    moved = np.concatenate([(v.numpy() - w).ravel() for v, w in zip(variables, saved, strict=True)])
    np.testing.assert_allclose(moved, 0.5 * gradients[0], atol=2e-7)
    for variable, value in zip(variables, saved, strict=True):
        variable.assign(value)  # back to the θ that played the episodes
    if baseline == "mean":
        # Not vacuous: the baseline changes the gradient by far more than the tolerance.
        plain = update_gradients(
            problem.policy, problem.mdp, problem.gamma, episodes, batch_episodes=4
        )
        assert np.abs(plain[0] - gradients[0]).max() > 1e-4
    else:
        # A batch's gradient is the mean of its episodes' gradients (the loss is linear in w).
        per_episode = update_gradients(
            problem.policy, problem.mdp, problem.gamma, episodes, estimator=estimator
        )
        np.testing.assert_allclose(
            gradients, per_episode.reshape(2, 4, -1).mean(axis=1), rtol=1e-4, atol=1e-7
        )


@pytest.mark.parametrize("problem_maker", [corridor_problem, random_problem])
@pytest.mark.parametrize(
    "batch_episodes, baseline", [(1, "none"), (1, "value"), (8, "none"), (8, "mean")]
)
def test_estimate_is_unbiased(problem_maker, batch_episodes, baseline):
    # Per-episode updates average the episodes of collections of 16; a batch update is one
    # collection of 8 (in 5 envs).
    problem, episodes = sampled(problem_maker, 16 if batch_episodes == 1 else batch_episodes)
    result = check_gradient(
        problem.policy,
        problem.mdp,
        problem.gamma,
        4096,
        batch_episodes=batch_episodes,
        baseline=baseline,
        seed=1,
        episodes=episodes,
    )
    assert result.max_abs_z < Z_BOUND
    # ‖ĝ − g‖² / (tr Cov / K) has mean 1 when unbiased; 16 is far out in its tail.
    assert result.relative_error < 4.0 * result.standard_error
    assert result.cosine > 0.99


@pytest.mark.parametrize("problem_maker", [corridor_problem, random_problem])
def test_keeping_the_first_episodes_to_end_is_detected_as_bias(problem_maker):
    # A collector that starts 16 episodes in 5 envs but keeps only the first 8 to end
    # favours short episodes (mean length 15.8 → 11.3 on the corridor, 6.6 → 4.5 on the
    # random MDP); the check must reject it (measured max|z| 13.2 and 7.7 against the bound
    # 4.5), while the same collections whole pass. Episodes are listed by end step: a
    # collection's first 8 are the first to end.
    problem, episodes = sampled(problem_maker, 16)
    whole = check_gradient(problem.policy, problem.mdp, problem.gamma, 4096, episodes=episodes)
    first_to_end = np.arange(4096).reshape(-1, 16)[:, :8].ravel()  # [2048]
    biased = Episodes(*(array[:, first_to_end] for array in episodes))
    assert biased.valid.sum() < 0.8 * 0.5 * episodes.valid.sum()  # 20% shorter or more
    kept = check_gradient(problem.policy, problem.mdp, problem.gamma, 2048, episodes=biased)
    assert whole.max_abs_z < Z_BOUND
    assert kept.max_abs_z > Z_BOUND


def test_omitting_gamma_power_is_detected_as_bias():
    # With γ = 0.9, dropping Sutton & Barto's γ^t factor (the trainer's --gamma_power=false:
    # γ^t = 1 in policy_loss) estimates E[Σ_t G_t ∇ln π(A_t|S_t)], not ∇J = E[Σ_t γ^t G_t …]:
    # the check must reject it (else it could not fail).
    problem, episodes = sampled(random_problem, 16)
    inputs = update_inputs(problem.mdp, episodes, problem.gamma)
    assert episodes.valid[7].any()  # some episodes reach t = 7, where γ^t = 0.9^7 = 0.48
    estimator = UpdateGradients(problem.policy)
    exact = exact_gradient(problem.policy, problem.mdp, problem.gamma)
    good = compare(exact, estimator(inputs), 1)
    bad = compare(
        exact, estimator(inputs._replace(gamma_powers=np.ones_like(inputs.gamma_powers))), 1
    )
    assert good.max_abs_z < Z_BOUND
    assert bad.max_abs_z > 2 * Z_BOUND


def test_value_baseline_reduces_variance_on_the_corridor():
    # Same 4096 episodes; the exact v_π(S_t) baseline: 2.6× less variance here, 2.3× at 65536.
    problem, episodes = sampled(corridor_problem, 16)

    def variance(baseline):
        return check_gradient(
            problem.policy, problem.mdp, 1.0, 4096, baseline=baseline, episodes=episodes
        ).episode_variance

    assert variance("none") > 1.8 * variance("value")


def test_script_prints_the_comparison(script, tmp_path):
    done = script("gradient_check.py", "--episodes=256", "--batch_episodes=4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "short corridor" in done.stdout and "random MDP" in done.stdout
    assert done.stdout.count("cosine") == 2
    bad = script("gradient_check.py", "--episodes=10", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "--episodes" in bad.stderr and "Traceback" not in bad.stderr
