"""Discounted returns and the per-step weights of the REINFORCE loss.

Arrays are time-major: T = time steps of a rollout, B = envs. A column may hold several
episodes one after another; `dones[t, b]` marks the last step of an episode (terminated
or truncated: REINFORCE never bootstraps, so a time limit ends the return too).
"""

import numpy as np


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Reward-to-go G_t = r_t + γ (1 − done_t) G_{t+1}, with G_T = 0.

    `r_t` is the reward received after the action at step t (Sutton & Barto's R_{t+1}).

    Args:
        rewards: [T, B] float rewards.
        dones: [T, B] bool, True at the last step of an episode.
        gamma: discount γ in [0, 1].

    Returns:
        [T, B] float32 returns; G_t sums only rewards of step t's own episode.
    """
    discounts = gamma * (1.0 - np.asarray(dones, np.float64))  # [T, B]
    returns = np.zeros(np.shape(rewards), np.float64)
    following = np.zeros(returns.shape[1:], np.float64)  # G_{t+1}, [B]
    for t in reversed(range(returns.shape[0])):
        following = rewards[t] + discounts[t] * following
        returns[t] = following
    return returns.astype(np.float32)


def normalize(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(x − mean) / std over the entries where `mask` is True; 0 elsewhere.

    When the masked entries are all equal (one step, say) their std is 0 and every
    result is 0: no NaN, and no direction to push π in.
    """
    if not np.any(mask):
        return np.zeros(np.shape(values), np.float32)
    masked = values[mask]
    centred = np.where(mask, values - masked.mean(), 0.0)
    std = masked.std()
    return (centred / std if std > 0 else np.zeros_like(centred)).astype(np.float32)


def leave_one_out_mean(
    returns: np.ndarray, valid: np.ndarray, time_steps: np.ndarray
) -> np.ndarray:
    """The mean baseline: b_t = the mean G_t of the *other* episodes at the same time step t.

    For a step at time t (counted from its episode's start), the baseline averages G over
    the other episodes of the batch that have a step t. Leaving the step's own episode out
    makes b_t independent of A_t (episodes are independent), so subtracting it leaves the
    expected gradient unchanged; a plain mean would include the step's own return and bias
    it by O(1/E). Taking it per time step removes the part of G_t that depends on t alone:
    when every episode of a batch ends alike (all time out, say), G_t − b_t = 0 at every
    step, where a single batch mean would leave weights that push π at random. A step that
    no other episode reaches has no baseline: b = 0.

    Args:
        returns: [T, B] G_t.
        valid: [T, B] bool, as in `loss_weights`.
        time_steps: [T, B] int, each step's index within its episode.

    Returns:
        [T, B] float32 baselines (0 at invalid steps).
    """
    valid = np.asarray(valid, bool)
    returns = np.asarray(returns, np.float64)
    t = np.where(valid, time_steps, 0)
    # Sum and count of G over the batch's valid steps at each time index.
    length = t.max(initial=0) + 1
    sums = np.bincount(t[valid], weights=returns[valid], minlength=length)
    counts = np.bincount(t[valid], minlength=length)
    others_sum, others = sums[t] - returns, counts[t] - 1  # [T, B]
    baselines = np.divide(others_sum, others, out=np.zeros_like(returns), where=others > 0)
    return np.where(valid, baselines, 0.0).astype(np.float32)


def gamma_powers(gamma: float, time_steps: np.ndarray) -> np.ndarray:
    """γ^t for each step, t counted from its episode's start; [T, B] float32."""
    return np.power(gamma, time_steps, dtype=np.float64).astype(np.float32)


def loss_weights(
    rewards: np.ndarray,
    dones: np.ndarray,
    valid: np.ndarray,
    time_steps: np.ndarray,
    gamma: float,
    *,
    normalize_returns: bool,
    mean_baseline: bool = False,
) -> np.ndarray:
    """The returns as the loss weighs them, before a learned baseline and γ^t (both applied
    by the agent, `Reinforce.policy_loss`).

    w_t = G_t, standardised over the valid steps if `normalize_returns`, minus the mean of
    those values over the other episodes at the same time step if `mean_baseline`
    (`leave_one_out_mean`). Invalid steps get w = 0.

    Standardising first, then subtracting the baseline: the baseline (and a value network,
    which learns these same numbers) sees returns on one scale whatever the env's rewards.
    Standardising centres the returns on the batch mean; the mean baseline on top of it
    still removes their dependence on t. Standardising uses the step's own return, so for
    the strictly unbiased estimator use `normalize_returns=False`.

    Args:
        rewards, dones: [T, B] as in `discounted_returns`.
        valid: [T, B] bool, True at steps of counted episodes.
        time_steps: [T, B] int, each step's index within its episode.

    Returns:
        [T, B] float32 weights.
    """
    weights = discounted_returns(rewards, dones, gamma)
    if normalize_returns:
        weights = normalize(weights, valid)
    if mean_baseline:
        weights = weights - leave_one_out_mean(weights, valid, time_steps)
    return np.where(valid, weights, 0.0).astype(np.float32)
