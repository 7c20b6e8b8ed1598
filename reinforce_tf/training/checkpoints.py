"""A run's checkpoints: everything a resumed run needs to go on, and the newest intact one.

A checkpoint (`RUN/checkpoints/ckpt-<env steps>`) holds the policy (with any statistics kept
inside it), the value net when there is one, their optimizers' state, the actor's
`tf.random.Generator`, the step and episode counters, the last 100 returns (the stop rule's
window) and the best evaluation so far; and, not restored, a record of the fields of the
run's config.json that define the run (`run_folder.run_record`). The envs' random state is
not saved: the trainer reseeds the envs from (seed, interval number) at every checkpoint
interval, so resuming from a periodic checkpoint replays the uninterrupted run. TensorFlow
writes a checkpoint's files first and then, atomically, the `checkpoint` index naming it, so
a crash mid-save leaves the previous checkpoint in force.

Resume never starts over on a folder holding a run. It restores the newest intact
checkpoint: the one the index names or, when the index is damaged or missing, the newest
`ckpt-N` file; a damaged one (every tensor is read and its checksum checked, names, shapes
and dtypes compared with the run's, before anything is assigned) is skipped for the next
older, and the skip is reported. With checkpoint files but none intact, or episodes but no
checkpoint, resume refuses; so it does when config.json differs from the record of the
checkpoint it would restore (edited since: another experiment). Checkpoints written before
the record existed resume unchecked.
"""

import collections
import contextlib
import dataclasses
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from reinforce_tf.errors import InputError, TrainingError, error_reason
from reinforce_tf.training.episode_log import EPISODES_NAME, read_rows
from reinforce_tf.training.run_folder import (
    CHECKPOINT_FOLDER,
    check_same_run,
    parse_config_json,
    run_record,
)
from reinforce_tf.training.saving import write_text_atomically, writing_in

# The index `tf.train.CheckpointManager` keeps in CHECKPOINT_FOLDER: which ckpt-N is newest.
INDEX_NAME = "checkpoint"
KEEP_CHECKPOINTS = 3
# A line of the index (protobuf text format): `model_checkpoint_path: "ckpt-300"`, `…: 1.7e9`.
_INDEX_LINE = re.compile(r'(\w+): (?:"((?:[^"\\]|\\.)*)"|[-+0-9.eE]+|[-+]?inf|nan)')
_CHECKPOINT_NAME = re.compile(r"ckpt-(\d+)")
# The checkpoint's record of the run's config (a string tensor), as the reader names it.
_RECORD = "run_config/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass
class Counters:
    """Where a run stands.

    Attributes:
        steps: env steps of counted episodes.
        episodes: finished episodes.
        recent: the last (up to) `window` returns, oldest first.
        best_eval: the best mean evaluation return so far (-inf before any).
    """

    steps: int = 0
    episodes: int = 0
    recent: collections.deque = dataclasses.field(default_factory=collections.deque)
    best_eval: float = -math.inf


