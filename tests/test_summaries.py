"""TensorBoard event files and episodes.csv of a run, read back."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from reinforce_tf import TrainConfig, evaluate, load_policy, train
from reinforce_tf.training.episode_log import read_episodes, read_evaluations
from reinforce_tf.training.loop import EVAL_SEED_OFFSET
from reinforce_tf.training.saving import load_metadata, save_policy
from reinforce_tf.training.summaries import Summaries


def read_events(folder) -> dict[str, list[tuple[int, np.ndarray]]]:
    """{tag: [(step, value), ...]} from every event file in `folder`."""
    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(
                    (event.step, tf.make_ndarray(value.tensor))
                )
    return scalars


def test_run_writes_grouped_scalars_config_and_csv(tmp_path):
    config = TrainConfig(
        total_steps=3_000,
        baseline="value",
        eval_every=1_000,
        greedy_eval_every=2_000,
        eval_episodes=2,
        logdir=str(tmp_path / "run"),
        save_path=str(tmp_path / "p.keras"),
    )
    result = train(config, progress=None)
    events = read_events(tmp_path / "run")
    assert set(events) == {
        "config",
        "charts/episode_return",
        "charts/episode_length",
        "charts/steps_per_second",
        "charts/eval_sampled_return",
        "charts/eval_greedy_return",
        "losses/policy",
        "losses/value",
        "losses/entropy",
        "stats/grad_norm",
    }
    # One point per episode, at the step it ended; the same numbers as episodes.csv.
    episodes = read_episodes(tmp_path / "run" / "episodes.csv")
    steps, returns = zip(*events["charts/episode_return"])
    np.testing.assert_array_equal(steps, episodes["step"])
    np.testing.assert_allclose(returns, episodes["return"], rtol=1e-6)
    np.testing.assert_array_equal(episodes["return"], result.episode_returns)
    np.testing.assert_array_equal(episodes["length"], episodes["return"])  # CartPole: +1/step
    assert episodes["step"][-1] == result.steps
    # One loss and one throughput point per update (16 episodes each).
    updates = result.episodes // 16
    assert len(events["losses/policy"]) == len(events["charts/steps_per_second"]) == updates
    for tag in ("losses/policy", "losses/value", "losses/entropy", "stats/grad_norm"):
        assert len(events[tag]) == updates
        assert all(np.isfinite(value) for _, value in events[tag])
    # Sampled evaluations after the updates that passed steps 1,000 and 2,000, greedy ones
    # after the one that passed 2,000; evaluations.csv holds the same numbers.
    sampled, greedy = events["charts/eval_sampled_return"], events["charts/eval_greedy_return"]
    assert len(sampled) == 2 and len(greedy) == 1
    assert [step // 1_000 for step, _ in sampled] == [1, 2] and greedy[0][0] == sampled[1][0]
    logged = read_evaluations(tmp_path / "run" / "evaluations.csv")
    assert list(logged["mode"]) == ["sampled", "sampled", "greedy"]
    np.testing.assert_array_equal(logged["step"], [sampled[0][0], sampled[1][0], greedy[0][0]])
    np.testing.assert_allclose(
        logged["mean"], [float(v) for _, v in [*sampled, *greedy]], rtol=1e-6
    )
    assert list(logged["episodes"]) == [2, 2, 2]
    # best.keras beside the final policy holds the best sampled evaluation's weights and score:
    # played again with the evaluation's seeds, it scores the same.
    best = max(float(value) for _, value in sampled)
    note = load_metadata(tmp_path / "best.keras")
    assert note["eval_return"] == pytest.approx(best)
    assert (note["eval_mode"], note["env"]) == ("sampled", "CartPole-v1")
    again = evaluate(load_policy(tmp_path / "best.keras"), "CartPole-v1", 2, seed=EVAL_SEED_OFFSET)
    assert again.mean() == pytest.approx(best)
    ((step, text),) = events["config"]
    saved = json.loads(text.item().decode().strip("`\n"))
    assert (step, saved["total_steps"], saved["eval_every"]) == (0, 3_000, 1_000)


def test_update_metrics_map_to_their_groups(tmp_path):
    summaries = Summaries(tmp_path)
    metrics = {"policy_loss": 1.5, "value_loss": 2.5, "entropy": 0.5, "grad_norm": 3.0}
    summaries.update(7, metrics, steps_per_second=100.0)
    summaries.close()
    events = read_events(tmp_path)
    got = {tag: (points[0][0], float(points[0][1])) for tag, points in events.items()}
    assert got == {
        "losses/policy": (7, 1.5),
        "losses/value": (7, 2.5),
        "losses/entropy": (7, 0.5),
        "stats/grad_norm": (7, 3.0),
        "charts/steps_per_second": (7, 100.0),
    }


def _evaluated(tmp_path, **fields):
    return TrainConfig(
        total_steps=3_000,
        eval_every=1_000,
        eval_episodes=2,
        logdir=str(tmp_path / "run"),
        save_path=str(tmp_path / "p.keras"),
        **fields,
    )


def test_best_by_greedy_keeps_the_best_greedy_evaluation(tmp_path):
    train(_evaluated(tmp_path, greedy_eval_every=1_000, best_by="greedy"), progress=None)
    logged = read_evaluations(tmp_path / "run" / "evaluations.csv")
    greedy = logged["mean"][logged["mode"] == "greedy"]
    assert len(greedy) == 2  # after the updates that passed 1,000 and 2,000 steps
    note = load_metadata(tmp_path / "best.keras")
    assert note["eval_mode"] == "greedy" and note["eval_return"] == pytest.approx(greedy.max())


def test_a_resume_keeps_a_better_best_written_after_its_checkpoint(tmp_path):
    # The first process evaluates nothing (its checkpoint's best is -inf); best.keras then
    # holds a best its checkpoint does not know (as when a process is killed after writing
    # best.keras and before its next checkpoint). No evaluation of the resumed run beats it.
    config = _evaluated(tmp_path)
    train(dataclasses.replace(config, total_steps=1_000, eval_every=100_000), progress=None)
    planted = {"eval_return": 1e9, "eval_mode": "sampled", "step": 1_000}
    save_policy(load_policy(tmp_path / "p.keras"), tmp_path / "best.keras", planted)
    train(dataclasses.replace(config, resume=True), progress=None)
    logged = read_evaluations(tmp_path / "run" / "evaluations.csv")
    assert len(logged["mean"]) >= 2  # the resumed run evaluated
    assert load_metadata(tmp_path / "best.keras") == planted
