"""The exact policy gradient, and our REINFORCE estimate of it, on finite MDPs.

Tolerances are statistical: under an unbiased estimate each weight's z-score
(ĝ_i − g_i) / (sd_i / √K) is ≈ N(0, 1); with ≤ 147 weights, P(any |z| > 4.5) < 147 · 6.8e-6
= 1e-3. A bias of 4.5 standard errors or more fails. Seeds are fixed, so each test is
deterministic.
"""

import math

import numpy as np
import pytest

from reinforce_tf.agent import Reinforce
from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError
from reinforce_tf.exact.gradcheck import (
    Episodes,
    UpdateGradients,
    check_gradient,
    compare,
    corridor_problem,
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
    problem = corridor_problem(probability_right=0.3)
    episodes = sample_episodes(problem.mdp, problem.policy, 4096, seed=0)
    returns = episodes.rewards.sum(axis=0)
    error = (returns.mean() - corridor_value(0.3)) / (returns.std() / math.sqrt(len(returns)))
    assert abs(error) < Z_BOUND


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


def _rollout_of(mdp, episodes, columns):
    """The trainer's Rollout of episodes[columns], each in its own env from t = 0."""
    valid = episodes.valid[:, columns]
    return Rollout(
        observations=mdp.observations[episodes.states[:, columns]],
        actions=episodes.actions[:, columns],
        rewards=episodes.rewards[:, columns],
        dones=episodes.dones[:, columns],
        valid=valid,
        time_steps=np.tile(np.arange(len(valid), dtype=np.int32)[:, None], (1, valid.shape[1])),
        episode_returns=episodes.rewards[:, columns].sum(axis=0).astype(np.float64),
        episode_lengths=valid.sum(axis=0),
    )


@pytest.mark.parametrize("baseline", ["none", "mean"])
def test_update_gradient_is_what_the_agent_step_applies(baseline):
    # One SGD step of the trainer's update_from_rollout (Reinforce.update on the weights,
    # mean baseline and γ^t the trainer computes from update 0's Rollout, built here by
    # hand, with the config written out here) moves θ by α ĝ_0 exactly.
    problem = random_problem(seed=0)
    episodes = sample_episodes(problem.mdp, problem.policy, 8, seed=0)
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
    update_from_rollout(agent, _rollout_of(problem.mdp, episodes, slice(0, 4)), config)
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
    problem = problem_maker()
    result = check_gradient(
        problem.policy,
        problem.mdp,
        problem.gamma,
        4096,
        batch_episodes=batch_episodes,
        baseline=baseline,
        seed=1,
    )
    assert result.max_abs_z < Z_BOUND
    # ‖ĝ − g‖² / (tr Cov / K) has mean 1 when unbiased; 16 is far out in its tail.
    assert result.relative_error < 4.0 * result.standard_error
    assert result.cosine > 0.99


def test_omitting_gamma_power_is_detected_as_bias():
    # With γ = 0.9, dropping Sutton & Barto's γ^t factor (the trainer's --gamma_power=false:
    # γ^t = 1 in policy_loss) estimates E[Σ_t G_t ∇ln π(A_t|S_t)], not ∇J = E[Σ_t γ^t G_t …]:
    # the check must reject it (else it could not fail).
    problem = random_problem()
    episodes = sample_episodes(problem.mdp, problem.policy, 16384, seed=0)
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
    # Same 4096 episodes; the exact v_π(S_t) baseline measured 2.4× less variance at 65536.
    problem = corridor_problem()
    episodes = sample_episodes(problem.mdp, problem.policy, 4096, seed=2)

    def variance(baseline):
        return check_gradient(
            problem.policy, problem.mdp, 1.0, 4096, baseline=baseline, seed=2, episodes=episodes
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
