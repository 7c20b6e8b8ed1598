"""Whole-episode collection, on envs whose episodes are known in advance."""

import threading

import gymnasium as gym
import numpy as np
import pytest

from reinforce_tf.policy import build_policy, make_actor
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.rollout import (
    RolloutCollector,
    _episode_sums,
    buffer_bytes,
    collection_rows,
)


class CountingEnv(gym.Env):
    """Observation [t]; reward t + 1 at step t; episodes last 2 to 4 steps (drawn at reset)."""

    observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, self._next_length()
        self.calls = getattr(self, "calls", 0) + 1  # resets and steps, for the stepper's tests
        return np.array([0.0], np.float32), {}

    def _next_length(self) -> int:
        return int(self.np_random.integers(2, 5))

    def step(self, action):
        self.t += 1
        self.calls += 1
        # Alternate the two ways an episode ends: odd lengths terminate, even ones truncate.
        done = self.t == self.length
        terminated, truncated = done and self.length % 2 == 1, done and self.length % 2 == 0
        return np.array([self.t], np.float32), float(self.t), terminated, truncated, {}


# Episode lengths of ScriptedEnv after a reset with seed s (env b of a collector seeded 0).
SCRIPTS = {0: (5, 1, 1), 1: (2, 3, 1), 2: (1, 1, 4, 1)}


class ScriptedEnv(CountingEnv):
    """CountingEnv whose episode lengths are a script: reset with seed s plays
    SCRIPTS[s] in order, then episodes of `length` steps."""

    def __init__(self, length: int = 1):
        self.default_length = length  # of episodes past the script

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.script = iter(SCRIPTS.get(seed, ()))
        return super().reset(seed=seed, options=options)

    def _next_length(self) -> int:
        return next(self.script, self.default_length)


gym.register("tests/Counting-v0", entry_point=CountingEnv)
# The same env with a time limit that never cuts an episode short (they last at most 4).
gym.register("tests/CountingLimited-v0", entry_point=CountingEnv, max_episode_steps=4)
gym.register("tests/Scripted-v0", entry_point=ScriptedEnv)
# Episodes of 100 steps, cut by a time limit of 2.
gym.register(
    "tests/CountingCut-v0",
    entry_point=ScriptedEnv,
    kwargs={"length": 100},
    max_episode_steps=2,
)


def collect(num_envs, episodes, seed=7, env_id="tests/Counting-v0", whole=False, **options):
    """A collector of `env_id` in `num_envs` envs acting at random, and its first rollout;
    `whole`: the vector env behind a wrapper, so every env is stepped each row."""
    env = make_vector_env(env_id, num_envs)
    if whole:
        env = gym.vector.VectorWrapper(env)
    rng = np.random.default_rng(seed)
    collector = RolloutCollector(
        env, lambda obs: rng.integers(0, 2, len(obs)).astype(np.int32), seed
    )
    return collector, collector.collect(episodes, **options)


def episodes_per_env(rollout):
    return (rollout.dones & rollout.valid).sum(axis=0)


def test_envs_take_the_next_episode_as_they_free_up():
    # 6 episodes in 3 envs, seed 0: env b's episodes last SCRIPTS[b] steps in turn.
    #   row:   0  1  2  3  4  5  6  7       (. = step of an episode, E = its last,
    #   env 0: .  .  .  .  E  -  -  -        r = autoreset step, - = idle)
    #   env 1: .  E  r  .  .  E  -  -
    #   env 2: E  r  E  r  .  .  .  E
    # Episodes 0, 1, 2 start in envs 0, 1, 2; env 2 ends at row 0 and takes episode 3 (1
    # step, rows 1–2), env 1 ends at row 1 and takes episode 4 (3 steps, rows 2–5), env 2
    # ends again at row 2 and takes episode 5, the last (4 steps, rows 3–7); env 0 ends
    # episode 0 at row 4 and, none left, idles. Fixed quotas of 2 per env would have had
    # env 0 play 5 + 1 steps and env 1 wait.
    _, rollout = collect(3, 6, seed=0, env_id="tests/Scripted-v0")
    valid = np.array(
        [
            [1, 1, 1, 1, 1, 0, 0, 0],
            [1, 1, 0, 1, 1, 1, 0, 0],
            [1, 0, 1, 0, 1, 1, 1, 1],
        ],
        bool,
    ).T  # [T, B]
    np.testing.assert_array_equal(rollout.valid, valid)
    np.testing.assert_array_equal(episodes_per_env(rollout), [1, 2, 3])
    # Listed by end row, then env: (0, env 2), (1, env 1), (2, env 2), (4, env 0),
    # (5, env 1), (7, env 2); reward t + 1 at step t, so length L returns L(L + 1)/2.
    np.testing.assert_array_equal(rollout.episode_lengths, [1, 2, 1, 5, 3, 4])
    np.testing.assert_array_equal(rollout.episode_returns, [1, 3, 1, 15, 6, 10])
    # 16 counted steps of 8 rows × 3 envs = 24 stepped.
    assert (rollout.num_steps, rollout.valid.size) == (16, 24)
    # The recorded observation is S_t = [t]: each counted step's time index matches it.
    np.testing.assert_array_equal(rollout.observations[valid, 0], rollout.time_steps[valid])
    np.testing.assert_array_equal(rollout.rewards[valid], rollout.time_steps[valid] + 1)


