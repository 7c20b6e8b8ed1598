"""Write and read the policy file: an ordinary `.keras` file plus a small JSON note.

The note (`reinforce_tf.json` inside the `.keras` zip, ignored by Keras) records the env
id and spaces the policy was trained on, so `evaluate` needs no `--env`. Writes go to a
temporary file in the same folder, renamed into place, so a crash never leaves a
truncated policy behind.

Output files (the policy, `best.keras`, and every file written through
`written_atomically`; folders, such as a SavedModel export, through
`folder_written_atomically`) keep these promises:
- a bad path (a folder, a folder that is missing or not writable, a link that loops) is
  refused by `check_output_file` before any work, naming the flag;
- a failed write (disk full, I/O error) leaves the old file with its bytes and no temporary
  file behind;
- overwriting keeps the old file's permission bits; a new file gets 0666 less the umask;
- a symbolic link is followed: the link stays, and the file it points to is replaced
  atomically (the temporary file is made in the target's folder);
- a write killed before it finished (kill -9, a power cut) leaves its temporary, named for
  the path and the process (`_temporary_prefix`); the next write to that path removes it,
  once that process is gone, and puts back a folder it had set aside.
"""

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from reinforce_tf.errors import InputError, TrainingError, error_reason

if TYPE_CHECKING:
    from reinforce_tf.config import TrainConfig

METADATA_NAME = "reinforce_tf.json"

# Text read from a file and quoted in a message is cut to this many characters.
MAX_QUOTED = 200
# Bounds on a `.keras` zip, checked on the sizes its directory declares before any member is
# decompressed (zipfile never inflates a member past its declared size, and one that holds
# more fails its CRC check). Keras writes three members, stored uncompressed; the note is a
# fourth. Its JSON members are a few KiB for a policy; deflate can inflate ~1000×.
MAX_MEMBERS = 64
MAX_JSON_BYTES = 16 * 2**20
MAX_INFLATION = 100  # a member may declare up to 100 × its stored bytes, plus 1 MiB


