"""The run folder: its config, its lock, and the checks before a run starts or resumes.

A run folder (`TrainConfig.logdir`) holds:
    config.json       the run's config, written once when the run starts;
    checkpoints/      `tf.train.CheckpointManager` files `ckpt-<env steps>` and their index
                      `checkpoints/checkpoint`;
    episodes.csv      one row per finished episode (`episode_log.py`);
    evaluations.csv   one row per evaluation during training (`episode_log.py`);
    events.out.tfevents.*  TensorBoard scalars (`summaries.py`);
    lock              the pid of the trainer using the folder (`RunLock`).

The checkpoints themselves are `checkpoints.py`'s; each records the fields of config.json
that define the run (`run_record`), so a config.json edited after them is refused on resume.

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

from reinforce_tf.config import MAX_JSON_DEPTH, TrainConfig, json_depth, quoted
from reinforce_tf.errors import InputError
from reinforce_tf.training.episode_log import EPISODES_NAME, EVALUATIONS_NAME
from reinforce_tf.training.saving import (
    nearest_existing,
    printable,
    write_text_atomically,
    writing_in,
)

CONFIG_NAME = "config.json"
CHECKPOINT_FOLDER = "checkpoints"
LOCK_NAME = "lock"
# config.json is read only up to this size: a run's config takes a few KB (--env_kwargs at
# most 64 KiB), and it may nest one level more than --env_kwargs.
MAX_CONFIG_BYTES = 2**20
MAX_CONFIG_DEPTH = MAX_JSON_DEPTH + 1
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
# The fields a resume may change, as messages list them (resume and logdir go without saying).
_RESUMABLE_TEXT = ", ".join(sorted(RESUMABLE_FIELDS - {"resume", "logdir"}))
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
# Messages name the fields that differ, up to this many.
_SHOWN_FIELDS = 3


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
        with open(path, "rb") as file:
            saved = parse_config_json(file.read(MAX_CONFIG_BYTES + 1))
    except OSError as error:
        raise damaged(f"cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise damaged(str(error)) from None
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    saved = {**{k: v for k, v in ADDED_FIELDS.items() if k not in saved}, **saved}
    unknown = [name for name in saved if name not in fields]
    missing = [name for name in fields if name not in saved]
    if unknown:
        raise damaged(
            f"has unknown field{'s' * (len(unknown) > 1)} {_listed(map(quoted, unknown))}; "
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
        raise damaged(f"has a bad value ({printable(error)})") from None
    return saved


def parse_config_json(data: bytes) -> dict:
    """The JSON object in `data` (config.json, or a checkpoint's record of it), its size and
    depth bounded before it is parsed.

    Raises:
        ValueError: saying what is wrong, to follow the file's name: larger than
            MAX_CONFIG_BYTES, not UTF-8, nested deeper than MAX_CONFIG_DEPTH, not JSON, or
            not a JSON object.
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError("is larger than 1 MiB (a run's config takes a few KB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    depth = json_depth(text)
    if depth > MAX_CONFIG_DEPTH:
        raise ValueError(f"nests {depth:,} levels deep (at most {MAX_CONFIG_DEPTH})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(  # noqa: TRY004 (one exception type carries every reason)
            f"must hold a JSON object of config fields; got a JSON {_json_kind(value)}"
        )
    return value


def _listed(items, separator: str = ", ") -> str:
    """The first _SHOWN_FIELDS of `items` joined by `separator`, then how many more."""
    items = list(items)
    more = len(items) - _SHOWN_FIELDS
    return separator.join(items[:_SHOWN_FIELDS]) + (f" and {more:,} more" if more > 0 else "")


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
            raise InputError(
                f"the run in {config.logdir!r} has {field}={quoted(saved.get(field))}, this one "
                f"{quoted(value)}; only {_RESUMABLE_TEXT} may change on resume",
                field="resume",
            )
    _check_writable(config.logdir)


def run_record(logdir: str | os.PathLike) -> str:
    """What each checkpoint of the run in `logdir` records of its config: the fields of its
    config.json outside RESUMABLE_FIELDS, as JSON; "" for a folder without config.json.

    Raises:
        InputError: config.json is damaged (as `load_run_config`).
    """
    if not (Path(logdir) / CONFIG_NAME).is_file():
        return ""
    saved = _saved_json(str(logdir))
    defining = {field: value for field, value in saved.items() if field not in RESUMABLE_FIELDS}
    return json.dumps(defining, sort_keys=True)


def check_same_run(logdir: str | os.PathLike, record: dict) -> None:
    """Checks config.json of `logdir` against `record`, what a checkpoint recorded of the
    config it was made with (`run_record`; a field added since reads as ADDED_FIELDS says).

    Raises:
        InputError: (field resume) naming the fields where config.json, edited since the
            checkpoint, differs outside RESUMABLE_FIELDS.
    """
    saved = _saved_json(str(logdir))
    record = {**ADDED_FIELDS, **record}
    differ = [
        field
        for field, value in saved.items()
        if field not in RESUMABLE_FIELDS and record.get(field, value) != value
    ]
    if differ:
        now = _listed((f"{field}={quoted(saved[field])}" for field in differ), " and ")
        made = _listed((f"{field}={quoted(record[field])}" for field in differ), " and ")
        raise InputError(
            f"{str(Path(logdir) / CONFIG_NAME)!r} has {now}, but the run's checkpoints were made "
            f"with {made}; put it back or start a new run in another folder (only "
            f"{_RESUMABLE_TEXT} may change on resume)",
            field="resume",
        )


def _check_writable(logdir: str) -> None:
    """Raises `InputError` (field logdir) if the run could not write in or create `logdir`."""
    folder = Path(logdir)
    existing = nearest_existing(folder)
    if not existing.is_dir():
        where = "" if existing == folder else f"cannot create {logdir!r}: "
        raise InputError(f"{where}{str(existing)!r} {_not_a_folder(existing)}", field="logdir")
    paths = [existing]
    if existing == folder:
        paths += [folder / CHECKPOINT_FOLDER, folder / EPISODES_NAME, folder / LOCK_NAME]
    for path in paths:
        mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
        if path.exists() and not os.access(path, mode):
            what = "cannot be created" if existing != folder else "cannot be written"
            raise InputError(f"{logdir!r} {what}: {str(path)!r} is not writable", field="logdir")


def _not_a_folder(path: Path) -> str:
    """What the existing `path`, which is no folder, is: a file, or a link to nothing."""
    if not path.is_symlink():
        return "is a file, not a folder"
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath gives up on a loop and returns a link
        return "is a symbolic link that loops"
    return f"is a symbolic link to {str(target)!r}, which does not exist"


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