def test_idle_envs_are_not_stepped():
    # Calls (resets and steps) per env in the collection of the test above: env 0 idles at
    # rows 5–7, so 1 reset + 5 steps; env 1 at rows 6–7, so 1 reset + 2 steps, its autoreset
    # at row 2, 3 steps; env 2 plays every row: 1 + 8. The whole vector env calls all 3 envs
    # at all 8 rows.
    collector, _ = collect(3, 6, seed=0, env_id="tests/Scripted-v0")
    assert [copy.unwrapped.calls for copy in collector.env.envs] == [6, 7, 9]
    collector, _ = collect(3, 6, seed=0, env_id="tests/Scripted-v0", whole=True)
    assert [copy.unwrapped.calls for copy in collector.env.unwrapped.envs] == [9, 9, 9]


def test_skipping_idle_envs_leaves_the_collection_as_the_whole_vector_env_plays_it():
    # 11 episodes of random lengths in 3 envs: the same counted steps either way (the idle
    # rows differ: a skipped env repeats its last observation).
    _, rollout = collect(3, 11, seed=5)
    _, whole = collect(3, 11, seed=5, whole=True)
    np.testing.assert_array_equal(rollout.valid, whole.valid)
    valid = rollout.valid
    for name in ("observations", "actions", "rewards", "dones", "time_steps"):
        np.testing.assert_array_equal(
            getattr(rollout, name)[valid], getattr(whole, name)[valid], err_msg=name
        )
    np.testing.assert_array_equal(rollout.episode_returns, whole.episode_returns)
    assert (~valid).any()  # some rows idle, so the comparison covers skipping


def test_envs_beyond_the_episodes_only_idle():
    # 2 episodes in 3 envs: envs 0 and 1 play one each (5 and 2 steps), env 2 none.
    _, rollout = collect(3, 2, seed=0, env_id="tests/Scripted-v0")
    np.testing.assert_array_equal(episodes_per_env(rollout), [1, 1, 0])
    assert not rollout.valid[:, 2].any()
    np.testing.assert_array_equal(rollout.episode_lengths, [2, 5])
    assert rollout.valid.shape == (5, 3)  # the longest episode's rows, nothing after
    _, nothing = collect(2, 0)
    assert nothing.valid.shape == (0, 2) and len(nothing.episode_returns) == 0


def test_every_episode_is_whole_and_no_env_idles_while_episodes_remain():
    # 11 episodes of 2–4 steps in 3 envs.
    _, rollout = collect(3, 11)
    assert len(rollout.episode_returns) == 11 and episodes_per_env(rollout).sum() == 11
    # Reward at step t is t + 1, so an episode of length L returns L(L + 1)/2.
    lengths = rollout.episode_lengths
    assert set(lengths) <= {2, 3, 4}
    np.testing.assert_array_equal(rollout.episode_returns, lengths * (lengths + 1) / 2)
    assert rollout.num_steps == lengths.sum()
    ends = rollout.dones & rollout.valid  # [T, B]
    reset_rows = np.zeros_like(ends)
    reset_rows[1:] = ends[:-1]  # next-step autoreset: the row after an end resets
    assert not (rollout.valid & reset_rows).any()
    # The last episode is handed out at the end row two rows before its first step.
    starts = np.argwhere(rollout.valid & (rollout.time_steps == 0))  # (row, env)
    handed_out = starts[:, 0].max() - 2
    assert (rollout.valid | reset_rows)[: handed_out + 1].all()  # no env idled until then
    for b in range(3):
        # Column b: counted steps t = 0, 1, …, L − 1 per episode, each ending in an end.
        steps = rollout.time_steps[rollout.valid[:, b], b]
        last = ends[rollout.valid[:, b], b]
        np.testing.assert_array_equal(steps[1:], np.where(last[:-1], 0, steps[:-1] + 1))
        assert steps[0] == 0 and last[-1]
    # Envs play different numbers of episodes (fixed quotas would give 4, 4, 3).
    assert len(set(episodes_per_env(rollout))) > 1


