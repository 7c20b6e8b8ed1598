"""Many independent REINFORCE runs on the short corridor at once (Sutton & Barto Figs. 13.1, 13.2).

Shapes: R = runs, T = steps of the longest episode in an episode round.

Sutton & Barto's agent on the corridor is a linear softmax on two action features,
x(s, right) = [1, 0], x(s, left) = [0, 1] (the state is invisible): one logit per action,
π(right) = softmax(θ)_right. R runs of it are one Keras model whose input is the run's one-hot
index e_r and whose kernel [R, 2] holds run r's θ in row r: logits = e_r · kernel. The loss
summed over runs has gradient zero in every row but the run's own, so one SGD `minimize` on
it is R independent SGD steps. The state-value baseline v̂(s, w) = w (constant features) is a
second such model, kernel [R, 1]. A run whose episode has ended feeds the zero vector: its
logits, value and gradients are 0, so SGD leaves its row unchanged.

Each episode round: every run plays one episode with its θ (θ only changes after the
episode, so the actions can be drawn up front; the corridor's moves come from
`tabular.next_states`, like every tabular env's), then for t = 0 … T−1 one `Reinforce.update`
on step t of every run — exactly `Reinforce.update_per_step` (Sutton & Barto's loop, γ = 1),
run by run.
"""

import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.agent import Reinforce
from reinforce_tf.exact.short_corridor import RIGHT, corridor_mdp
from reinforce_tf.exact.tabular import next_states
from reinforce_tf.optimizers import SGD


def run_models(
    num_runs: int, *, initial_probability: float = 0.05
) -> tuple[keras.Model, keras.Model]:
    """The policy (logits layer [R, 2], no bias) and value (kernel [R, 1], w = 0) of R runs.

    Every run starts at θ = [0, ln(p/(1 − p))], i.e. π(right) = `initial_probability`.
    """
    observation = keras.Input((num_runs,), name="observation")
    logits = keras.layers.Dense(2, use_bias=False, name="logits")(observation)
    policy = keras.Model(observation, keras.layers.Softmax(name="probabilities")(logits))
    logit = math.log(initial_probability / (1.0 - initial_probability))
    policy.get_layer("logits").set_weights([np.tile([[0.0, logit]], (num_runs, 1))])
    value = keras.Model(
        observation,
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="value")(
            observation
        ),
    )
    return policy, value


class CorridorRuns:
    """R independent runs of REINFORCE (with a learned baseline if `baseline_step_size`).

    Args:
        num_runs: R.
        step_size: α (α_θ) of the policy's SGD.
        baseline_step_size: α_w of the value's SGD, or None for no baseline.
        initial_probability: π(right) of every run at the start.
        seed: seeds the action draws. The corridor's moves are deterministic, but
            `next_states` draws a uniform per run and step anyway: from a generator of
            their own, so the action draws (and the curves) do not depend on them.
        max_steps: episodes are truncated after this many steps (G_t then sums the rewards
            received, as for any time limit). The softmax in float32 rounds π(right) to
            exactly 1 once θ_right − θ_left > ~17, and then s₀ ⇄ s₁ never ends; a large α
            can get a run there (`truncated` counts such episodes).
    """

    def __init__(
        self,
        num_runs: int,
        step_size: float,
        *,
        baseline_step_size: float | None = None,
        initial_probability: float = 0.05,
        seed: int = 0,
        max_steps: int = 1000,
    ):
        self.num_runs = num_runs
        self.max_steps = max_steps
        self.truncated = 0
        self.policy, value = run_models(num_runs, initial_probability=initial_probability)
        with_value = baseline_step_size is not None
        self.agent = Reinforce(
            self.policy,
            SGD(learning_rate=step_size),
            value=value if with_value else None,
            value_optimizer=SGD(learning_rate=baseline_step_size) if with_value else None,
        )
        self._rng = np.random.default_rng(seed)
        self._mdp = corridor_mdp()
        self._dynamics_rng = np.random.default_rng([seed, 1])
        self._learn = tf.function(
            self._learn_episode,
            input_signature=[
                tf.TensorSpec([None, num_runs], tf.float32),
                tf.TensorSpec([None, num_runs], tf.int32),
                tf.TensorSpec([None, num_runs], tf.float32),
            ],
        )

    def probabilities_right(self) -> np.ndarray:
        """[R] each run's π(right)."""
        return self.policy(np.eye(self.num_runs, dtype=np.float32)).numpy()[:, RIGHT]

    def play(self) -> tuple[np.ndarray, np.ndarray]:
        """One episode per run with its current π.

        Returns:
            actions [T, R] int32 and valid [T, R] bool (step t belongs to run r's episode).
        """
        probability = self.probabilities_right()
        goal = self._mdp.num_states  # next_states' outcome for the end of the episode
        state = np.zeros(self.num_runs, np.int64)
        running = np.ones(self.num_runs, bool)
        actions, valid = [], []
        while running.any() and len(actions) < self.max_steps:
            action = (self._rng.random(self.num_runs) < probability).astype(np.int32)
            actions.append(action)
            valid.append(running.copy())
            moved = next_states(self._mdp, np.minimum(state, goal - 1), action, self._dynamics_rng)
            state = np.where(running, moved, state)
            running &= state < goal
        self.truncated += int(running.sum())
        return np.stack(actions), np.stack(valid)

    def _learn_episode(self, valid, actions, returns):
        eye = tf.eye(self.num_runs)
        for t in tf.range(tf.shape(returns)[0]):
            observations = eye * valid[t][:, None]  # [R, R]: e_r, or 0 once run r has ended
            self.agent.update(observations, actions[t], returns[t], tf.constant(1.0))

    def learn(self, actions: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Sutton & Barto's per-step updates on one episode per run (γ = 1, reward −1).

        G_t = −(T_r − t) for t < T_r, run r's episode length T_r.

        Returns:
            [R] each episode's return −T_r.
        """
        lengths = valid.sum(axis=0)  # [R]
        returns = np.where(valid, np.arange(len(valid))[:, None] - lengths, 0.0)  # [T, R]
        self._learn(valid.astype(np.float32), actions, returns.astype(np.float32))
        return -lengths.astype(np.float64)

    def run(
        self, num_episodes: int, *, progress: Callable[[int, np.ndarray], None] | None = None
    ) -> np.ndarray:
        """Plays and learns `num_episodes` episodes per run.

        Args:
            progress: called after each episode with its index and [R] returns.

        Returns:
            [num_episodes, R] the return of each run's episodes.
        """
        returns = np.zeros((num_episodes, self.num_runs))
        for episode in range(num_episodes):
            returns[episode] = self.learn(*self.play())
            if progress is not None:
                progress(episode, returns[episode])
        return returns
