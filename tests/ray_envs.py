"""Envs for the tests of `--workers`, registered in Ray's worker processes too.

The test module starts Ray with `worker_process_setup_hook="ray_envs.register"` and this
folder on the workers' PYTHONPATH, since an env registered in the test process alone is
unknown to a worker's.
"""

import os
import signal
import time

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

KILL_SWITCH_ID = "tests/KillSwitchCartPole-v0"
# The file whose appearance makes one worker die: the first env to rename it away kills its
# own process with SIGKILL after KILL_AFTER more steps, in the middle of its episode.
KILL_FILE_VARIABLE = "REINFORCE_TF_TEST_KILL_FILE"
KILL_AFTER = 10
EXPLODING_ID = "tests/ExplodingCartPole-v0"
EXPLODE_AFTER = 2_000
STALLING_ID = "tests/StallingCartPole-v0"


class KillSwitchCartPole(CartPoleEnv):
    """CartPole whose process dies (SIGKILL) soon after the kill file appears."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._countdown = None

    def step(self, action):
        path = os.environ.get(KILL_FILE_VARIABLE)
        if self._countdown is None and path and os.path.exists(path):
            try:
                os.rename(path, f"{path}.taken")  # only one env of one worker wins
                self._countdown = KILL_AFTER
            except OSError:
                pass
        if self._countdown is not None:
            self._countdown -= 1
            if self._countdown == 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().step(action)


class ExplodingCartPole(CartPoleEnv):
    """CartPole that raises after EXPLODE_AFTER steps in its process, like a simulator
    crashing inside a worker."""

    steps = 0

    def step(self, action):
        ExplodingCartPole.steps += 1
        if ExplodingCartPole.steps > EXPLODE_AFTER:
            raise RuntimeError("simulator exploded")
        return super().step(action)


class StallingCartPole(CartPoleEnv):
    """CartPole that stops in the middle of an episode, for good, once the file `stall_file`
    appears: the first env to rename it away writes its Ray node's id to `stall_file`.node
    (written, then renamed into place) and never returns from `step`, so the test can kill
    that node while the update waits for its share."""

    def __init__(self, stall_file: str = "", **kwargs):
        super().__init__(**kwargs)
        self._stall_file = stall_file

    def step(self, action):
        path = self._stall_file
        if path and os.path.exists(path):
            try:
                os.rename(path, f"{path}.taken")  # only one env of one worker wins
            except OSError:
                pass
            else:
                import ray

                with open(f"{path}.partial", "w") as file:
                    file.write(ray.get_runtime_context().get_node_id())
                os.rename(f"{path}.partial", f"{path}.node")
                while True:
                    time.sleep(1)
        return super().step(action)


def register() -> None:
    """Registers the envs of this module (once per process)."""
    if KILL_SWITCH_ID not in gym.registry:
        gym.register(
            KILL_SWITCH_ID,
            entry_point=KillSwitchCartPole,
            max_episode_steps=500,
            reward_threshold=475.0,
        )
    if EXPLODING_ID not in gym.registry:
        gym.register(EXPLODING_ID, entry_point=ExplodingCartPole, max_episode_steps=500)
    if STALLING_ID not in gym.registry:
        gym.register(STALLING_ID, entry_point=StallingCartPole, max_episode_steps=500)


register()
