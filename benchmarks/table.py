"""A result table: every env × seed trained with its per-env defaults, resumably, then the
results JSON, the Markdown report and its figures. Two tables: `mujoco` (beside Tianshou's
REINFORCE on Tianshou's metric, `mujoco_report`) and `minatar` (beside the MinAtar paper's
agents, with the step-size sweep, `minatar_report`).

python benchmarks/table.py --table=mujoco                # the nine tasks, 5 seeds, 3M steps
python benchmarks/table.py --table=mujoco --envs=Pendulum-v1 --total_steps=2000000
python benchmarks/table.py --table=minatar               # the five games, 3 seeds, 5M steps
python benchmarks/table.py --table=minatar --envs=MinAtar/Breakout-v1 \
    --train_flag=--learning_rate=0.002                   # one point of the step-size sweep
python benchmarks/table.py --table=mujoco --render_only  # the Markdown and figures from the JSON

Unset, --envs, --seeds, --total_steps and the evaluation flags are the table's (its report's
DEFAULTS); the paths are runs/<table>, docs/<table>.json, docs/<table>.md and docs/<table>/.

Runs go one at a time (`table_runs.train`: a `scripts/train.py` process each, its env's
defaults and the --train_flag flags, sampled evaluations every --eval_every steps and greedy
ones every --greedy_eval_every, no early stop). A run already in the results JSON is skipped;
a run folder that is not (the runner was stopped) is resumed from its last checkpoint. After
each run its curves and its saved policy's closing evaluation (sampled and greedy) go into
the JSON, and the Markdown and figures are rewritten from the JSON alone, so the runner can
be stopped at any time and started again with the same command, and the report needs no run
folder (notes written by hand between a report's `<!-- notes:start -->` and `<!-- notes:end
-->` lines are kept). Before each process it waits while --wait_while exists (a file that
says someone is timing on this machine).

Several runners may share one results JSON, one per core: each claims a run before training
it (`table_runs.claim`) and skips the runs another holds, and each adds its result to the
JSON as it is on disk then, under a lock on `<results>.lock`, so none overwrites another's.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common as _cli  # first: it imports TensorFlow quietly

# isort: split
import minatar_report
import mujoco_report
import report as report_lib
import table_runs
from absl import app, flags
from table_report import NOTES_END, NOTES_START

from reinforce_tf.errors import InputError
from reinforce_tf.training.envs import env_spec
from reinforce_tf.training.saving import printable, write_text_atomically, written_atomically

TABLES = {"mujoco": mujoco_report, "minatar": minatar_report}

_TABLE = flags.DEFINE_enum("table", "mujoco", list(TABLES), "Which table.")
_ENVS = flags.DEFINE_list(
    "envs", None, "Gymnasium ids to run, a comma list (default: the table's)."
)
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds, a comma list of integers (default: the table's).")
_TOTAL_STEPS = flags.DEFINE_integer(
    "total_steps", None, "Env-step budget of each run (> 0; default: the table's).", lower_bound=1
)
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every",
    None,
    "Env steps between sampled evaluations during a run (> 0; default: the table's, MuJoCo's "
    "Tianshou's 30,000-step epoch).",
    lower_bound=1,
)
_GREEDY_EVAL_EVERY = flags.DEFINE_integer(
    "greedy_eval_every",
    None,
    "Env steps between greedy evaluations during a run (> 0; default: the table's).",
    lower_bound=1,
)
_EVAL_EPISODES = flags.DEFINE_integer(
    "eval_episodes", None, "Episodes per evaluation during a run (> 0; default: 10).", lower_bound=1
)
_FINAL_EPISODES = flags.DEFINE_integer(
    "final_episodes",
    10,
    "Episodes of the final policy's closing evaluation, sampled and again greedy (> 0).",
    lower_bound=1,
)
_TRAIN_FLAGS = flags.DEFINE_multi_string(
    "train_flag",
    [],
    "A flag of scripts/train.py over the env's defaults, e.g. --train_flag=--learning_rate=0.002 "
    "(repeatable); the run's name and results key carry it.",
)
_RUNS_DIR = flags.DEFINE_string("runs_dir", None, "Folder of the run folders (runs/<table>).")
_RESULTS = flags.DEFINE_string("results", None, "The results JSON (docs/<table>.json).")
_MARKDOWN = flags.DEFINE_string("markdown", None, "The Markdown report (docs/<table>.md).")
_CURVES_DIR = flags.DEFINE_string(
    "curves_dir", None, "Folder of the report's PNG figures (docs/<table>)."
)
_WAIT_WHILE = flags.DEFINE_string(
    "wait_while",
    "/work/timing.lock",
    "Before each process, wait while this file exists (someone timing); empty: never wait.",
)
_README = flags.DEFINE_string(
    "readme",
    "README.md",
    "Also put the short table between the lines <!-- <table>:start --> and "
    "<!-- <table>:end --> of this file, if it has them; empty: no.",
)
_RENDER_ONLY = flags.DEFINE_bool(
    "render_only", False, "Run nothing: rewrite the Markdown and figures from the results JSON."
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The flags, with the table's defaults where a flag is not given."""

    report: object  # the table's report module
    envs: list[str]
    seeds: list[int]
    total_steps: int
    eval_every: int
    greedy_eval_every: int
    eval_episodes: int
    train_flags: tuple[str, ...]
    runs_dir: Path
    results: Path
    markdown: Path
    curves_dir: Path


