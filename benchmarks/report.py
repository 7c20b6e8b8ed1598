"""The report: the machine it ran on, the Markdown tables, and the JSON and Markdown files.

`markdown(report)` renders the dict that `benchmark.py` fills (every number it measured);
files are written atomically by the trainer's own helper (`saving.written_atomically`).
"""

import contextlib
import datetime
import json
import os
import platform
import statistics
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from reinforce_tf.training.loop import SOLVED_WINDOW
from reinforce_tf.training.saving import write_text_atomically

START_MARK, END_MARK = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def machine() -> dict:
    """Date, CPU, usable cores, load average and library versions."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
    }


def summary(values: list[float], decimals: int) -> str:
    """ "median (min–max)" of `values`."""
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{median:,.{decimals}f} ({low:,.{decimals}f}–{high:,.{decimals}f})"


def markdown(report: dict) -> str:
    """The report as Markdown: throughput, acting alternatives, time to target, memory."""
    m, config = report["machine"], report["config"]
    throughput = report["throughput"]
    lines = [
        (
            f"Measured {m['date_utc']} UTC on {m['cores']} cores ({m['cpu']}), load average "
            f"{' / '.join(map(str, m['load_average_at_start']))} (1/5/15 min) at start; "
            f"Python {m['python']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
            f"Gymnasium {m['gymnasium']}, NumPy {m['numpy']}."
        ),
        "",
        (
            f"Command: `{report['command']}`. Env {config['env']}, the trainer's defaults: "
            f"`{report['config_line']}`."
        ),
        "",
        "### Throughput",
        "",
        "| what | rate | vs. raw env |",
        "| --- | --- | --- |",
    ]
    raw = throughput["raw_env_steps_per_s"]
    collector = throughput["collector"]
    rows = [
        (f"raw vector env, random actions ({config['envs']} envs)", raw, "env steps/s"),
        (
            "trainer's collection loop, all env steps",
            collector["env_steps_per_s"],
            "env steps/s",
        ),
        (
            "trainer's collection loop, counted steps (excl. reset and idle steps)",
            collector["counted_steps_per_s"],
            "env steps/s",
        ),
    ]
    if throughput["naive"] is not None:
        rows.append(
            (
                "naive acting (1 env, eager `model(obs)` per step)",
                throughput["naive"],
                "env steps/s",
            )
        )
    for name, rate, unit in rows:
        lines.append(f"| {name} | {rate:,.0f} {unit} | {rate / raw:.2%} |")
    update = throughput["update"]
    lines.append(
        f"| REINFORCE update (returns + compiled step, {update['batch_samples']:,}-sample "
        f"batch) | {update['samples_per_s']:,.0f} samples/s | |"
    )
    if report["alternatives"]:
        lines += [
            "",
            "### Acting alternatives (collection loop, initial policy)",
            "",
            (
                "| envs | vector env | actor | env steps/s | counted steps/s | raw env steps/s "
                "| vs. raw |"
            ),
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in report["alternatives"]:
            lines.append(
                f"| {row['num_envs']} | {row['vector_env']} | {row['actor']} | "
                f"{row['env_steps_per_s']:,.0f} | {row['counted_steps_per_s']:,.0f} | "
                f"{row['raw_env_steps_per_s']:,.0f} | "
                f"{row['env_steps_per_s'] / row['raw_env_steps_per_s']:.1%} |"
            )
    lines += _end_to_end(report, raw)
    if report["whole_process"]:
        runs = report["whole_process"]
        lines += [
            "",
            (
                f"### Whole process: `python scripts/train.py --env={config['env']} --seed=N`, "
                "process start to exit"
            ),
            "",
            "TensorFlow's import, tracing, training to the target (or the budget), saving.",
            "",
            "| seed | seconds |",
            "| --- | --- |",
        ]
        lines += [f"| {run['seed']} | {run['seconds']:.2f} |" for run in runs]
        lines.append(f"| median (min–max) | {summary([run['seconds'] for run in runs], 2)} |")
    if report["memory"]:
        lines += ["", "### Memory (peak RSS of `scripts/train.py --target_return=inf`)", ""]
        lines += ["| env steps | peak RSS |", "| --- | --- |"]
        for row in report["memory"]:
            lines.append(f"| {row['steps']:,} | {row['peak_rss_mib']:,.0f} MiB |")
    return "\n".join(lines) + "\n"


def _end_to_end(report: dict, raw: float) -> list[str]:
    """Markdown lines of the time-to-target runs: the trainer's steps, seconds and counted
    steps/s over the whole run beside the raw env's, and the naive reference's if it ran."""
    runs, throughput = report["end_to_end"], report["throughput"]
    naive_runs = runs["naive"]
    lines = [
        "",
        (
            f"### End to end: time to the target return ({report['target']:g}, mean of the last "
            f"{SOLVED_WINDOW} episodes)"
        ),
        "",
        (
            "Trainer steps/s: counted env steps over the training loop's seconds, collection "
            "and updates together, beside the raw vector env's rate above."
        ),
        "",
        "| seed | trainer steps | trainer seconds | trainer steps/s | vs. raw env |"
        + (" naive steps | naive seconds |" if naive_runs else ""),
        "| --- | --- | --- | --- | --- |" + (" --- | --- |" if naive_runs else ""),
    ]

    def cell(run):
        mark = "" if run["solved"] else " (not reached)"
        return f"{run['steps']:,}{mark}", f"{run['seconds']:.1f}{mark}"

    rates = [run["steps"] / run["seconds"] for run in runs["trainer"]]
    for index, (ours, rate) in enumerate(zip(runs["trainer"], rates)):
        row = f"| {ours['seed']} | {' | '.join(cell(ours))} | {rate:,.0f} | {rate / raw:.1%} |"
        if naive_runs:
            row += f" {' | '.join(cell(naive_runs[index]))} |"
        lines.append(row)
    ours_seconds = [run["seconds"] for run in runs["trainer"]]
    median_rate = statistics.median(rates)
    row = (
        f"| median (min–max) | {summary([run['steps'] for run in runs['trainer']], 0)} | "
        f"{summary(ours_seconds, 1)} | {summary(rates, 0)} | {median_rate / raw:.1%} |"
    )
    if naive_runs:
        naive_seconds = [run["seconds"] for run in naive_runs]
        row += (
            f" {summary([run['steps'] for run in naive_runs], 0)} | {summary(naive_seconds, 1)} |"
        )
    lines.append(row)
    solved = sum(run["solved"] for run in runs["trainer"])
    lines += ["", f"Trainer: {solved}/{len(runs['trainer'])} seeds reached the target."]
    collector = throughput["collector"]
    lines.append(
        f"Collection loop alone: {collector['env_steps_per_s'] / raw:.1%} of the raw env's rate "
        f"for all env steps, {collector['counted_steps_per_s'] / raw:.1%} for counted steps."
    )
    if not naive_runs:
        return lines
    naive_solved = sum(run["solved"] for run in naive_runs)
    ratio = statistics.median(naive_seconds) / statistics.median(ours_seconds)
    bound = "" if naive_solved == len(naive_runs) else "at least "
    lines += [
        "",
        f"Naive reference: {naive_solved}/{len(naive_runs)} seeds reached the target (budget "
        f"{report['naive_seconds_budget'] or 'none'} s per seed). Time-to-target speed-up, "
        f"median naive / median trainer: {bound}{ratio:.1f}×"
        + (
            " (a naive run stopped by its budget counts at its budget, so this is a lower bound)."
            if bound
            else "."
        ),
        (
            f"Acting alone: the trainer's loop counts "
            f"{collector['counted_steps_per_s'] / throughput['naive']:.1f}× as many env steps "
            "per second as the naive loop."
        ),
    ]
    return lines


def write_markdown(path: Path, text: str) -> None:
    """Puts `text` between the markers of `path` (kept otherwise), or writes it whole."""
    if not write_between(path, text, START_MARK, END_MARK):
        write_text_atomically(path, text)


def between(text: str, start: str, end: str) -> str | None:
    """What stands between the lines `start` and `end` of `text`; None when it lacks them."""
    if start not in text or end not in text.split(start, 1)[1]:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].removeprefix("\n")


def put_between(text: str, block: str, start: str, end: str) -> str | None:
    """`text` with `block` between its lines `start` and `end`; None when it lacks them."""
    if between(text, start, end) is None:
        return None
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{block}{end}{rest.split(end, 1)[1]}"


def write_between(path: Path, text: str, start: str, end: str) -> bool:
    """Puts `text` between the lines `start` and `end` of `path`, keeping the rest; returns
    False (writing nothing) when `path` lacks them."""
    new = put_between(path.read_text() if path.exists() else "", text, start, end)
    if new is None:
        return False
    write_text_atomically(path, new)
    return True


def write_json(path: Path, report: dict) -> None:
    """Writes every number of `report` to `path` as indented JSON."""
    write_text_atomically(path, json.dumps(report, indent=2) + "\n")
