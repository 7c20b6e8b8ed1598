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


def loss_weights(
    rewards: np.ndarray,
    dones: np.ndarray,
    valid: np.ndarray,
    time_steps: np.ndarray,
    gamma: float,
    normalize_returns: bool,
    gamma_power: bool,
) -> np.ndarray:
    """The constant multiplying ln π(A_t|S_t) in the loss at each step.

    w_t = G_t, standardised over the valid steps if `normalize_returns`, times γ^t (t counted
    from the episode's start) if `gamma_power`. Invalid steps get w = 0.

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
    if gamma_power:
        weights = weights * np.power(gamma, time_steps, dtype=np.float64).astype(np.float32)
    return np.where(valid, weights, 0.0).astype(np.float32)