class RunCheckpoint:
    """Saves and restores a run's state with `tf.train.CheckpointManager`.

    Args:
        folder: the run folder; checkpoints go to `folder/checkpoints`.
        agent: has `policy` and `optimizer`, and may have `value` and `value_optimizer`.
        rng: the actor's random generator.
        window: the length of the stop rule's window of recent returns.
        worker_rngs: the act generators of workers 1 … N − 1 with `--workers` (worker 0's
            is `rng`), saved as `worker_rngs`.

    Attributes:
        note: after `restore`, a line saying which damaged checkpoints (or index) were
            skipped and which one the run resumed from; None when nothing was skipped.
    """

    def __init__(self, folder: Path, agent, rng: tf.random.Generator, window: int, worker_rngs=()):
        self._window = window
        self._steps = tf.Variable(0, dtype=tf.int64)
        self._episodes = tf.Variable(0, dtype=tf.int64)
        self._recent = tf.Variable(tf.zeros([window], tf.float64))  # [window], oldest first
        self._best_eval = tf.Variable(-math.inf, dtype=tf.float64)
        objects = {
            "policy": agent.policy,
            "optimizer": agent.optimizer,
            "rng": rng,
            "steps": self._steps,
            "episodes": self._episodes,
            "recent": self._recent,
            "best_eval": self._best_eval,
        }
        for name in ("value", "value_optimizer"):
            if getattr(agent, name, None) is not None:
                objects[name] = getattr(agent, name)
        if worker_rngs:
            objects["worker_rngs"] = list(worker_rngs)
        # What restore loads: the state alone, which checkpoints from before the record
        # hold whole. What save writes: the state and the record (as _RECORD).
        self._state = tf.train.Checkpoint(**objects)
        record = tf.Variable(run_record(folder), dtype=tf.string)
        self._checkpoint = tf.train.Checkpoint(**objects, run_config=record)
        self._run_folder = Path(folder)
        self.folder = self._run_folder / CHECKPOINT_FOLDER
        # Opened by `restore` (after it has repaired the index) or by the first `save`.
        self._manager = None
        self.note = None

    @property
    def latest(self) -> str | None:
        """The path prefix of the newest checkpoint, or None."""
        return self._manager.latest_checkpoint if self._manager else None

    def save(self, counters: Counters) -> str:
        """Writes a checkpoint named by the step counter; returns its path prefix.

        Raises:
            TrainingError: the checkpoint could not be written (disk full, …); its partial
                files are removed, and the message names the newest checkpoint kept.
        """
        recent = np.zeros(self._window)
        recent[: len(counters.recent)] = list(counters.recent)
        self._steps.assign(counters.steps)
        self._episodes.assign(counters.episodes)
        self._recent.assign(recent)
        self._best_eval.assign(counters.best_eval)
        if self._manager is None:
            self._manager = self._open_manager()
        try:
            return self._manager.save(checkpoint_number=counters.steps)
        except (OSError, tf.errors.OpError) as error:
            # The manager's bookkeeping may name the failed checkpoint; the index on disk
            # (replaced atomically, so old or new) is the truth.
            self._manager = None
            kept = self._discard_unpublished(counters.steps)
            kept_text = (
                f"the newest intact checkpoint, {kept}, is kept"
                if kept
                else "no checkpoint had been written before"
            )
            raise TrainingError(
                f"could not write checkpoint ckpt-{counters.steps} in {str(self.folder)!r} "
                f"({error_reason(error)}); nothing half-written is left and {kept_text}; "
                "fix the cause, then continue with --resume"
            ) from None

    def restore(self) -> Counters:
        """Loads the newest intact checkpoint into the models, optimizers and generator.

        The newest is the one the index names or, when the index is damaged or missing, the
        newest `ckpt-N` on disk. A damaged one is skipped for the next older (`note` says
        so), and the index is rewritten to name the one loaded. Each candidate is checked
        whole before anything is assigned: every tensor read (checksums), every variable of
        the run present with its shape and dtype; so a damaged checkpoint never leaves a mix
        of its values and others.

        Returns:
            The counters saved with it; zero counters (and nothing loaded) when the run
            stopped before its first checkpoint and its first episode.

        Raises:
            InputError: (field resume) checkpoint files but none intact; episodes in
                episodes.csv but no checkpoint, where resuming would start over and discard
                them; or config.json differs from the config the checkpoint records.
        """
        self.note = None
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(
                f"{str(self.folder)!r} is a file, not the run's checkpoint folder; the run "
                "cannot be resumed",
                field="resume",
            )
        on_disk = _checkpoints_on_disk(self.folder)
        index_number, index_problem = _read_index(self.folder)
        if index_problem is None:
            candidates = [number for number in on_disk if number <= index_number]
            problems = (
                [] if index_number in on_disk else [f"checkpoint ckpt-{index_number} is missing"]
            )
        elif on_disk or (self.folder / INDEX_NAME).exists():
            candidates = on_disk
            problems = [f"the index {CHECKPOINT_FOLDER}/{INDEX_NAME} {index_problem}"]
        else:
            self._refuse_to_start_over()
            self._manager = self._open_manager()
            return Counters()
        chosen = self._restore_newest_intact(candidates[::-1], problems)
        if chosen is None:
            raise InputError(
                f"no intact checkpoint in {str(self.folder)!r} "
                f"({'; '.join(problems or ['no ckpt-<steps> files'])}); the run cannot be "
                "resumed: restore the checkpoints or start a new run in another folder",
                field="resume",
            )
        if problems:
            self.note = f"{'; '.join(problems)}; resuming from ckpt-{chosen}"
        if index_problem is not None or chosen != index_number:
            self._write_index([number for number in on_disk if number <= chosen])
        self._manager = self._open_manager()
        episodes = int(self._episodes.numpy())
        count = min(episodes, self._window)
        return Counters(
            steps=int(self._steps.numpy()),
            episodes=episodes,
            recent=collections.deque(self._recent.numpy()[:count], maxlen=self._window),
            best_eval=float(self._best_eval.numpy()),
        )

    def _open_manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(
            self._checkpoint, self.folder, max_to_keep=KEEP_CHECKPOINTS
        )

    def _refuse_to_start_over(self) -> None:
        """No checkpoint at all: fine for a run stopped before its first episode, not after."""
        episodes = len(read_rows(self._run_folder / EPISODES_NAME))
        if episodes:
            raise InputError(
                f"{str(self._run_folder)!r} holds {episodes:,} episodes in {EPISODES_NAME} but "
                f"no checkpoint ({CHECKPOINT_FOLDER}/ is missing or empty); resuming would "
                "start over and discard them: restore the checkpoints or start a new run in "
                "another folder",
                field="resume",
            )

    def _restore_newest_intact(self, candidates: list[int], problems: list[str]) -> int | None:
        """Restores the first intact checkpoint of `candidates` (newest first); returns its
        number, or None. Appends a line per damaged one to `problems`."""
        with tempfile.TemporaryDirectory(prefix="reinforce_tf_restore_") as scratch:
            # The run's own state, written aside: what an intact checkpoint must hold, and
            # what to put back should a restore fail after all.
            try:
                before = self._state.write(os.path.join(scratch, "before"))
            except (OSError, tf.errors.OpError) as error:
                raise TrainingError(
                    f"cannot check the checkpoints of {str(self.folder)!r}: writing the "
                    f"run's state to {scratch!r} failed ({error_reason(error)})"
                ) from None
            expected = _variables(before)
            for number in candidates:
                prefix = str(self.folder / f"ckpt-{number}")
                # Before the state is compared: an edited config.json may change its shapes.
                record, reason = _recorded_config(prefix)
                if record is not None:
                    check_same_run(self._run_folder, record)
                reason = reason or _damage(prefix, expected)
                if reason is None:
                    try:
                        # Partial: the record stays this run's (and an older run's
                        # checkpoint has none).
                        status = self._state.restore(prefix).expect_partial()
                        status.assert_existing_objects_matched()
                        return number
                    except Exception as error:  # noqa: BLE001 (as in _damage)
                        self._state.read(before).assert_existing_objects_matched()
                        reason = error_reason(error)
                problems.append(f"checkpoint ckpt-{number} is damaged ({reason})")
        return None

    def _write_index(self, numbers: list[int]) -> None:
        """Rewrites the index to list ckpt-N for `numbers` (ascending), the last as newest.

        Each gets its file's time as timestamp, after `last_preserved_timestamp`, so the
        manager keeps managing them (and deletes the oldest past KEEP_CHECKPOINTS).
        """
        with writing_in(str(self._run_folder)):
            stamps = [(self.folder / f"ckpt-{n}.index").stat().st_mtime for n in numbers]
            lines = [f'model_checkpoint_path: "ckpt-{numbers[-1]}"']
            lines += [f'all_model_checkpoint_paths: "ckpt-{number}"' for number in numbers]
            lines += [f"all_model_checkpoint_timestamps: {stamp!r}" for stamp in stamps]
            lines.append(f"last_preserved_timestamp: {min(stamps) - 1.0!r}")
            write_text_atomically(self.folder / INDEX_NAME, "\n".join(lines) + "\n")

    def _discard_unpublished(self, number: int) -> str | None:
        """After a failed save of ckpt-`number`: removes its files unless the index already
        names it; returns the path prefix of the newest checkpoint the index names, or None."""
        index_number, problem = _read_index(self.folder)
        if problem is None and index_number == number:
            return str(self.folder / f"ckpt-{number}")
        leftovers = [
            *self.folder.glob(f"ckpt-{number}.*"),
            *self.folder.glob(f"ckpt-{number}_temp*"),
        ]
        for path in leftovers:
            with contextlib.suppress(OSError):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        return None if problem else str(self.folder / f"ckpt-{index_number}")


