"""Write and read the policy file: an ordinary `.keras` file plus a small JSON note.

The note (`reinforce_tf.json` inside the `.keras` zip, ignored by Keras) records the env
id and spaces the policy was trained on, so `evaluate` needs no `--env`. Writes go to a
temporary file in the same folder, renamed into place, so a crash never leaves a
truncated policy behind.
"""

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import keras

from reinforce_tf.errors import InputError

METADATA_NAME = "reinforce_tf.json"


def save_policy(policy: keras.Model, path: str | os.PathLike, metadata: dict) -> Path:
    """Atomically writes `policy` and `metadata` (JSON-able) to `path` (a .keras file).

    Raises:
        InputError: the folder does not exist or the name does not end in ".keras".
    """
    path = Path(path)
    check_save_path(path)
    with written_atomically(path) as temporary:
        policy.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_NAME, json.dumps(metadata, indent=2))
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
    or the complete new one, never a partial one. On error the temporary file is removed.
    It gets the permissions a plainly created file would (0666 less the umask).
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent
    )
    os.close(descriptor)
    try:
        yield temporary
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def check_save_path(path: str | os.PathLike) -> None:
    """Fails early, before any training, on a path the policy could not be saved to.

    Raises:
        InputError: naming `save_path` and what is allowed.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise InputError(f'must end in ".keras"; got {str(path)!r}', field="save_path")
    if not path.parent.is_dir():
        raise InputError(f"folder {str(path.parent)!r} does not exist", field="save_path")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"folder {str(path.parent)!r} is not writable", field="save_path")


def load_policy(path: str | os.PathLike) -> keras.Model:
    """Loads a policy file; the same as `keras.saving.load_model(path)`, with clear errors.

    Raises:
        InputError: the file is missing or not a valid `.keras` model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {str(path)!r}", field="policy")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 (Keras raises many types for a damaged file)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"{str(path)!r} is not a readable .keras model file ({reason})", field="policy"
        ) from None


def load_metadata(path: str | os.PathLike) -> dict:
    """The JSON note saved with a policy; {} for a .keras file written by someone else."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(METADATA_NAME))
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return {}
