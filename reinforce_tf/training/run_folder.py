"""The run folder: its config, its lock, and the checks before a run starts or resumes.

A run folder (`TrainConfig.logdir`) holds:
    config.json       the run's config, written once when the run starts;
    checkpoints/      `tf.train.CheckpointManager` files `ckpt-<env steps>` and their index
                      `checkpoints/checkpoint`;
    episodes.csv      one row per finished episode (`episode_log.py`);
    evaluations.csv   one row per evaluation during training (`episode_log.py`);
    events.out.tfevents.*  TensorBoard scalars (`summaries.py`);
    lock              the pid of the trainer using the folder (`RunLock`).

The checkpoints themselves are `checkpoints.py`'s.

Faults: one trainer at a time holds a folder (an exclusive `flock`, dropped by the kernel
when the process dies, so a crash never leaves it locked). A new run refuses a folder that
holds another run's files, or one it cannot write, before writing anything.
"""

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import re
import time
from pathlib import Path

from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError
from reinforce_tf.training.checkpoints import CHECKPOINT_FOLDER
from reinforce_tf.training.episode_log import EPISODES_NAME, EVALUATIONS_NAME
from reinforce_tf.training.saving import nearest_existing, write_text_atomically, writing_in

CONFIG_NAME = "config.json"
LOCK_NAME = "lock"
# Config fields a resumed run may change; any other difference makes it another experiment.
RESUMABLE_FIELDS = frozenset(
    {
        "total_steps",
        "target_return",
        "save_path",
        "logdir",
        "resume",
        "checkpoint_every",
        "eval_every",
        "greedy_eval_every",
        "eval_episodes",
        "final_eval_episodes",
        # Where the workers run: a restarted run may find its cluster at another address.
        "ray_address",
    }
)
# Fields added after runs were first written, with the value that behaves as those runs did:
# a config.json without them still resumes.
ADDED_FIELDS = {
    "env_kwargs": None,
    "preset": None,
    "torso": "auto",
    "workers": 0,
    "ray_address": None,
    "vectorization": "sync",
    "target_kl": None,
    # Runs from before sampled evaluations chose best.keras by greedy ones and had no
    # evaluation at their end.
    "greedy_eval_every": None,
    "best_by": "greedy",
    "final_eval_episodes": 0,
}
# Files of a run that a new run would overwrite or mix with its own.
_EVENTS_PATTERN = "events.out.tfevents.*"