def test_later_collections_start_fresh_episodes():
    collector, first = collect(2, 3)
    second = collector.collect(5)
    for rollout in (first, second):
        starts = rollout.valid & (rollout.time_steps == 0)
        np.testing.assert_array_equal(rollout.observations[starts, 0], 0.0)
        assert (rollout.time_steps[0] == 0).all()
    assert (len(first.episode_returns), len(second.episode_returns)) == (3, 5)


def test_same_seed_same_arrays():
    _, first = collect(2, 5, seed=3)
    _, again = collect(2, 5, seed=3)
    for name in first._fields:
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
    _, other = collect(2, 5, seed=4)
    assert not np.array_equal(first.episode_lengths, other.episode_lengths) or not np.array_equal(
        first.actions, other.actions
    )


def test_buffers_are_allocated_once_for_the_longest_collection_the_time_limit_allows():
    collector, first = collect(3, 4, env_id="tests/CountingLimited-v0")
    buffers = collector._buffers
    # 4 episodes of at most 4 steps in 3 envs: ⌊(4 − 1)(4 + 1)/3⌋ + 4 = 9 rows.
    assert buffers.observations.shape == (9, 3, 1)
    arrays = [getattr(buffers, name) for name in buffers._ARRAYS]
    for episodes in (4, 3, 1, 4, 2, 4):
        rollout = collector.collect(episodes)
        assert len(rollout.episode_returns) == episodes
        assert len(rollout.valid) <= 9
    assert collector._buffers is buffers
    assert all(getattr(buffers, name) is array for name, array in zip(buffers._ARRAYS, arrays))
    # Rollouts are copies: later collections do not overwrite an earlier one.
    lengths = first.episode_lengths
    np.testing.assert_array_equal(first.episode_returns, lengths * (lengths + 1) / 2)