def _checkpoints_on_disk(folder: Path) -> list[int]:
    """The step numbers N of the ckpt-N in `folder` that have an index file, ascending."""
    if not folder.is_dir():
        return []
    numbers = []
    for path in folder.glob("ckpt-*.index"):
        match = _CHECKPOINT_NAME.fullmatch(path.name.removesuffix(".index"))
        if match:
            numbers.append(int(match[1]))
    return sorted(numbers)


def _read_index(folder: Path) -> tuple[int | None, str | None]:
    """(N, None) when `folder/checkpoint` names ckpt-N; else (None, what is wrong with it)."""
    path = folder / INDEX_NAME
    if not path.exists():
        return None, "is missing"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, f"cannot be read ({error_reason(error)})"
    latest = None
    for line in text.splitlines():
        match = _INDEX_LINE.fullmatch(line.strip())
        if line.strip() and match is None:
            return None, "is not a checkpoint index"
        if match and match[1] == "model_checkpoint_path":
            latest = match[2]
    if latest is None:
        return None, "names no checkpoint"
    # The manager writes names relative to the folder; keep only the name either way.
    match = _CHECKPOINT_NAME.fullmatch(os.path.basename(latest))
    if match is None:
        return None, f"names {latest!r}, not a checkpoint ckpt-<steps>"
    return int(match[1]), None


