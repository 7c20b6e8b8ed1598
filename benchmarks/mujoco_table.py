"""The MuJoCo table: every env × seed trained with its defaults, resumably, then the results
JSON, docs/mujoco.md (on Tianshou's metric, `mujoco_report`) and one evaluation-curve PNG per
env.

python benchmarks/mujoco_table.py --envs=HalfCheetah-v5,Hopper-v5 --seeds=0,1,2,3,4 \
    --total_steps=3000000
python benchmarks/mujoco_table.py --envs=Pendulum-v1 --total_steps=2000000
python benchmarks/mujoco_table.py --render_only          # the Markdown and curves from the JSON

Runs go one at a time (`mujoco_runs.train`: a `scripts/train.py` process each, its env's
defaults, sampled evaluations every --eval_every steps and greedy ones every
--greedy_eval_every, no early stop). A run already in the results JSON is skipped; a run
folder that is not (the runner was stopped) is resumed from its last checkpoint. After each
run its evaluation curves and its saved policy's closing evaluation (sampled and greedy) go
into the JSON, and the Markdown and the env's curve are rewritten from the JSON alone, so the
runner can be stopped at any time and started again with the same command, and the report
needs no run folder. Before each process it waits while --wait_while exists (a file that says
someone is timing on this machine).

Several runners may share one results JSON, one per core: each claims a run before training
it (`mujoco_runs.claim`) and skips the runs another holds, and each adds its result to the
JSON as it is on disk then, under a lock on `<results>.lock`, so none overwrites another's.
"""

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common as _cli  # first: it imports TensorFlow quietly

# isort: split
import mujoco_report
import mujoco_runs
import report as report_lib
from absl import app, flags

from reinforce_tf.errors import InputError
from reinforce_tf.training.envs import env_spec
from reinforce_tf.training.saving import write_text_atomically, written_atomically

_ENVS = flags.DEFINE_list(
    "envs", list(mujoco_report.TASKS), "Gymnasium ids to run, a comma list (default: the nine)."
)
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds, a comma list of integers.")
_TOTAL_STEPS = flags.DEFINE_integer(
    "total_steps", 3_000_000, "Env-step budget of each run (> 0).", lower_bound=1
)
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every",
    30_000,
    "Env steps between sampled evaluations during a run (> 0; Tianshou's epoch).",
    lower_bound=1,
)
_GREEDY_EVAL_EVERY = flags.DEFINE_integer(
    "greedy_eval_every",
    150_000,
    "Env steps between greedy evaluations during a run (> 0).",
    lower_bound=1,
)
_EVAL_EPISODES = flags.DEFINE_integer(
    "eval_episodes", 10, "Episodes per evaluation during a run (> 0).", lower_bound=1
)
_FINAL_EPISODES = flags.DEFINE_integer(
    "final_episodes",
    10,
    "Episodes of the final policy's closing evaluation, sampled and again greedy (> 0).",
    lower_bound=1,
)
_RUNS_DIR = flags.DEFINE_string("runs_dir", "runs/mujoco", "Folder of the run folders.")
_RESULTS = flags.DEFINE_string("results", "docs/mujoco.json", "The results JSON.")
_MARKDOWN = flags.DEFINE_string("markdown", "docs/mujoco.md", "The Markdown report.")
_CURVES_DIR = flags.DEFINE_string(
    "curves_dir", "docs/mujoco", "Folder of the learning-curve PNGs, one per env."
)
_WAIT_WHILE = flags.DEFINE_string(
    "wait_while",
    "/work/timing.lock",
    "Before each process, wait while this file exists (someone timing); empty: never wait.",
)
_README = flags.DEFINE_string(
    "readme",
    "README.md",
    f"Also put the short table between the lines {mujoco_report.README_START} and "
    f"{mujoco_report.README_END} of this file, if it has them; empty: no.",
)
_RENDER_ONLY = flags.DEFINE_bool(
    "render_only", False, "Run nothing: rewrite the Markdown and curves from the results JSON."
)


def say(line: str) -> None:
    print(line, flush=True)