def settings() -> Settings:
    """The settings; every bad flag is an `InputError` before anything runs or is written."""
    report = TABLES[_TABLE.value]
    default = report.DEFAULTS

    def given(flag, key):
        return flag.value if flag.value is not None else default[key]

    def path(flag, pattern):
        return Path(flag.value if flag.value is not None else pattern.format(_TABLE.value))

    envs = _ENVS.value if _ENVS.value is not None else list(report.ROWS)
    if not envs:
        raise InputError("must name at least one env", field="envs")
    for env in envs:
        try:
            env_spec(env)
        except InputError as error:
            raise InputError(error.reason, field="envs") from None
    seeds = _SEEDS.value if _SEEDS.value is not None else [str(s) for s in default["seeds"]]
    if not seeds or not all(seed.isdigit() and int(seed) < 2**32 for seed in seeds):
        raise InputError(
            f"must be a comma list of integers in [0, 2**32); got {','.join(seeds)!r}",
            field="seeds",
        )
    for flag in _TRAIN_FLAGS.value:
        if not re.fullmatch(r"--[a-z_]+=[\w.,+-]+", flag):
            raise InputError(
                f"must be a --name=value flag of scripts/train.py (letters, digits, . , + -); "
                f"got {printable(flag)}",
                field="train_flag",
            )
        name = flag[2:].split("=")[0]
        if name in table_runs.RUNNER_FLAGS:
            raise InputError(
                f"--{name} is the runner's to set (its own flag, or the run's folder and "
                f"evaluations); give a flag of the experiment, e.g. --learning_rate=0.002",
                field="train_flag",
            )
    chosen = Settings(
        report=report,
        envs=envs,
        seeds=[int(seed) for seed in seeds],
        total_steps=given(_TOTAL_STEPS, "total_steps"),
        eval_every=given(_EVAL_EVERY, "eval_every"),
        greedy_eval_every=given(_GREEDY_EVAL_EVERY, "greedy_eval_every"),
        eval_episodes=given(_EVAL_EPISODES, "eval_episodes"),
        train_flags=tuple(_TRAIN_FLAGS.value),
        runs_dir=path(_RUNS_DIR, "runs/{}"),
        results=path(_RESULTS, "docs/{}.json"),
        markdown=path(_MARKDOWN, "docs/{}.md"),
        curves_dir=path(_CURVES_DIR, "docs/{}"),
    )
    for name, file, suffix in (
        ("results", chosen.results, ".json"),
        ("markdown", chosen.markdown, ".md"),
    ):
        if not file.parent.is_dir():
            raise InputError(f"folder {str(file.parent)!r} does not exist", field=name)
        if file.suffix != suffix:
            raise InputError(f'must end in "{suffix}"; got {str(file)!r}', field=name)
    return chosen


def say(line: str) -> None:
    print(line, flush=True)


def load_results(path: Path) -> dict:
    """The results JSON: {"runs": {name: result}, "commands": [...], "machine": {...}}."""
    if not path.exists():
        return {"runs": {}, "commands": [], "machine": {}}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise InputError(f"{str(path)!r} is not a results JSON ({error})", "results") from None
    if not (isinstance(results, dict) and isinstance(results.get("runs"), dict)):
        raise InputError(f"{str(path)!r} holds no runs of this runner", field="results")
    return {"commands": [], "machine": {}, **results}


