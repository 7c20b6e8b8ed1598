"""--workers: rollouts on Ray actors merge into the update the learner takes, N = 1 is the
single-process run, a fixed N repeats and resumes bit for bit, a dead worker is replaced
without losing or doubling an episode; --vectorization=async plays the sync episodes."""

import logging
import os
import re
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import ray
import ray_envs
from conftest import REPO, outputs_in_plain_keras
from test_run_folder import start_train, wait_for_checkpoint

from reinforce_tf import TrainConfig, TrainingError, load_policy, train
from reinforce_tf.training import workers
from reinforce_tf.training.episode_log import read_episodes
from reinforce_tf.training.rollout import Rollout
from reinforce_tf.training.workers import merge_rollouts, worker_act_seed

# Every test of this module shares one Ray instance, on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("ray")


def rollout(valid, dones, rewards, returns, lengths, observation_size=1) -> Rollout:
    """A rollout whose observations are its rewards (+ 100) and actions its time steps."""
    valid, dones = np.array(valid, bool), np.array(dones, bool)  # [T, B]
    rewards = np.array(rewards, np.float32)
    time_steps = np.zeros(valid.shape, np.int32)
    for b in range(valid.shape[1]):
        t_in_episode = 0
        for t in range(valid.shape[0]):
            time_steps[t, b] = t_in_episode if valid[t, b] else 0
            t_in_episode = 0 if dones[t, b] else t_in_episode + valid[t, b]
    return Rollout(
        observations=np.repeat((rewards + 100)[..., None], observation_size, axis=2),
        actions=time_steps.copy(),
        rewards=rewards,
        dones=dones,
        valid=valid,
        time_steps=time_steps,
        episode_returns=np.array(returns, np.float64),
        episode_lengths=np.array(lengths, np.int64),
    )