def _check_flags() -> list[int]:
    """The seeds; every bad flag is an `InputError` before anything runs or is written."""
    for env in _ENVS.value:
        try:
            env_spec(env)
        except InputError as error:
            raise InputError(error.reason, field="envs") from None
    if not _ENVS.value:
        raise InputError("must name at least one env", field="envs")
    if not all(seed.isdigit() and int(seed) < 2**32 for seed in _SEEDS.value) or not _SEEDS.value:
        raise InputError(
            f"must be a comma list of integers in [0, 2**32); got {','.join(_SEEDS.value)!r}",
            field="seeds",
        )
    for flag in (_RESULTS, _MARKDOWN):
        folder = Path(flag.value).parent
        if not folder.is_dir():
            raise InputError(f"folder {str(folder)!r} does not exist", field=flag.name)
    for flag, suffix in ((_RESULTS, ".json"), (_MARKDOWN, ".md")):
        if not flag.value.endswith(suffix):
            raise InputError(f'must end in "{suffix}"; got {flag.value!r}', field=flag.name)
    return [int(seed) for seed in _SEEDS.value]


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


def render(results: dict) -> None:
    """Writes the curves of every env in `results`, then the Markdown (and the README's table)."""
    markdown = Path(_MARKDOWN.value)
    curves_dir = Path(_CURVES_DIR.value)
    curves = {}
    for env, runs in mujoco_report.by_env(results["runs"]).items():
        if mujoco_report.mean_curve(runs, "sampled") is None:
            continue
        png = curves_dir / f"{env}.png"
        curves_dir.mkdir(parents=True, exist_ok=True)
        with written_atomically(png) as temporary:  # never a half-written PNG
            mujoco_report.plot(env, runs, temporary)
        curves[env] = os.path.relpath(png, markdown.parent)
    text = mujoco_report.markdown(results["runs"], results["machine"], results["commands"], curves)
    write_text_atomically(markdown, text)
    if _README.value:
        table = mujoco_report.summary_table(results["runs"])
        readme = Path(_README.value)
        report_lib.write_between(
            readme, table, mujoco_report.README_START, mujoco_report.README_END
        )


def _name(result: dict) -> str:
    return mujoco_runs.run_name(result["env"], result["seed"], result["total_steps"])


def run() -> dict:
    seeds = _check_flags()
    results_path = Path(_RESULTS.value)
    if not _RENDER_ONLY.value:
        command = " ".join(["python benchmarks/mujoco_table.py", *sys.argv[1:]])
        with results_locked(results_path):
            results = load_results(results_path)
            if command not in results["commands"]:
                results["commands"].append(command)
            results["machine"] = report_lib.machine()
            _write_results(results_path, results)
        for env in _ENVS.value:
            for seed in seeds:
                _run_once(env, seed, results_path)
    with results_locked(results_path):
        results = load_results(results_path)
        render(results)
    return results


def _run_once(env: str, seed: int, results_path: Path) -> None:
    """The run env × seed, unless the results hold it or another runner has claimed it:
    trained and added to the results JSON as it is on disk then. The claim is held
    until the result is written, and the results are read again once it is taken, so a
    run another runner just finished is never trained twice."""
    name = mujoco_runs.run_name(env, seed, _TOTAL_STEPS.value)
    folder = Path(_RUNS_DIR.value) / name
    claimed = mujoco_runs.claim(folder)
    if claimed is None:
        say(f"{name}: another runner has it, skipped")
        return
    with claimed:
        if name in load_results(results_path)["runs"]:
            say(f"{name}: done, skipped")
            return
        entry = _train(env, seed, folder)
        with results_locked(results_path):
            results = load_results(results_path)
            results["runs"][name] = entry
            _write_results(results_path, results)
            render(results)


def _train(env: str, seed: int, folder: Path) -> dict:
    """Trains (or resumes) the run in `folder`; its result entry."""
    name = folder.name
    mujoco_runs.wait_while(_WAIT_WHILE.value, say)
    resuming = (folder / "run" / "config.json").exists()
    say(f"{name}: {'resuming' if resuming else 'training'} …")
    seconds = mujoco_runs.train(
        env,
        seed,
        _TOTAL_STEPS.value,
        folder,
        eval_every=_EVAL_EVERY.value,
        greedy_eval_every=_GREEDY_EVAL_EVERY.value,
        eval_episodes=_EVAL_EPISODES.value,
        final_episodes=_FINAL_EPISODES.value,
    )
    entry = mujoco_runs.result(folder)
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
    print(mujoco_report.summary_table(results["runs"]), end="")


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