def save_policy(policy: keras.Model, path: str | os.PathLike, metadata: dict) -> Path:
    """Atomically writes `policy` and `metadata` (JSON-able) to `path` (a .keras file).

    Raises:
        InputError: `path` is refused by `check_save_path`.
        TrainingError: the write failed (e.g. the disk is full); the file at `path`, if
            any, keeps its bytes and no temporary file is left.
    """
    path = Path(path)
    check_save_path(path)
    existed = os.path.exists(path)  # through a link: its target
    try:
        with written_atomically(path) as temporary:
            policy.save(temporary)
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(METADATA_NAME, json.dumps(metadata, indent=2))
    except OSError as error:
        kept = "the existing file is unchanged" if existed else "no file was written"
        raise TrainingError(
            f"could not write the policy to {str(path)!r}: {error_reason(error)}; {kept}"
        ) from error
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` through `written_atomically`."""
    path = Path(path)
    with written_atomically(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `path` to write; on success, renames it into place.

    The file is synced to disk before the rename, so readers (and a crash) see the old file
    or the complete new one, never a partial one. On error the temporary file is removed
    and the old file keeps its bytes; a kill leaves it, for the next write to remove
    (`_remove_stale_temporaries`). The new file keeps the old one's permission bits, or,
    for a new file, gets those a plainly created file would (0666 less the umask). A
    symbolic link at `path` stays: the file it points to is replaced, through a temporary
    file in that file's folder (a rename is atomic only within one file system).

    Raises:
        OSError: the write failed, or `path` is a symbolic link that loops.
    """
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath gives up on a loop and returns a link
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
    _remove_stale_temporaries(target)
    descriptor, temporary = tempfile.mkstemp(
        prefix=_temporary_prefix(target, "tmp"), suffix=target.suffix, dir=target.parent
    )
    os.close(descriptor)
    try:
        yield temporary
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def folder_written_atomically(
    path: str | os.PathLike, *, replaceable: Callable[[Path], bool]
) -> Iterator[str]:
    """Yields a new empty folder beside `path` to fill; on success, puts it at `path`.

    The folder's files are synced to disk before it is renamed into place, so readers (and
    a crash) see the old folder or the complete new one, never a partly written one. A
    folder already at `path` is replaced only when it is empty or `replaceable(folder)`
    (asked again here, as `check_output_folder` asked before the folder was written and it
    may have changed since): it is renamed aside, then removed once the new one is in place.
    For the instant between the two renames there is no folder at `path`; whatever stops the
    write there (an error, Ctrl-C), the old folder is renamed back. On error the temporary
    folder is removed and the old folder stays; a kill leaves both for the next write to
    clean (`_remove_stale_temporaries`). The new folder keeps the old one's permission bits,
    or gets 0777 less the umask. A symbolic link at `path` stays, as in `written_atomically`.

    Raises:
        OSError: the write failed, `path` is a symbolic link that loops, or what is at
            `path` may no longer be replaced (FileExistsError).
    """
    target = Path(os.path.realpath(path))
    if target.is_symlink():
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
    _remove_stale_temporaries(target)
    temporary = tempfile.mkdtemp(prefix=_temporary_prefix(target, "tmp"), dir=target.parent)
    aside = None
    try:
        yield temporary
        _sync_folder(temporary)
        os.chmod(temporary, _mode_for(target, 0o777))
        if os.path.lexists(target):
            if not (_is_empty_folder(target) or replaceable(target)):
                raise FileExistsError(
                    errno.EEXIST,
                    "it became a folder of other files while the new one was written, which is "
                    "not replaced",
                    str(path),
                )
            # A rename onto an empty folder replaces it; `aside` is one, reserved by mkdtemp.
            aside = tempfile.mkdtemp(prefix=_temporary_prefix(target, "old"), dir=target.parent)
            os.replace(target, aside)
        os.replace(temporary, target)
    finally:
        if aside is not None and not os.path.lexists(target):
            os.replace(aside, target)  # the new folder is not in place: the old one goes back
        for leftover in (temporary, aside):
            if leftover is not None and os.path.lexists(leftover):
                shutil.rmtree(leftover, ignore_errors=True)


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _temporary_prefix(target: Path, role: str) -> str:
    """How the temporaries of a write to `target` begin: ".<name>.<role><process id>.", role
    "tmp" for the file or folder being written, "old" for a folder set aside; tempfile adds
    eight random characters (and `written_atomically` the target's suffix)."""
    return f".{target.name}.{role}{os.getpid()}."


def _remove_stale_temporaries(target: Path) -> None:
    """Removes the temporaries beside `target` left by writes to it whose process is gone
    (killed: no cleanup ran), told by their names alone (`_temporary_prefix`); anything else
    is left, as is a temporary of a running process (maybe still writing). A folder such a
    write had set aside goes back to `target` if nothing is there: it is the old folder the
    write was replacing. Best effort: what cannot be removed stays."""
    ours = re.compile(
        rf"\.{re.escape(target.name)}\.(tmp|old)([0-9]{{1,10}})\.[a-z0-9_]{{8}}"
        rf"(?:{re.escape(target.suffix)})?"
    )
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        match = ours.fullmatch(entry.name)
        if match is None or entry.is_symlink() or _running(int(match.group(2))):
            continue
        with contextlib.suppress(OSError):
            if match.group(1) == "old" and not os.path.lexists(target):
                os.replace(entry.path, target)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)


def _running(pid: int) -> bool:
    """Whether a process `pid` exists. Signal 0 is no signal: `kill` only checks."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: another user's process; a pid out of range
        return True
    return True


def _sync_folder(folder: str) -> None:
    """fsync every file and folder under `folder`, the deepest first."""
    for parent, _, files in os.walk(folder, topdown=False):
        for name in [*files, "."]:
            descriptor = os.open(os.path.join(parent, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def _mode_for(target: Path, new: int = 0o666) -> int:
    """The permission bits of the file or folder at `target`, else `new` less the umask."""
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(os.stat(target).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return new & ~umask


def check_output_file(
    path: str | os.PathLike, field: str, suffix: str, role: str | None = None
) -> None:
    """Fails early, before any work, on a path a file could not be written to.

    A symbolic link is judged by the file it points to, as `written_atomically` writes
    there.

    Args:
        field: the flag or config field named in the message.
        suffix: the ending the name must have, such as ".keras".
        role: how the message names the file when it is not `field`'s own value, e.g.
            "'runs/best.keras' (the best policy, kept beside it)"; default: the quoted path.

    Raises:
        InputError: naming `field`, the path, and what is wrong.
    """
    path = Path(path)
    shown = role or repr(str(path))
    if path.suffix != suffix:
        raise InputError(f'must end in "{suffix}"; got {str(path)!r}', field=field)
    target = Path(os.path.realpath(path))
    linked = os.path.islink(path)
    if target.is_symlink():
        raise InputError(f"{shown} is a symbolic link that loops", field=field)
    via = f" (where the link {shown} points)" if linked else ""
    if target.is_dir():
        named = (
            f"{shown} points to the folder {str(target)!r}" if linked else f"{shown} is a folder"
        )
        raise InputError(f'{named}; give a file name ending in "{suffix}"', field=field)
    if os.path.lexists(target) and not target.is_file():
        raise InputError(f"{shown} exists and is not a regular file", field=field)
    _check_parent(target.parent if linked else path.parent, via, field)


def check_output_folder(
    path: str | os.PathLike, field: str, replaceable: Callable[[Path], bool]
) -> None:
    """Fails early, before any work, on a path a folder could not be written to by
    `folder_written_atomically`.

    A symbolic link is judged by the folder it points to.

    Args:
        field: the flag or config field named in the message.
        replaceable: whether an existing, non-empty folder may be replaced (e.g. it holds an
            earlier export); an empty one always may.

    Raises:
        InputError: naming `field`, the path, and what is wrong.
    """
    path = Path(path)
    shown = repr(str(path))
    target = Path(os.path.realpath(path))
    linked = os.path.islink(path)
    if target.is_symlink():
        raise InputError(f"{shown} is a symbolic link that loops", field=field)
    via = f" (where the link {shown} points)" if linked else ""
    # The path itself, or for a link what it points to, named once.
    named = f"{shown} points to {str(target)!r}: it" if linked else shown
    if os.path.lexists(target) and not target.is_dir():
        raise InputError(f"{named} exists and is not a folder; give a folder name", field=field)
    if target.is_dir() and not (_is_empty_folder(target) or replaceable(target)):
        raise InputError(
            f"{named} is a folder of other files, which is not replaced; give a new folder name",
            field=field,
        )
    _check_parent(target.parent if linked else path.parent, via, field)


def _check_parent(folder: Path, via: str, field: str) -> None:
    """The folder an output is created in must exist and be writable."""
    if not os.path.lexists(folder):
        raise InputError(f"folder {str(folder)!r}{via} does not exist", field=field)
    if not folder.is_dir():
        raise InputError(f"{str(folder)!r}{via} is not a folder", field=field)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"folder {str(folder)!r}{via} is not writable", field=field)


def nearest_existing(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists (a link counts, even a dangling one): the
    folder a missing path would be created in."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_save_path(path: str | os.PathLike) -> None:
    """Fails early, before any training, on a path the policy could not be saved to.

    Raises:
        InputError: naming `save_path` and what is allowed.
    """
    check_output_file(path, "save_path", ".keras")


def check_output_paths(config: "TrainConfig") -> None:
    """Fails early, before any training, on any output file (outside the run folder) that
    could not be written: `save_path`, and `best.keras` beside it when evaluating.

    Raises:
        InputError: naming `save_path` (the flag that places both files).
    """
    check_save_path(config.save_path)
    if config.eval_every:
        best = config.best_path
        role = f"{str(best)!r} (the best evaluated policy, kept beside it)"
        check_output_file(best, "save_path", ".keras", role=role)


def load_policy(path: str | os.PathLike) -> keras.Model:
    """Loads a policy file; the same as `keras.saving.load_model(path)`, with clear errors.

    A `.keras` file's zip directory is checked first (`_keras_zip_problem`), so a zip bomb
    is refused before anything is decompressed; the weights loaded must be finite.

    Raises:
        InputError: the file is missing or not a valid `.keras` model, or its weights are
            not all finite.
    """
    path = Path(path)
    shown = repr(str(path))
    if path.is_dir():
        raise InputError(f"{shown} is a folder, not a .keras file", field="policy")
    if not path.is_file():
        raise InputError(f"no such file: {shown}", field="policy")
    if path.suffix not in (".keras", ".h5"):
        raise InputError(
            f'must be a .keras file (or a legacy Keras ".h5" one); got {shown}', field="policy"
        )
    problem = _keras_zip_problem(path) if path.suffix == ".keras" else None
    if problem:
        raise InputError(f"{shown} is not a readable .keras model file: {problem}", field="policy")
    try:
        policy = keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 (Keras raises many types for a damaged file)
        reason = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{shown} is not a readable .keras model file ({printable(reason)})", field="policy"
        ) from None
    for weight in policy.weights:
        if not np.isfinite(weight.numpy()).all():
            raise InputError(
                f"{shown} has non-finite weights (NaN or infinite) in "
                f"{printable(weight.path)!r}: its actions would be undefined",
                field="policy",
            )
    return policy


def _keras_zip_problem(path: Path) -> str | None:
    """What makes `path` something other than a whole `.keras` zip; None if nothing."""
    try:
        if not zipfile.is_zipfile(path):
            return "it is not a zip archive (damaged, cut short, or another kind of file)"
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return "the zip archive has no config.json (it is not a saved Keras model)"
            too_large = _members_too_large(archive.infolist())
            if too_large:
                return too_large
            damaged = archive.testzip()  # reads every member and checks its CRC
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        return f"the zip archive is damaged ({printable(error_reason(error))})"
    if damaged is not None:
        return f"the zip archive is damaged (member {printable(damaged)!r} fails its CRC check)"
    return None


def _members_too_large(members: list[zipfile.ZipInfo]) -> str | None:
    """What makes a `.keras` zip's `members` more than a policy file holds, by the sizes
    they declare (`MAX_MEMBERS`, `MAX_JSON_BYTES`, `MAX_INFLATION`); None if nothing."""
    if len(members) > MAX_MEMBERS:
        return (
            f"it has {len(members):,} members (a policy file has 4; at most {MAX_MEMBERS} are read)"
        )
    for member in members:
        name, size = printable(member.filename), member.file_size
        if member.filename.endswith(".json") and size > MAX_JSON_BYTES:
            return (
                f"its member {name!r} declares {size:,} bytes (at most {MAX_JSON_BYTES:,} for a "
                "JSON member)"
            )
        if size > MAX_INFLATION * member.compress_size + 2**20:
            return (
                f"its member {name!r} declares {size:,} bytes from {member.compress_size:,} "
                f"stored (at most {MAX_INFLATION} times as many, plus 1 MiB)"
            )
    return None


def load_metadata(path: str | os.PathLike) -> dict:
    """The JSON note saved with a policy; {} for a .keras file written by someone else (or
    a note that is not a JSON object, or larger than `MAX_JSON_BYTES`). Its text is as read:
    quote it through `printable`."""
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo(METADATA_NAME).file_size > MAX_JSON_BYTES:
                return {}
            note = json.loads(archive.read(METADATA_NAME))
    except (KeyError, zipfile.BadZipFile, ValueError, OSError):  # ValueError: bad JSON, UTF-8
        return {}
    return note if isinstance(note, dict) else {}


def printable(text: object, limit: int = MAX_QUOTED) -> str:
    """`text` (e.g. read from a file) made safe for a one-line message.

    Unprintable characters (ANSI escape codes, newlines, bidi overrides) are written as in
    a Python literal (an ESC character becomes the four characters `\\x1b`), and the
    result is cut to `limit` characters, the last one "…".
    """
    escaped = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text)
    )
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


@contextlib.contextmanager
def writing_in(logdir: str):
    """A context in which an `OSError` (no permission, read-only, disk full) while writing in
    the run folder `logdir` becomes a one-line `InputError` naming --logdir."""
    try:
        yield
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        raise InputError(
            f"cannot write in {logdir!r} ({error.strerror or error}{where})", field="logdir"
        ) from None