def test_merge_pads_the_shorter_time_axis_and_orders_episodes_by_worker():
    # Worker 0, one env, T = 3: an episode of 2 steps (rewards 1, 2), a reset step, idle.
    # Worker 1, two envs, T = 2: env 0 an episode of 2 steps (3, 4); env 1 one of 1 step (5)
    # then idles.
    first = rollout([[1], [1], [0]], [[0], [1], [0]], [[1], [2], [0]], [3.0], [2])
    second = rollout(
        [[1, 1], [1, 0]], [[0, 1], [1, 0]], [[3, 5], [4, 0]], [5.0, 7.0], [1, 2]
    )  # episodes ordered by end step: env 1's (t = 0) before env 0's (t = 1)
    merged = merge_rollouts([first, second])
    # T = max(3, 2) = 3; B = 1 + 2 = 3; worker 1's row t = 2 is padding.
    assert merged.rewards.shape == (3, 3)
    np.testing.assert_array_equal(merged.rewards, [[1, 3, 5], [2, 4, 0], [0, 0, 0]])
    np.testing.assert_array_equal(merged.valid, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(merged.dones, [[0, 0, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(merged.time_steps, [[0, 0, 0], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(merged.actions, merged.time_steps)
    # Padding observations are 0, not rewards + 100.
    np.testing.assert_array_equal(
        merged.observations[..., 0], [[101, 103, 105], [102, 104, 100], [100, 0, 0]]
    )
    # Episodes: worker 0's (return 3), then worker 1's in its own order (5, then 7).
    np.testing.assert_array_equal(merged.episode_returns, [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(merged.episode_lengths, [2, 1, 2])
    # Counted steps: 2 + 2 + 1 = 5 (the padding counts for nothing).
    assert merged.num_steps == 5
    assert merge_rollouts([first]) is first


def test_worker_0_acts_from_the_run_seed_and_others_from_their_own():
    assert worker_act_seed(7, 0) == 7
    seeds = [worker_act_seed(7, worker) for worker in range(1, 5)]
    assert len(set(seeds)) == 4 and 7 not in seeds
    assert seeds == [worker_act_seed(7, worker) for worker in range(1, 5)]


@pytest.fixture(scope="module")
def kill_file(tmp_path_factory):
    return tmp_path_factory.mktemp("kill") / "kill-a-worker"


@pytest.fixture(scope="module")
def local_ray(kill_file):
    """One Ray instance for the module, which `train` joins (and leaves running). Its workers
    import this checkout (and tests/ray_envs.py, which registers the test envs)."""
    path = [str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env_vars = {
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        ray_envs.KILL_FILE_VARIABLE: str(kill_file),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": os.environ["TF_NUM_INTRAOP_THREADS"],
        "TF_NUM_INTEROP_THREADS": os.environ["TF_NUM_INTEROP_THREADS"],
    }
    ray.init(
        address="local",  # not the cluster of a `ray start` on the machine, if any
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": env_vars, "worker_process_setup_hook": "ray_envs.register"},
    )
    yield
    ray.shutdown()


def run_config(tmp_path, name, **overrides) -> TrainConfig:
    values = {
        "seed": 3,
        "total_steps": 6_000,
        "checkpoint_every": 1_500,
        "target_return": float("inf"),
        "logdir": str(tmp_path / name),
        "save_path": str(tmp_path / f"{name}.keras"),
        **overrides,
    }
    return TrainConfig.for_env(values.pop("env", "CartPole-v1"), **values)


def assert_same_run(folder, other, policy, other_policy):
    got, want = read_episodes(folder / "episodes.csv"), read_episodes(other / "episodes.csv")
    for column in ("episode", "step", "return", "length"):
        np.testing.assert_array_equal(got[column], want[column])
    weights = load_policy(policy).get_weights()
    for got_weight, want_weight in zip(weights, load_policy(other_policy).get_weights()):
        np.testing.assert_array_equal(got_weight, want_weight)


@pytest.mark.usefixtures("local_ray")
def test_two_workers_learn_and_save_a_policy_plain_keras_loads(tmp_path):
    config = run_config(tmp_path, "two", workers=2, total_steps=50_000, checkpoint_every=50_000)
    result = train(config, progress=None)
    returns = result.episode_returns
    # CartPole's random policy lasts about 22 steps; 50,000 steps of updates of 32 episodes
    # (16 per worker) take the mean of the last 100 episodes past 100.
    assert returns[:100].mean() < 40
    assert returns[-100:].mean() > 100, returns[-100:].mean()
    assert result.steps <= 50_000 and len(returns) == result.episodes
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = load_policy(result.save_path)(observations).numpy()
    np.testing.assert_allclose(
        outputs_in_plain_keras(result.save_path, observations, tmp_path), expected, atol=1e-6
    )


@pytest.mark.usefixtures("local_ray")
def test_one_worker_plays_the_single_process_run(tmp_path):
    # Worker 0 acts from the run's seed and resets env b with seed + b, like the trainer's
    # own actor; the checkpoints' reseeds (every 1,500 steps) match too. The observation
    # statistics the learner merges reach the worker with the weights (else its actions,
    # and so the episodes, would differ from the second update on).
    flags = {"total_steps": 4_000, "normalize_observations": True}
    single = train(run_config(tmp_path, "single", **flags), progress=None)
    one = train(run_config(tmp_path, "one", workers=1, **flags), progress=None)
    assert one.episodes == single.episodes > 64  # three updates or more
    assert_same_run(tmp_path / "one", tmp_path / "single", one.save_path, single.save_path)


@pytest.mark.usefixtures("local_ray")
def test_a_fixed_number_of_workers_repeats_and_resumes_after_kill_9(script, tmp_path):
    flags = {"workers": 2, "total_steps": 40_000, "checkpoint_every": 1_500}
    reference = train(run_config(tmp_path, "reference", **flags), progress=None)
    # The same run as a script on this module's Ray instance as a cluster (host:port, as
    # after `ray start --head`), killed (SIGKILL, the learner only) after its first
    # checkpoint.
    address = f"--ray_address={ray.get_runtime_context().gcs_address}"
    run = tmp_path / "run"
    process = start_train(
        tmp_path,
        "--seed=3",
        "--workers=2",
        address,
        "--total_steps=40000",
        "--checkpoint_every=1500",
        "--target_return=inf",
        f"--logdir={run}",
        "--save_path=resumed.keras",
    )
    wait_for_checkpoint(process, run, timeout=180)
    time.sleep(0.1)
    assert process.poll() is None
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    done = script("train.py", "--resume", f"--logdir={run}", address, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # Ray is quiet
    assert "resuming at step" in done.stdout
    # Rows before the checkpoint were played by the killed learner's workers from scratch,
    # the rest by the resumed one's: all equal the uninterrupted run, as do the weights.
    assert_same_run(run, tmp_path / "reference", tmp_path / "resumed.keras", reference.save_path)


class KillAWorker:
    """A progress receiver that makes one worker die (tests/ray_envs.py) after update 2."""

    def __init__(self, kill_file):
        self.kill_file, self.notes, self.updates = kill_file, [], 0

    def start(self, steps, total_steps):
        pass

    def update(self, steps, episodes, mean_return, steps_per_second):
        self.updates += 1
        if self.updates == 2:
            self.kill_file.touch()

    def note(self, text):
        self.notes.append(text)

    def end(self):
        pass


@pytest.mark.usefixtures("local_ray")
def test_a_killed_worker_is_restarted_and_its_share_replayed(tmp_path, kill_file):
    config = run_config(
        tmp_path, "killed", env=ray_envs.KILL_SWITCH_ID, workers=2, total_steps=12_000
    )
    progress = KillAWorker(kill_file)
    result = train(config, progress=progress)
    assert kill_file.with_name(kill_file.name + ".taken").exists()  # a worker was killed
    (death,) = [note for note in progress.notes if "died" in note]
    assert "played again from the start" in death
    # The run went on to its budget: whole updates (16 episodes each), each logged once.
    assert not result.interrupted and result.steps > 9_000
    assert result.episodes == config.batch_episodes * progress.updates
    episodes = read_episodes(tmp_path / "killed" / "episodes.csv")
    np.testing.assert_array_equal(episodes["episode"], np.arange(1, result.episodes + 1))
    np.testing.assert_array_equal(episodes["step"], np.cumsum(episodes["length"]))
    np.testing.assert_array_equal(episodes["return"], result.episode_returns)
    assert episodes["step"][-1] == result.steps


@pytest.mark.usefixtures("local_ray")
def test_an_env_raising_in_a_worker_stops_training_naming_it(tmp_path):
    config = run_config(tmp_path, "exploding", env=ray_envs.EXPLODING_ID, workers=2)
    with pytest.raises(TrainingError) as error:
        train(config, progress=None)
    # Each worker's envs raise after 2,000 of its steps; the first update is played whole.
    assert re.fullmatch(
        r"env 'tests/ExplodingCartPole-v0' raised RuntimeError: simulator exploded while "
        r"playing episodes \d+-\d+ from env step [\d,]+; the last good checkpoint is .*",
        str(error.value),
    ), str(error.value)
    assert not (tmp_path / "exploding.keras").exists()


def test_async_envs_play_the_sync_episodes(tmp_path):
    # Acrobot registers no vectorised implementation: `sync` steps copies seeded seed + i in
    # this process, `async` the same copies in subprocesses.
    flags = {"env": "Acrobot-v1", "num_envs": 4, "batch_episodes": 4, "total_steps": 3_000}
    sync = train(run_config(tmp_path, "sync", **flags), progress=None)
    forked = train(run_config(tmp_path, "async", vectorization="async", **flags), progress=None)
    assert sync.episodes >= 4
    assert_same_run(tmp_path / "async", tmp_path / "sync", forked.save_path, sync.save_path)


def test_without_ray_workers_are_refused_in_one_line(script, tmp_path, monkeypatch):
    # A `ray` package that fails to import, first on the script's path.
    (tmp_path / "fake" / "ray").mkdir(parents=True)
    (tmp_path / "fake" / "ray" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'ray'\")\n"
    )
    path = [str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, path)))
    (tmp_path / "work").mkdir()
    done = script("train.py", "--workers=2", cwd=tmp_path / "work")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == 'error: --workers: needs Ray: install the extra reinforce_tf[ray] (in the checkout: pip install ".[ray]")'
    )
    assert list((tmp_path / "work").iterdir()) == []  # nothing written


class _UnstartedRay:
    """Stands in for the ray module before `ray.init`: records the environment it sees."""

    def __init__(self):
        self.usage_stats, self.address = "unset", "unset"

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.usage_stats = os.environ.get("RAY_USAGE_STATS_ENABLED")
        self.address = kwargs.get("address")


def test_a_local_ray_instance_reports_no_usage_stats_unless_the_user_asks(monkeypatch):
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    ray = _UnstartedRay()
    assert workers._connect(ray, TrainConfig(workers=2)) is True
    assert ray.usage_stats == "0"
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    ray = _UnstartedRay()
    workers._connect(ray, TrainConfig(workers=2))
    assert ray.usage_stats == "1"


def test_without_an_address_a_new_local_instance_is_started_even_beside_a_cluster():
    # `ray.init()` without an address joins a cluster it finds on the machine (a `ray start
    # --head`, named in /tmp/ray/ray_current_cluster), where asking for CPUs is an error
    # (a traceback, until this asked for "local"); the run's own instance is what the
    # README promises.
    ray = _UnstartedRay()
    workers._connect(ray, TrainConfig(workers=2))
    assert ray.address == "local"


def test_an_address_where_a_service_other_than_ray_listens_is_refused_in_one_line(script, tmp_path):
    # A listening TCP socket that never answers (as the dashboard's port 8265, or any other
    # service, typed for the head's 6379): the kernel accepts the connection, nothing speaks
    # Ray's protocol. Refused within the probe's deadline (CONNECT_TIMEOUT), not after Ray's
    # minutes of retries (the script's timeout fails the test then).
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        try:
            done = script(
                "train.py", "--workers=2", f"--ray_address={address}", cwd=tmp_path, timeout=60
            )
        except subprocess.TimeoutExpired:
            pytest.fail("train.py still waiting for Ray after 60 s")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"error: --ray_address: {address} accepts connections but does not answer as a Ray "
        "cluster (a Ray head's GCS port, 6379 by default; 8265 is its dashboard); start one "
        "with `ray start --head`, or leave --ray_address unset for a local one"
    )
    assert [path.name for path in tmp_path.iterdir()] == []  # nothing written


def test_ray_is_silenced_while_it_starts_for_a_bounded_time_only(tmp_path, monkeypatch):
    # Ray's C++ core writes to file descriptor 2 while `ray.init` connects: hidden for
    # QUIET_START seconds, then shown after a line of ours, as a wait Ray does not bound must
    # not be a silent one.
    log = tmp_path / "stderr"
    saved = os.dup(2)
    with open(log, "wb") as file:
        os.dup2(file.fileno(), 2)
    try:
        monkeypatch.setattr(workers, "QUIET_START", 0.2)
        with workers._ray_quiet():
            os.write(2, b"hidden\n")
            deadline = time.monotonic() + 30
            while not log.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.02)
            os.write(2, b"shown\n")
        os.write(2, b"after\n")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert log.read_text() == (
        "still starting or joining Ray after 0.2 s; its own messages follow\nshown\nafter\n"
    )


@pytest.fixture
def ray_cluster(monkeypatch):
    """A Ray cluster of four nodes on this machine (Ray's `cluster_utils.Cluster`): a head
    without CPUs, so no worker runs where the GCS does, and three nodes of one CPU, for two
    workers and a spare. Its processes take this folder on their PYTHONPATH (for
    tests/ray_envs.py), which the workers inherit."""
    from ray.cluster_utils import Cluster

    path = [str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, path)))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(3):
            cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        # Node by node: `Cluster.shutdown` would also reset this process's own Ray client.
        for node in list(cluster.worker_nodes):
            cluster.remove_node(node, allow_graceful=False)
        cluster.remove_node(cluster.head_node, allow_graceful=False)
        ray._common.utils.reset_ray_address()  # /tmp/ray/ray_current_cluster, which it wrote


def test_a_node_killed_mid_update_has_its_share_played_again_elsewhere(ray_cluster, tmp_path):
    # After the first checkpoint the stall file appears; the first env to see it stops in
    # the middle of its episode and names its node, which the test then kills whole (its
    # raylet and every process on it, as a machine lost). The worker on it is restarted on
    # the spare node and its share of the update played again; the run goes on to its budget.
    run, stall = tmp_path / "run", tmp_path / "stall"
    process = start_train(
        tmp_path,
        f"--env=ray_envs:{ray_envs.STALLING_ID}",
        f'--env_kwargs={{"stall_file": "{stall}"}}',
        "--workers=2",
        f"--ray_address={ray_cluster.address}",
        "--seed=3",
        "--total_steps=1500",
        "--checkpoint_every=300",
        "--target_return=inf",
        "--final_eval_episodes=0",
        f"--logdir={run}",
        "--save_path=policy.keras",
    )
    try:
        wait_for_checkpoint(process, run, timeout=240)
        stall.touch()
        named = stall.with_name("stall.node")
        deadline = time.monotonic() + 60
        while not named.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (node,) = [node for node in ray_cluster.worker_nodes if node.node_id == named.read_text()]
        ray_cluster.remove_node(node, allow_graceful=False)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()  # only if it is still running (the test failed)
    assert process.returncode == 0, err
    (death,) = [line for line in out.splitlines() if "died" in line]
    assert re.fullmatch(
        r"worker [01] \(of 2\) died \(\w+\) playing its 8 episodes from env step [\d,]+; Ray "
        r"restarts it and the share is played again from the start, its envs reseeded",
        death,
    ), death
    died_at = int(death.split("from env step ")[1].split(";")[0].replace(",", ""))
    # Nothing lost or doubled: whole updates of 16 episodes, numbered in order, each step
    # counted once, past the step the node died at and up to the budget.
    episodes = read_episodes(run / "episodes.csv")
    assert len(episodes["episode"]) % 16 == 0
    np.testing.assert_array_equal(episodes["episode"], np.arange(1, len(episodes["episode"]) + 1))
    np.testing.assert_array_equal(episodes["step"], np.cumsum(episodes["length"]))
    assert died_at < episodes["step"][-1] <= 1_500
    assert (tmp_path / "policy.keras").is_file()
