"""The exact policy gradient, and our REINFORCE estimate of it, on finite MDPs.

Tolerances are statistical: under an unbiased estimate each weight's z-score
(ĝ_i − g_i) / (sd_i / √K) is ≈ N(0, 1); with ≤ 147 weights, P(any |z| > 4.5) < 147 · 6.8e-6
= 1e-3. A bias of 4.5 standard errors or more fails. Seeds are fixed, so each test is
deterministic.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf.agent import Reinforce
from reinforce_tf.exact.gradcheck import (
    UpdateGradients,
    check_gradient,
    compare,
    corridor_problem,
    exact_gradient,
    exact_objective,
    random_problem,
    sample_episodes,
    step_weights,
)
from reinforce_tf.exact.short_corridor import corridor_value
from reinforce_tf.exact.tabular import state_values
from reinforce_tf.optimizers import SGD

Z_BOUND = 4.5


def test_exact_gradient_of_corridor_equals_hand_value():
    # p = 0.3; J(p) = (2p − 4)/(p(1 − p)), dJ/dp = (2p² − 8p + 4)/(p(1 − p))², and
    # dp/dlogit_right = p(1 − p) = −dp/dlogit_left, so dJ/dlogit_right = 1.78/0.21 = 8.47619.
    # Observation [1.0]: kernel and bias get the same gradient, [−8.476, 8.476] each.
    problem = corridor_problem(0.3)
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
    problem = corridor_problem(0.3)
    episodes = sample_episodes(problem.mdp, problem.policy, 4096, seed=0)
    returns = episodes.rewards.sum(axis=0)
    error = (returns.mean() - corridor_value(0.3)) / (returns.std() / math.sqrt(len(returns)))
    assert abs(error) < Z_BOUND


def test_update_gradient_is_what_the_agent_step_applies():
    # One SGD step of Reinforce.update on update k's episodes moves θ by α ĝ_k exactly.
    problem = random_problem(seed=0)
    episodes = sample_episodes(problem.mdp, problem.policy, 8, seed=0)
    weights = step_weights(episodes, problem.gamma)
    estimator = UpdateGradients(problem.policy)
    gradients = estimator(problem.mdp, episodes, weights, batch_episodes=4)
    per_episode = estimator(problem.mdp, episodes, weights, batch_episodes=1)
    valid = episodes.valid[:, :4].T.ravel()  # update 0: episodes 0…3, episode-major
    observations = problem.mdp.observations[episodes.states[:, :4].T.ravel()][valid]
    actions = episodes.actions[:, :4].T.ravel()[valid]
    returns = weights[:, :4].T.ravel()[valid]
    before = np.concatenate([v.numpy().ravel() for v in problem.policy.trainable_variables])
    agent = Reinforce(problem.policy, SGD(learning_rate=0.5))
    agent.update(observations, actions, returns, tf.constant(4.0))
    after = np.concatenate([v.numpy().ravel() for v in problem.policy.trainable_variables])
    np.testing.assert_allclose(after - before, 0.5 * gradients[0], atol=2e-7)
    # A batch's gradient is the mean of its episodes' gradients (the loss is linear in w).
    np.testing.assert_allclose(
        gradients, per_episode.reshape(2, 4, -1).mean(axis=1), rtol=1e-4, atol=1e-7
    )


@pytest.mark.parametrize("problem_maker", [corridor_problem, random_problem])
@pytest.mark.parametrize(
    "batch_episodes, baseline", [(1, "none"), (1, "value"), (8, "none"), (8, "mean")]
)
def test_estimate_is_unbiased(problem_maker, batch_episodes, baseline):
    problem = problem_maker()
    result = check_gradient(
        problem.policy, problem.mdp, problem.gamma, 4096, batch_episodes, baseline, seed=1
    )
    assert result.max_abs_z < Z_BOUND
    # ‖ĝ − g‖² / (tr Cov / K) has mean 1 when unbiased; 16 is far out in its tail.
    assert result.relative_error < 4.0 * result.standard_error
    assert result.cosine > 0.99


def test_omitting_gamma_power_is_detected_as_bias():
    # With γ = 0.9, dropping Sutton & Barto's γ^t factor estimates Σ_t γ^0 … , not ∇J:
    # the check must reject it (else it could not fail).
    problem = random_problem()
    episodes = sample_episodes(problem.mdp, problem.policy, 16384, seed=0)
    unbiased = step_weights(episodes, problem.gamma)
    time_steps = np.arange(len(unbiased))[:, None]
    without_power = unbiased / problem.gamma**time_steps
    estimator = UpdateGradients(problem.policy)
    exact = exact_gradient(problem.policy, problem.mdp, problem.gamma)
    good = compare(exact, estimator(problem.mdp, episodes, unbiased, 1), 1)
    bad = compare(exact, estimator(problem.mdp, episodes, without_power.astype(np.float32), 1), 1)
    assert good.max_abs_z < Z_BOUND
    assert bad.max_abs_z > 2 * Z_BOUND


def test_value_baseline_reduces_variance_on_the_corridor():
    # Same 4096 episodes; the exact v_π(S_t) baseline measured 2.4× less variance at 65536.
    problem = corridor_problem()
    episodes = sample_episodes(problem.mdp, problem.policy, 4096, seed=2)

    def variance(baseline):
        return check_gradient(
            problem.policy, problem.mdp, 1.0, 4096, 1, baseline, seed=2, episodes=episodes
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