def config_as_json(config: TrainConfig) -> dict:
    """The config as JSON values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def default_run_folder(env: str, seed: int, stamp: str) -> str:
    """runs/<env>__seed<seed>__<stamp>, the env id with every character other than a letter,
    digit, "." or "-" written "_" ("mygame:Toy-v0" → "mygame_Toy-v0", "ALE/Pong-v5" →
    "ALE_Pong-v5"), so any id makes one folder name."""
    return f"runs/{re.sub(r'[^A-Za-z0-9.-]', '_', env)}__seed{seed}__{stamp}"


def load_run_config(logdir: str) -> dict:
    """The config saved in run folder `logdir`, as keyword arguments of `TrainConfig`.

    Raises:
        InputError: naming `resume` when the folder holds no run, or naming config.json and
            what is wrong with it (not JSON, not an object, unknown or missing fields, a bad
            value).
    """
    saved = _saved_json(logdir)
    saved["hidden_sizes"] = tuple(saved["hidden_sizes"])
    return saved


def _saved_json(logdir: str) -> dict:
    """config.json of `logdir` as JSON values, checked to be a whole, valid `TrainConfig`."""
    path = Path(logdir) / CONFIG_NAME
    if not path.is_file():
        raise InputError(
            f"nothing to resume in {logdir!r}: it has no {CONFIG_NAME}", field="resume"
        )

    def damaged(what: str) -> InputError:
        return InputError(
            f"{str(path)!r} {what}; fix it or start a new run in another folder", field="resume"
        )

    try:
        saved = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise damaged("is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise damaged(f"is not valid JSON ({error})") from None
    except OSError as error:
        raise damaged(f"cannot be read ({error.strerror})") from None
    if not isinstance(saved, dict):
        raise damaged(f"must hold a JSON object of config fields; got a JSON {_json_kind(saved)}")
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    saved = {**{k: v for k, v in ADDED_FIELDS.items() if k not in saved}, **saved}
    unknown = [name for name in saved if name not in fields]
    missing = [name for name in fields if name not in saved]
    if unknown:
        raise damaged(
            f"has unknown field{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
            "a run's config has exactly the fields of TrainConfig"
        )
    if missing:
        raise damaged(f"lacks field{'s' * (len(missing) > 1)} {', '.join(missing)}")
    values = dict(saved)
    if isinstance(values["hidden_sizes"], list):
        values["hidden_sizes"] = tuple(values["hidden_sizes"])
    try:
        TrainConfig(**values)
    except InputError as error:
        raise damaged(f"has a bad value: field {error.field} {error.reason}") from None
    except (TypeError, ValueError, AttributeError) as error:
        # A safety net: the field rules check types, so no known value reaches it.
        raise damaged(f"has a bad value ({error})") from None
    return saved


def _json_kind(value) -> str:
    kinds = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return kinds.get(type(value), "null")


def check_run_folder(config: TrainConfig) -> None:
    """Checks, before anything is written, that `config.logdir` can start or resume the run.

    Raises:
        InputError: resuming a folder without a run (config.json), with a damaged config.json
            or with a config that differs in a field outside RESUMABLE_FIELDS; starting a run
            in a folder that holds one, or files of another run (episodes.csv, checkpoints,
            TensorBoard events) it would overwrite or mix with; a folder that cannot be
            created or written. (A run stopped before its first checkpoint and its first
            episode resumes from step 0.)
    """
    folder = Path(config.logdir)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{config.logdir!r} is a file, not a folder", field="logdir")
    if not config.resume:
        _check_writable(config.logdir)
        if (folder / CONFIG_NAME).exists():
            raise InputError(
                f"{config.logdir!r} already holds a run; continue it with --resume or "
                "choose another folder",
                field="logdir",
            )
        foreign = _foreign_files(folder)
        if foreign:
            raise InputError(
                f"{config.logdir!r} holds {', '.join(foreign)} but no {CONFIG_NAME}: files of "
                "another run, or unknown files a new run would overwrite; choose another folder",
                field="logdir",
            )
        return
    saved = _saved_json(config.logdir)
    given = config_as_json(config)
    for field, value in given.items():
        if field not in RESUMABLE_FIELDS and saved.get(field) != value:
            saved_value = saved.get(field)
            raise InputError(
                f"the run in {config.logdir!r} has {field}={saved_value!r}, this one "
                f"{value!r}; only {', '.join(sorted(RESUMABLE_FIELDS - {'resume', 'logdir'}))} "
                "may change on resume",
                field="resume",
            )
    _check_writable(config.logdir)


def _check_writable(logdir: str) -> None:
    """Raises `InputError` (field logdir) if the run could not write in or create `logdir`."""
    folder = Path(logdir)
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(
            f"cannot create {logdir!r}: {str(existing)!r} is a file, not a folder", field="logdir"
        )
    paths = [existing]
    if existing == folder:
        paths += [folder / CHECKPOINT_FOLDER, folder / EPISODES_NAME, folder / LOCK_NAME]
    for path in paths:
        mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
        if path.exists() and not os.access(path, mode):
            what = "cannot be created" if existing != folder else "cannot be written"
            raise InputError(f"{logdir!r} {what}: {str(path)!r} is not writable", field="logdir")


def _foreign_files(folder: Path) -> list[str]:
    """What in `folder` a new run would overwrite or mix with its own (its `lock` aside)."""
    found = []
    try:
        found += [name for name in (EPISODES_NAME, EVALUATIONS_NAME) if (folder / name).exists()]
        checkpoints = folder / CHECKPOINT_FOLDER
        if checkpoints.exists() and (not checkpoints.is_dir() or any(checkpoints.iterdir())):
            found.append(f"{CHECKPOINT_FOLDER}/")
        if folder.is_dir() and any(folder.glob(_EVENTS_PATTERN)):
            found.append("TensorBoard events")
    except OSError as error:
        raise InputError(
            f"cannot read {str(folder)!r} ({error.strerror})", field="logdir"
        ) from None
    return found


def start_run_folder(config: TrainConfig) -> Path:
    """Creates the run folder and writes config.json (a new run only); returns the folder.

    Raises:
        InputError: naming logdir, when the folder or the file cannot be written.
    """
    folder = Path(config.logdir)
    with writing_in(config.logdir):
        folder.mkdir(parents=True, exist_ok=True)
        if not config.resume:
            text = json.dumps(config_as_json(config), indent=2)
            write_text_atomically(folder / CONFIG_NAME, text + "\n")
    return folder


def open_run_folder(config: TrainConfig) -> tuple[Path, "RunLock"]:
    """Creates and locks the run folder, checks it again under the lock (another trainer
    may have come first) and writes config.json for a new run.

    Returns:
        The folder and its lock; call `lock.release()` when the run ends.

    Raises:
        InputError: as `check_run_folder`, or another trainer holds the folder.
    """
    folder = Path(config.logdir)
    with writing_in(config.logdir):
        folder.mkdir(parents=True, exist_ok=True)
    lock = RunLock(folder)
    try:
        check_run_folder(config)
        start_run_folder(config)
    except BaseException:
        lock.release()
        raise
    return folder, lock


class RunLock:
    """An exclusive lock on a run folder for one trainer's lifetime.

    `fcntl.flock` on `folder/lock`, which then holds the trainer's pid for the refusal
    message. The kernel drops the lock when the process ends, however it ends (kill -9
    included), so a lock file left behind is stale and never blocks.

    Raises:
        InputError: naming logdir and the holder's pid when another process holds the lock.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self._descriptor = None
        with writing_in(str(folder)):
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            busy = error.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
            holder = _lock_holder(descriptor) if busy else None
            os.close(descriptor)
            if busy:
                raise InputError(
                    f"{str(folder)!r} is in use by another trainer ({holder}, holding "
                    f"{str(self.path)!r}); wait for it to end or stop it",
                    field="logdir",
                ) from None
            raise InputError(
                f"cannot lock {str(self.path)!r} ({error.strerror})", field="logdir"
            ) from None
        self._descriptor = descriptor
        try:
            with writing_in(str(folder)):
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        except InputError:
            self.release()
            raise

    def release(self) -> None:
        """Empties the lock file and unlocks it (closing the descriptor drops the flock)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
        os.close(descriptor)


def _lock_holder(descriptor: int) -> str:
    """ "pid N" from a held lock file; its holder may still be writing it, so try briefly."""
    for _ in range(20):
        text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return f"pid {text}"
        time.sleep(0.01)
    return "pid unknown"
