"""TensorBoard scalars of a run, grouped like CleanRL's: charts/, losses/, stats/.

    charts/episode_return, charts/episode_length   each episode, at the step it ended
    charts/steps_per_second                         each update
    charts/eval_sampled_return                      each sampled evaluation (its mean return)
    charts/eval_greedy_return                       each greedy evaluation (its mean return)
    losses/policy, losses/value, losses/entropy     each update, those the update reports
    stats/grad_norm                                 each update, when reported
    stats/kl, stats/learning_rate                   each update, with `--lr_schedule=kl`
The run's config is written once, as text under "config".
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

# Metric names returned by an update → their TensorBoard tags.
METRIC_TAGS = {
    "policy_loss": "losses/policy",
    "value_loss": "losses/value",
    "entropy": "losses/entropy",
    "grad_norm": "stats/grad_norm",
}


class Summaries:
    """Writes a run's scalars as TensorBoard event files in `folder`."""

    def __init__(self, folder: Path):
        self._writer = tf.summary.create_file_writer(str(folder))
        # An update's episodes in one compiled call: eager tf.summary.scalar calls, two per
        # episode, took a sixth of a CartPole training loop (benchmarks/profile.py).
        self._write_episodes = tf.function(
            self._episode_scalars,
            input_signature=[
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None], tf.float32),
                tf.TensorSpec([None], tf.float32),
            ],
        )

    def config(self, config: dict) -> None:
        """The full config, once, as a JSON block (TensorBoard renders text as Markdown)."""
        text = "```\n" + json.dumps(config, indent=2) + "\n```"
        with self._writer.as_default():
            tf.summary.text("config", text, step=0)

    def episodes(self, end_steps: np.ndarray, returns: np.ndarray, lengths: np.ndarray) -> None:
        """Each episode's return and length at the step counter when it ended.

        Args:
            end_steps: [E] the step counter at each episode's end.
            returns, lengths: [E] each episode's return and length.
        """
        self._write_episodes(
            np.asarray(end_steps, np.int64),
            np.asarray(returns, np.float32),
            np.asarray(lengths, np.float32),
        )

    def _episode_scalars(self, end_steps, returns, lengths):
        with self._writer.as_default():
            for i in tf.range(tf.shape(end_steps)[0]):
                # "charts/" ends in a slash: an absolute scope, not one under the loop's.
                with tf.name_scope("charts/"):
                    tf.summary.scalar("episode_return", returns[i], step=end_steps[i])
                    tf.summary.scalar("episode_length", lengths[i], step=end_steps[i])

    def update(self, step: int, metrics: dict[str, float], steps_per_second: float) -> None:
        """An update's metrics (the keys of METRIC_TAGS it has) and the throughput."""
        with self._writer.as_default():
            for name, value in metrics.items():
                tf.summary.scalar(METRIC_TAGS.get(name, f"stats/{name}"), value, step=step)
            tf.summary.scalar("charts/steps_per_second", steps_per_second, step=step)

    def evaluation(self, step: int, mode: str, mean_return: float) -> None:
        """An evaluation's mean return; `mode` "sampled" or "greedy"."""
        with self._writer.as_default():
            tf.summary.scalar(f"charts/eval_{mode}_return", mean_return, step=step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
