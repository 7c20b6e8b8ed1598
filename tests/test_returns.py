import numpy as np
import pytest

from reinforce_tf.returns import (
    discounted_returns,
    gamma_powers,
    leave_one_out_mean,
    loss_weights,
    normalize,
)


def test_single_episode_matches_hand_values():
    # rewards [1, 1, 1], γ = 0.9: G_2 = 1, G_1 = 1 + 0.9 = 1.9, G_0 = 1 + 0.9·1.9 = 2.71.
    rewards = np.array([[1.0], [1.0], [1.0]])
    dones = np.array([[False], [False], [True]])
    np.testing.assert_allclose(discounted_returns(rewards, dones, 0.9)[:, 0], [2.71, 1.9, 1.0])


def test_boundaries_stop_the_sum_and_columns_are_independent():
    # Column 0 holds two episodes, [1, 2] then [3] (done at t=1 and t=2); γ = 0.5:
    #   G = [1 + 0.5·2, 2, 3] = [2, 2, 3].
    # Column 1: one episode [4, 0, 8] ending at t=2: G = [4 + 0.5·0 + 0.25·8, 0 + 0.5·8, 8]
    #   = [6, 4, 8].
    rewards = np.array([[1.0, 4.0], [2.0, 0.0], [3.0, 8.0]])
    dones = np.array([[False, False], [True, False], [True, True]])
    np.testing.assert_allclose(discounted_returns(rewards, dones, 0.5), [[2, 6], [2, 4], [3, 8]])


def test_truncation_ends_the_return_like_termination():
    # A time limit at t=1 ends the first episode: its G_0 = 1 + 1·1 = 2 (γ = 1), and the
    # next episode's reward 10 is not added.
    rewards = np.array([[1.0], [1.0], [10.0]])
    truncated_at_1 = np.array([[False], [True], [True]])
    np.testing.assert_allclose(discounted_returns(rewards, truncated_at_1, 1.0)[:, 0], [2, 1, 10])


def test_gamma_zero_and_one():
    rewards = np.array([[1.0], [2.0], [3.0]])
    dones = np.array([[False], [False], [True]])
    np.testing.assert_allclose(discounted_returns(rewards, dones, 0.0)[:, 0], [1, 2, 3])
    np.testing.assert_allclose(discounted_returns(rewards, dones, 1.0)[:, 0], [6, 5, 3])


def test_normalize_uses_only_masked_entries():
    # Masked values [1, 3]: mean 2, std 1 → [-1, 1]; the unmasked 100 becomes 0.
    values = np.array([[1.0, 100.0], [3.0, 0.0]])
    mask = np.array([[True, False], [True, False]])
    np.testing.assert_allclose(normalize(values, mask), [[-1, 0], [1, 0]])


@pytest.mark.parametrize("values", [np.array([[5.0]]), np.array([[2.0], [2.0]])])
def test_normalize_of_constant_values_is_zero_not_nan(values):
    result = normalize(values, np.ones_like(values, bool))
    np.testing.assert_array_equal(result, np.zeros_like(values))


def test_loss_weights_gamma_power_and_masking():
    # One episode of 3 steps, γ = 0.5, rewards [1, 1, 1] → G = [1.75, 1.5, 1].
    # γ^t = [1, 0.5, 0.25] → w = [1.75, 0.75, 0.25]; the invalid 4th step gets 0.
    rewards = np.array([[1.0], [1.0], [1.0], [0.0]])
    dones = np.array([[False], [False], [True], [False]])
    valid = np.array([[True], [True], [True], [False]])
    time_steps = np.array([[0], [1], [2], [0]])
    plain = loss_weights(rewards, dones, valid, time_steps, 0.5, normalize_returns=False)
    np.testing.assert_allclose(plain[:, 0], [1.75, 1.5, 1.0, 0.0])
    # γ^t is the agent's factor (Reinforce.policy_loss), applied to these weights.
    weights = plain * gamma_powers(0.5, time_steps)
    np.testing.assert_allclose(weights[:, 0], [1.75, 0.75, 0.25, 0.0])


def test_leave_one_out_mean_averages_the_other_episodes_at_the_same_time_step():
    # Column 0: episode A, G = [2, 4] (t = 0, 1), then episode C, G = [9] (t = 0).
    # Column 1: episode B, G = [1, 3, 5] (t = 0, 1, 2); its 4th step is invalid (G = 50).
    # t = 0: A 2, C 9, B 1 → A's baseline (9 + 1)/2 = 5, C's (2 + 1)/2 = 1.5, B's (2 + 9)/2.
    # t = 1: A 4, B 3 → A's 3, B's 4. t = 2: B alone → 0.
    returns = np.array([[2.0, 1.0], [4.0, 3.0], [9.0, 5.0], [0.0, 50.0]])
    valid = np.array([[True, True], [True, True], [True, True], [False, False]])
    time_steps = np.array([[0, 0], [1, 1], [0, 2], [1, 3]])
    np.testing.assert_allclose(
        leave_one_out_mean(returns, valid, time_steps), [[5, 5.5], [3, 4], [1.5, 0], [0, 0]]
    )


def test_leave_one_out_mean_of_a_single_episode_is_zero():
    returns = np.array([[3.0], [2.0]])
    time_steps = np.array([[0], [1]])
    baselines = leave_one_out_mean(returns, np.ones((2, 1), bool), time_steps)
    np.testing.assert_array_equal(baselines, 0)


def test_mean_baseline_zeroes_the_weights_when_all_episodes_end_alike():
    # Three episodes of three steps, reward −1 each (e.g. all timed out): G_t depends on t
    # only, so G_t − b_t = 0 everywhere, with or without standardising first.
    rewards = -np.ones((3, 3))
    dones = np.array([[False] * 3, [False] * 3, [True] * 3])
    valid = np.ones((3, 3), bool)
    time_steps = np.repeat(np.arange(3)[:, None], 3, axis=1)
    for normalize_returns in (False, True):
        weights = loss_weights(
            rewards,
            dones,
            valid,
            time_steps,
            0.9,
            normalize_returns=normalize_returns,
            mean_baseline=True,
        )
        np.testing.assert_allclose(weights, 0, atol=1e-6)


def test_loss_weights_with_mean_baseline_then_gamma_power():
    # Two episodes in two columns, γ = 0.5: column 0 rewards [1, 1] → G = [1.5, 1];
    # column 1 reward [4] → G = [4]. At t = 0 each sees the other's G_0: A 4, B 1.5; at
    # t = 1 A is alone: 0. w = (G − b) γ^t = [(1.5 − 4)·1, (1 − 0)·0.5] and [4 − 1.5].
    rewards = np.array([[1.0, 4.0], [1.0, 0.0]])
    dones = np.array([[False, True], [True, False]])
    valid = np.array([[True, True], [True, False]])
    time_steps = np.array([[0, 0], [1, 0]])
    weights = loss_weights(
        rewards, dones, valid, time_steps, 0.5, normalize_returns=False, mean_baseline=True
    )
    np.testing.assert_allclose(gamma_powers(0.5, time_steps), [[1, 1], [0.5, 1]])
    np.testing.assert_allclose(weights * gamma_powers(0.5, time_steps), [[-2.5, 2.5], [0.5, 0.0]])
