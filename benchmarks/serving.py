"""Size and per-call latency of each serving format, acting on a batch of 1 observation:
the measurements of export_latency.py (which only parses flags and prints).

Shapes: O = observation size.
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from reinforce_tf import TrainConfig
from reinforce_tf.policy import make_actor
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.export import export_policy
from reinforce_tf.training.exported import FORMAT_NAMES, FORMATS
from reinforce_tf.training.learner import make_agent
from reinforce_tf.training.saving import save_policy

WARM_UP = 100


def latency(call: Callable[[], object], calls: int) -> dict:
    """Median and 99th percentile wall time of `call()`, in microseconds."""
    for _ in range(WARM_UP):
        call()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return {
        "median_us": float(np.median(times) * 1e6),
        "p99_us": float(np.percentile(times, 99) * 1e6),
    }


def runtime_call(path: Path, format: str, observation: np.ndarray) -> Callable[[], object]:
    """One call of the export at `path`, as the README's snippets load and call it."""
    if format == "saved_model":
        loaded = tf.saved_model.load(str(path))
        serve = loaded.signatures["serving_default"]
        return lambda: (loaded, serve(observation=tf.constant(observation)))[1]
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path)).get_signature_runner()
        return lambda: runner(observation=observation)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"observation": observation})


def size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(env_id: str, folder: Path, calls: int, formats=FORMATS) -> list[dict]:
    """Rows {env, format, outputs, bytes, median_us, p99_us} for `env_id`'s default policy:
    the .keras file (eager and compiled calls), then each format, distribution and greedy."""
    config = TrainConfig.for_env(env_id)
    env = make_vector_env(env_id, 1)
    try:
        spaces = env.single_observation_space, env.single_action_space
    finally:
        env.close()
    policy = make_agent(config, *spaces).policy
    observation = np.asarray(spaces[0].sample(), np.float32)[None]  # [1, O]
    path = save_policy(policy, folder / f"{env_id}.keras", {"env": env_id})
    act = make_actor(policy, greedy=True)
    rows = [
        {"env": env_id, "format": "keras", "outputs": "distribution, eager `policy(obs)`"}
        | {"bytes": size(path)}
        | latency(lambda: policy(observation), calls),
        {"env": env_id, "format": "keras", "outputs": "action, compiled `make_actor`"}
        | {"bytes": size(path)}
        | latency(lambda: act(observation), calls),
    ]
    for format in formats:
        for greedy in (False, True):
            name = f"{env_id}_{'greedy' if greedy else 'distribution'}"
            output = folder / (name + {"litert": ".tflite", "onnx": ".onnx"}.get(format, ""))
            export = export_policy(policy, output, format, greedy=greedy, action_space=spaces[1])
            rows.append(
                {"env": env_id, "format": format, "outputs": "action" if greedy else "distribution"}
                | {"bytes": export.size}
                | latency(runtime_call(export.path, format, observation), calls)
            )
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as the README's table."""
    names = {**FORMAT_NAMES, "keras": ".keras"}
    lines = [
        "| env | format | outputs | size | latency per call, median (p99) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['env']} | {names[row['format']]} | {row['outputs']} | "
            f"{row['bytes'] / 1024:,.1f} KiB | {row['median_us']:,.0f} µs "
            f"({row['p99_us']:,.0f} µs) |"
        )
    return "\n".join(lines)