@contextlib.contextmanager
def results_locked(path: Path):
    """An exclusive `flock` on `<path>.lock` inside the block: runners sharing the results
    JSON read, change and write it one at a time."""
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_results(path: Path, results: dict) -> None:
    """Writes the results JSON (hold `results_locked(path)`), replacing it atomically."""
    write_text_atomically(path, json.dumps(results, indent=2) + "\n")


def kept_notes(path: Path, text: str) -> str:
    """`text` with the hand-written notes of the report at `path` (what stands between its
    NOTES_START and NOTES_END lines) in place of its own, so rewriting keeps them."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    notes = report_lib.between(old, NOTES_START, NOTES_END)
    if not notes:
        return text
    return report_lib.put_between(text, notes, NOTES_START, NOTES_END) or text


def render(chosen: Settings, results: dict) -> None:
    """Writes the report's figures, then the Markdown (and the README's short table)."""
    report = chosen.report
    figures = {}
    for name, draw in report.plots(results["runs"]).items():
        png = chosen.curves_dir / (re.sub(r"[^\w.-]+", "_", name) + ".png")
        chosen.curves_dir.mkdir(parents=True, exist_ok=True)
        with written_atomically(png) as temporary:  # never a half-written PNG
            draw(temporary)
        figures[name] = os.path.relpath(png, chosen.markdown.parent)
    text = report.markdown(results["runs"], results["machine"], results["commands"], figures)
    write_text_atomically(chosen.markdown, kept_notes(chosen.markdown, text))
    if _README.value:
        report_lib.write_between(
            Path(_README.value),
            report.summary_table(results["runs"]),
            report.README_START,
            report.README_END,
        )


def run() -> dict:
    chosen = settings()
    if not _RENDER_ONLY.value:
        command = " ".join(["python benchmarks/table.py", *sys.argv[1:]])
        with results_locked(chosen.results):
            results = load_results(chosen.results)
            if command not in results["commands"]:
                results["commands"].append(command)
            results["machine"] = report_lib.machine()
            _write_results(chosen.results, results)
        for env in chosen.envs:
            for seed in chosen.seeds:
                _run_once(chosen, env, seed)
    with results_locked(chosen.results):
        results = load_results(chosen.results)
        render(chosen, results)
    return results


def _run_once(chosen: Settings, env: str, seed: int) -> None:
    """The run env × seed, unless the results hold it or another runner has claimed it:
    trained and added to the results JSON as it is on disk then. The claim is held
    until the result is written, and the results are read again once it is taken, so a
    run another runner just finished is never trained twice."""
    name = table_runs.run_name(env, seed, chosen.total_steps, chosen.train_flags)
    folder = chosen.runs_dir / name
    claimed = table_runs.claim(folder)
    if claimed is None:
        say(f"{name}: another runner has it, skipped")
        return
    with claimed:
        if name in load_results(chosen.results)["runs"]:
            say(f"{name}: done, skipped")
            return
        entry = _train(chosen, env, seed, folder)
        with results_locked(chosen.results):
            results = load_results(chosen.results)
            results["runs"][name] = entry
            _write_results(chosen.results, results)
            render(chosen, results)


def _train(chosen: Settings, env: str, seed: int, folder: Path) -> dict:
    """Trains (or resumes) the run in `folder`; its result entry."""
    table_runs.wait_while(_WAIT_WHILE.value, say)
    resuming = (folder / "run" / "config.json").exists()
    name = os.path.relpath(folder, chosen.runs_dir)
    say(f"{name}: {'resuming' if resuming else 'training'} …")
    seconds = table_runs.train(
        env,
        seed,
        chosen.total_steps,
        folder,
        eval_every=chosen.eval_every,
        greedy_eval_every=chosen.greedy_eval_every,
        eval_episodes=chosen.eval_episodes,
        final_episodes=_FINAL_EPISODES.value,
        train_flags=chosen.train_flags,
    )
    entry = table_runs.result(folder)
    if chosen.train_flags:
        entry["train_flags"] = list(chosen.train_flags)
    say(
        f"{name}: best sampled eval {entry['best_sampled_eval']}, final policy sampled "
        f"{entry['final_sampled_mean']:.1f}, greedy {entry['final_greedy_mean']:.1f}, last 100 "
        f"{entry['last_100_mean']:.1f}, {seconds / 60:.1f} min"
    )
    return entry


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    results = _cli.run_reporting_input_errors(run)
    print(TABLES[_TABLE.value].summary_table(results["runs"]), end="")


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