def test_the_row_bound_is_reached():
    # 3 episodes cut at L = 2 steps in 2 envs: both first episodes end at row 1, env 0 takes
    # the third (reset row 2, steps 3–4): 5 rows = ⌊(3 − 1)(2 + 1)/2⌋ + 2, the bound.
    assert collection_rows(gym.spec("tests/CountingCut-v0"), 3, 2) == 5
    _, rollout = collect(2, 3, seed=10, env_id="tests/CountingCut-v0")
    assert rollout.valid.shape == (5, 2) and rollout.num_steps == 6
    np.testing.assert_array_equal(rollout.valid[:, 0], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(rollout.valid[:, 1], [1, 1, 0, 0, 0])


def test_buffers_grow_for_envs_without_a_time_limit():
    # 1,200 episodes of 2–4 steps (plus reset steps) in 2 envs need more than 1,024 rows.
    collector, rollout = collect(2, 1200)
    assert len(rollout.valid) > 1024
    assert len(rollout.episode_returns) == 1200
    lengths = rollout.episode_lengths
    np.testing.assert_array_equal(rollout.episode_returns, lengths * (lengths + 1) / 2)
    valid = rollout.valid[:, 0]
    np.testing.assert_array_equal(rollout.observations[valid, 0, 0], rollout.time_steps[valid, 0])
    assert collector._buffers.capacity >= len(rollout.valid)


@pytest.mark.parametrize("num_envs", [1, 5])
def test_cartpole_uses_the_vectorised_implementation(num_envs):
    env = make_vector_env("CartPole-v1", num_envs)
    assert type(env).__name__ == "CartPoleVectorEnv"
    assert env.num_envs == num_envs


def test_a_collection_that_would_pass_the_step_budget_stops_and_is_dropped():
    # The scripted collection counts 16 steps (test above): a budget of 16 fits it exactly;
    # with 15 it stops before its last episode ends, and no partial batch is returned.
    _, whole = collect(3, 6, seed=0, env_id="tests/Scripted-v0")
    assert whole.num_steps == 16
    _, exact = collect(3, 6, seed=0, env_id="tests/Scripted-v0", max_steps=16)
    np.testing.assert_array_equal(exact.valid, whole.valid)
    _, short = collect(3, 6, seed=0, env_id="tests/Scripted-v0", max_steps=15)
    assert short is None


def test_a_collection_stops_at_once_when_asked():
    stop = threading.Event()
    calls = []

    def act(observations):
        calls.append(len(observations))
        if len(calls) == 3:
            stop.set()  # a signal arrives during the third step
        return np.zeros(len(observations), np.int32)

    collector = RolloutCollector(make_vector_env("tests/Counting-v0", 2), act, 0)
    assert collector.collect(2000, stop=stop) is None
    assert len(calls) == 3


def test_collection_rows_are_bounded_by_the_time_limit_and_by_the_budget():
    limited = gym.spec("tests/CountingLimited-v0")  # at most L = 4 steps
    # E <= B: one episode per env, L = 4 rows.
    assert collection_rows(limited, 3, 3) == 4
    # E = 10 in B = 3: ⌊9 · 5/3⌋ + 4 = 19 rows; in B = 1: 10 · 5 − 1 = 49 (the E − 1 reset
    # rows between them).
    assert collection_rows(limited, 10, 3) == 19
    assert collection_rows(limited, 10, 1) == 49
    # A budget of 5 counted steps: 5 + 1 + (10 − 3) = 13 rows, less than 19.
    assert collection_rows(limited, 10, 3, max_steps=5) == 13
    assert collection_rows(limited, 10, 3, max_steps=50) == 19
    # No time limit and no budget: the first 1,024 rows.
    assert collection_rows(gym.spec("tests/Counting-v0"), 3, 3) == 1024
    # float32 observation (1) and action index, float64 reward, two bools, and the int32 time
    # step and float64 return derived from them: 4 + 4 + 8 + 1 + 1 + 4 + 8 = 30 bytes per env.
    space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    assert buffer_bytes(10, 3, space, gym.spaces.Discrete(2)) == 10 * 3 * 30
    # uint8 frames are stored as uint8: 84·84·4 = 28,224 bytes, + 26 → 28,250 per env, a
    # quarter of float32's; bool frames one byte per entry too.
    frames = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    assert buffer_bytes(10, 3, frames, gym.spaces.Discrete(6)) == 10 * 3 * 28_250
    bits = gym.spaces.Box(0, 1, (10, 10, 4), bool)
    assert buffer_bytes(1, 1, bits, gym.spaces.Discrete(3)) == 400 + 26


def test_uint8_frames_are_stored_as_uint8():
    env = gym.vector.SyncVectorEnv([FramesEnv] * 2)
    policy = build_policy(env.single_observation_space, env.single_action_space, ())
    rollout = RolloutCollector(env, make_actor(policy, seed=0), 0).collect(2)
    assert rollout.observations.dtype == np.uint8
    assert rollout.observations.shape[1:] == (2, 3, 3, 1)
    # FramesEnv shows frame t filled with 10·t: step t of each episode stored exactly.
    valid = rollout.valid[:, 0]
    np.testing.assert_array_equal(
        rollout.observations[valid, 0, 0, 0, 0], 10 * rollout.time_steps[valid, 0]
    )


class FramesEnv(gym.Env):
    """3×3×1 uint8 frames of value 10·t; episodes of 3 steps."""

    observation_space = gym.spaces.Box(0, 255, (3, 3, 1), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((3, 3, 1), np.uint8), {}

    def step(self, action):
        self.t += 1
        return np.full((3, 3, 1), 10 * self.t, np.uint8), 1.0, False, self.t == 3, {}


def test_episode_returns_are_summed_per_episode_not_as_differences_of_running_totals():
    # Env 0: an episode with rewards 1e17, 1 (return 1e17 + 1 = 1e17 in float64), then one
    # with 0.1, 0.2: its return is 0.1 + 0.2, whatever came before (a difference of running
    # totals gives 0.0). Env 1: one episode of 5, 7, then an unfinished step (no return).
    # Returns come ordered by end step, then env: env 0's first (t = 1), env 1's (t = 1),
    # env 0's second (t = 3); time steps count within each episode.
    valid = np.array([[1, 1], [1, 1], [1, 1], [1, 0]], bool)
    ends = np.array([[0, 0], [1, 1], [0, 0], [1, 0]], bool)
    rewards = np.array([[1e17, 5.0], [1.0, 7.0], [0.1, 3.0], [0.2, 0.0]])
    time_steps, returns = _episode_sums(valid, ends, rewards)
    assert returns.tolist() == [1e17 + 1.0, 12.0, 0.1 + 0.2]
    assert time_steps.tolist() == [[0, 0], [1, 1], [0, 0], [1, 0]]
