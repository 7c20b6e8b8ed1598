"""An env whose step waits on I/O, like a remote simulator: `SleepyStep-v0` sleeps
SLEEP_SECONDS per step and does almost nothing else, so a process stepping it is idle most of
the time. Episodes are EPISODE_STEPS long (truncated), reward 1 per step; observations [4],
2 actions.

`benchmarks/scaling.py` measures `--workers` scaling with it beyond the machine's cores. Ray
workers register it through `worker_process_setup_hook="sleepy_env.register"`.
"""

import time

import gymnasium as gym
import numpy as np

ENV_ID = "SleepyStep-v0"
SLEEP_SECONDS = 0.002
EPISODE_STEPS = 50


class SleepyStep(gym.Env):
    """Sleeps SLEEP_SECONDS per step; observations are noise."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._observation(), {}

    def step(self, action):
        time.sleep(SLEEP_SECONDS)
        return self._observation(), 1.0, False, False, {}

    def _observation(self) -> np.ndarray:
        return self.np_random.uniform(-1.0, 1.0, 4).astype(np.float32)


def register() -> None:
    """Registers SleepyStep-v0 (once per process)."""
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=SleepyStep, max_episode_steps=EPISODE_STEPS)


register()