def _variables(prefix: str) -> dict[str, tuple[list[int], tf.DType]]:
    """{name: (shape, dtype)} of the variables saved in checkpoint `prefix`."""
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    return {
        name: (shape, dtypes[name]) for name, shape in reader.get_variable_to_shape_map().items()
    }


def _recorded_config(prefix: str) -> tuple[dict | None, str | None]:
    """The config checkpoint `prefix` records (None in one from before the record, or one
    recorded without a config.json), or what is wrong with the record; a record that cannot
    be read at all is left to `_damage`, which reads every tensor."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        data = reader.get_tensor(_RECORD) if reader.has_tensor(_RECORD) else b""
    except Exception:  # noqa: BLE001 (as in _damage)
        return None, None
    if not data:
        return None, None
    try:
        return parse_config_json(data), None
    except ValueError as error:
        return None, f"its record of the run's config {error}"


def _damage(prefix: str, expected: dict[str, tuple[list[int], tf.DType]]) -> str | None:
    """What is wrong with checkpoint `prefix`, or None when it holds every variable of
    `expected` with its shape and dtype, and every tensor reads back with a good checksum."""
    try:
        found = _variables(prefix)
        for name, (shape, dtype) in sorted(expected.items()):
            if name not in found:
                return f"it lacks {name}"
            if found[name] != (shape, dtype):
                got_shape, got_dtype = found[name]
                return f"{name} is {got_dtype.name} {got_shape}, this run's is {dtype.name} {shape}"
        reader = tf.train.load_checkpoint(prefix)
        for name in found:
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 (TF raises OpError, IndexError, ValueError, …)
        return error_reason(error)
    return None
