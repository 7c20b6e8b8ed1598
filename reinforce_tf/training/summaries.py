"""TensorBoard scalars of a run, grouped like CleanRL's: charts/, losses/, stats/.

    charts/episode_return, charts/episode_length   each episode, at the step it ended
    charts/steps_per_second                         each update
    charts/eval_return                              each evaluation (mean greedy return)
    losses/policy, losses/value, losses/entropy     each update, those the update reports
    stats/grad_norm                                 each update, when reported
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

    def config(self, config: dict) -> None:
        """The full config, once, as a JSON block (TensorBoard renders text as Markdown)."""
        text = "```\n" + json.dumps(config, indent=2) + "\n```"
        with self._writer.as_default():
            tf.summary.text("config", text, step=0)

    def episodes(self, end_steps: np.ndarray, returns: np.ndarray, lengths: np.ndarray) -> None:
        """Each episode's return and length at the step counter when it ended."""
        with self._writer.as_default():
            for step, value, length in zip(end_steps, returns, lengths):
                tf.summary.scalar("charts/episode_return", float(value), step=int(step))
                tf.summary.scalar("charts/episode_length", int(length), step=int(step))

    def update(self, step: int, metrics: dict[str, float], steps_per_second: float) -> None:
        """An update's metrics (the keys of METRIC_TAGS it has) and the throughput."""
        with self._writer.as_default():
            for name, value in metrics.items():
                tf.summary.scalar(METRIC_TAGS.get(name, f"stats/{name}"), value, step=step)
            tf.summary.scalar("charts/steps_per_second", steps_per_second, step=step)

    def evaluation(self, step: int, mean_return: float) -> None:
        with self._writer.as_default():
            tf.summary.scalar("charts/eval_return", mean_return, step=step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
