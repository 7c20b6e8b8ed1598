"""Steps the copies of a vector env that play a collection's episodes, and no others.

Shapes: B = copies (envs) of the vector env.

Once a collection has handed out all its episodes (rollout.py), a copy that ends one idles
until the last ends, and Gymnasium's vector envs step every copy, idle or not. At 64 copies
for 64 episodes, two of every three copy-steps of MinAtar Asterix and Space Invaders were
idle (docs/benchmarks.md). A `SyncVectorEnv` steps its copies one by one in Python anyway:
here they are stepped the same way (next-step autoreset: the step after an episode's end
resets the copy, with reward 0 and no end), the playing ones only. An idle copy keeps its
last observation and is reset by the next collection's `reset`, so the copies that play
give exactly the steps the whole vector env would give them. Any other vector env (an env's
own vectorised implementation, as CartPole's, whose one NumPy step costs about the same for
all copies; `AsyncVectorEnv`, whose copies step in parallel) is stepped whole.
"""

import gymnasium as gym
import numpy as np


class PlayingStepper:
    """`reset` and `step` of a next-step autoreset vector env, skipping idle copies."""

    def __init__(self, env: gym.vector.VectorEnv):
        self.env = env
        # Exactly Gymnasium's class: a subclass or a wrapper may step otherwise.
        self._copies = env.envs if type(env) is gym.vector.SyncVectorEnv else None
        if self._copies is not None:
            space = env.single_observation_space
            self._observations = np.zeros((env.num_envs, *space.shape), space.dtype)
            self._autoreset = np.zeros(env.num_envs, bool)  # [B] the next step resets

    def reset(self, seed: int | None) -> np.ndarray:
        """[B, ...] first observations; copy b is seeded with seed + b (None: unseeded)."""
        if self._copies is None:
            return self.env.reset(seed=seed)[0]
        for b, copy in enumerate(self._copies):
            self._observations[b], _ = copy.reset(seed=None if seed is None else seed + b)
        self._autoreset[:] = False
        return self._observations.copy()

    def step(self, actions: np.ndarray, playing: np.ndarray):
        """Steps the copies with `playing` [B] True (all of them for a whole vector env).

        Returns:
            (observations [B, ...], rewards [B] float64, terminated [B] bool, truncated [B]
            bool); an idle copy's row repeats its last observation, reward 0, no end.
        """
        if self._copies is None:
            observations, rewards, terminated, truncated, _ = self.env.step(actions)
            return observations, rewards, terminated, truncated
        rewards = np.zeros(len(self._copies))
        terminated = np.zeros(len(self._copies), bool)
        truncated = np.zeros(len(self._copies), bool)
        for b in np.flatnonzero(playing):
            copy = self._copies[b]
            if self._autoreset[b]:
                self._observations[b], _ = copy.reset()
            else:
                self._observations[b], rewards[b], terminated[b], truncated[b], _ = copy.step(
                    actions[b]
                )
        self._autoreset[playing] = (terminated | truncated)[playing]
        return self._observations.copy(), rewards, terminated, truncated
