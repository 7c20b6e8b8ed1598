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


def leave_one_out_mean(returns: np.ndarray, dones: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The batch-mean baseline: for each step, the mean G over the *other* episodes' steps.

    b_t = (Σ of G over valid steps of the other episodes) / (their number of steps). Leaving
    the step's own episode out makes b_t independent of A_t (episodes are independent), so
    subtracting it leaves the expected gradient unchanged; a plain batch mean would include
    the step's own return and bias it by O(1/E). A batch of one episode has no others: b = 0.

    Args:
        returns: [T, B] G_t.
        dones, valid: [T, B] bool, as in `loss_weights`.

    Returns:
        [T, B] float32 baselines (0 at invalid steps).
    """
    dones, valid = np.asarray(dones, bool), np.asarray(valid, bool)
    # Episode index within each column: the number of episode ends strictly before t.
    within = np.cumsum(dones, axis=0) - dones  # [T, B]
    episode = within * dones.shape[1] + np.arange(dones.shape[1])  # unique id per episode
    ids, index = np.unique(episode[valid], return_inverse=True)
    sums = np.bincount(index, weights=returns[valid].astype(np.float64), minlength=len(ids))
    counts = np.bincount(index, minlength=len(ids)).astype(np.float64)
    others = counts.sum() - counts
    means = np.divide(sums.sum() - sums, others, out=np.zeros_like(sums), where=others > 0)
    baselines = np.zeros(np.shape(returns), np.float32)
    baselines[valid] = means[index]
    return baselines


def gamma_powers(gamma: float, time_steps: np.ndarray) -> np.ndarray:
    """γ^t for each step, t counted from its episode's start; [T, B] float32."""
    return np.power(gamma, time_steps, dtype=np.float64).astype(np.float32)


def loss_weights(
    rewards: np.ndarray,
    dones: np.ndarray,
    valid: np.ndarray,
    time_steps: np.ndarray,
    gamma: float,
    normalize_returns: bool,
    gamma_power: bool,
    mean_baseline: bool = False,
) -> np.ndarray:
    """The constant multiplying ln π(A_t|S_t) in the loss at each step (before a learned
    baseline, which the agent subtracts).

    w_t = G_t, standardised over the valid steps if `normalize_returns`, minus the
    leave-one-out batch mean of those values if `mean_baseline`, times γ^t (t counted from
    the episode's start) if `gamma_power`. Invalid steps get w = 0.

    Standardising first, then subtracting the baseline: the baseline (and a value network,
    which learns these same numbers) sees returns on one scale whatever the env's rewards.
    Standardising already centres the returns on the batch mean, so a mean baseline on top
    of it changes little; use it with `normalize_returns=False` for the unbiased version.

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
        weights = weights - leave_one_out_mean(weights, dones, valid)
    if gamma_power:
        weights = weights * gamma_powers(gamma, time_steps)
    return np.where(valid, weights, 0.0).astype(np.float32)
