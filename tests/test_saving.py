"""Output files: paths refused up front, modes and links kept, failed writes, damaged files."""

import errno
import os
import stat
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from reinforce_tf import InputError, TrainConfig, build_policy, train
from reinforce_tf.errors import TrainingError
from reinforce_tf.training.saving import (
    check_output_file,
    check_output_folder,
    check_output_paths,
    check_save_path,
    folder_written_atomically,
    load_metadata,
    load_policy,
    printable,
    save_policy,
    write_text_atomically,
    written_atomically,
)

BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def small_policy(seed: int = 0):
    return build_policy(BOX4, gym.spaces.Discrete(2), (3,), seed=seed)


def leftovers(folder) -> list[str]:
    """Temporary files `written_atomically` would leave: hidden names."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# A folder at the save path was found only when saving, after the whole run.


def test_save_path_naming_a_folder_is_refused_up_front(tmp_path):
    (tmp_path / "x.keras").mkdir()
    with pytest.raises(InputError) as error:
        check_save_path(tmp_path / "x.keras")
    assert str(error.value) == (
        f'save_path: {str(tmp_path / "x.keras")!r} is a folder; give a file name ending in ".keras"'
    )
    # A link to a folder, too, as the write would follow it.
    (tmp_path / "link.keras").symlink_to(tmp_path / "x.keras")
    with pytest.raises(InputError, match="link.keras' points to the folder .*x.keras'"):
        check_save_path(tmp_path / "link.keras")
    # The parent is a file, not a folder.
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match=r"save_path: '.*file' is not a folder$"):
        check_save_path(tmp_path / "file" / "p.keras")


def test_every_output_path_is_checked_before_training(tmp_path):
    # best.keras beside save_path is written only when evaluating: a folder there is an
    # error then, and only then, named through the flag that places it.
    (tmp_path / "best.keras").mkdir()
    save_path = str(tmp_path / "policy.keras")
    check_output_paths(TrainConfig(save_path=save_path))
    with pytest.raises(InputError) as error:
        check_output_paths(TrainConfig(save_path=save_path, eval_every=1000))
    assert str(error.value) == (
        f"save_path: {str(tmp_path / 'best.keras')!r} (the best evaluated policy, kept beside "
        'it) is a folder; give a file name ending in ".keras"'
    )
    # train() checks it before anything is played or written.
    with pytest.raises(InputError, match="the best evaluated policy"):
        train(TrainConfig(save_path=save_path, eval_every=1000, total_steps=2000), progress=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]


def test_train_script_refuses_a_folder_at_save_path_before_training(script, tmp_path):
    (tmp_path / "x.keras").mkdir()
    done = script("train.py", "--save_path=x.keras", "--total_steps=20000", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --save_path: 'x.keras' is a folder; give a file name ending in \".keras\""
    )
    assert [p.name for p in tmp_path.iterdir()] == ["x.keras"]  # no run folder, nothing
    assert list((tmp_path / "x.keras").iterdir()) == []


# Overwriting widened a 0600 file to 0644 and replaced a link by a plain file.


def test_overwriting_keeps_the_file_mode(tmp_path):
    path = tmp_path / "policy.keras"
    previous = os.umask(0o022)  # a new file would be 0666 & ~0022 = 0644
    try:
        save_policy(small_policy(), path, {})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o600)
        save_policy(small_policy(seed=1), path, {"env": "CartPole-v1"})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_metadata(path) == {"env": "CartPole-v1"}  # it is the new file
    assert leftovers(tmp_path) == []


def test_a_symlink_at_the_save_path_is_written_through(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "here").mkdir()
    target = tmp_path / "store" / "real.keras"
    link = tmp_path / "here" / "policy.keras"
    save_policy(small_policy(), target, {"which": "old"})
    target.chmod(0o640)
    link.symlink_to(os.path.relpath(target, link.parent))
    save_policy(small_policy(seed=1), link, {"which": "new"})
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert load_metadata(target) == {"which": "new"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    np.testing.assert_allclose(
        load_policy(link).get_weights()[0], small_policy(seed=1).get_weights()[0]
    )
    assert leftovers(tmp_path / "store") == leftovers(tmp_path / "here") == []
    # A dangling link creates its target, like a shell redirection.
    (tmp_path / "here" / "new.keras").symlink_to(tmp_path / "store" / "made.keras")
    save_policy(small_policy(), tmp_path / "here" / "new.keras", {})
    assert (tmp_path / "store" / "made.keras").is_file()
    # Text files written atomically follow links the same way.
    (tmp_path / "here" / "notes.txt").symlink_to(tmp_path / "store" / "notes.txt")
    write_text_atomically(tmp_path / "here" / "notes.txt", "hello\n")
    assert (tmp_path / "store" / "notes.txt").read_text() == "hello\n"
    assert (tmp_path / "here" / "notes.txt").is_symlink()


def test_links_that_loop_or_lead_nowhere_are_refused(tmp_path):
    loop = tmp_path / "loop.keras"
    loop.symlink_to(tmp_path / "loop.keras")
    with pytest.raises(
        InputError, match=r"save_path: '.*loop.keras' is a symbolic link that loops"
    ):
        check_save_path(loop)
    dangling = tmp_path / "dangling.keras"
    dangling.symlink_to(tmp_path / "missing" / "p.keras")
    with pytest.raises(
        InputError,
        match=r"save_path: folder '.*missing' \(where the link '.*dangling.keras' points\) "
        r"does not exist$",
    ):
        check_save_path(dangling)


# Disk full while saving was a traceback.


def test_disk_full_while_saving_is_one_line_and_keeps_the_old_bytes(tmp_path, monkeypatch):
    path = tmp_path / "policy.keras"
    save_policy(small_policy(), path, {"which": "old"})
    old = path.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zipfile.ZipFile, "writestr", no_space)  # inside the write
    with pytest.raises(TrainingError) as error:
        save_policy(small_policy(seed=1), path, {"which": "new"})
    assert str(error.value) == (
        f"could not write the policy to {str(path)!r}: No space left on device; the existing "
        "file is unchanged"
    )
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["policy.keras"]  # no temporary file


# A damaged .keras file was reported as "File not found".


def damaged_files(tmp_path):
    good = save_policy(small_policy(), tmp_path / "good.keras", {})
    data = good.read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    # Corrupt the stored bytes of the first member, leaving the zip's directory intact.
    with zipfile.ZipFile(good) as archive:
        first = archive.infolist()[0]
    start = first.header_offset + 30 + len(first.filename) + len(first.extra)
    for i in range(start, start + min(first.compress_size, 8)):
        flipped[i] ^= 0xFF
    crc = tmp_path / "crc.keras"
    crc.write_bytes(bytes(flipped))
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    return {
        cut: "it is not a zip archive (damaged, cut short, or another kind of file)",
        crc: "the zip archive is damaged (",
        other_zip: "the zip archive has no config.json (it is not a saved Keras model)",
    }


def test_damaged_policy_files_say_what_is_wrong(tmp_path):
    for path, reason in damaged_files(tmp_path).items():
        with pytest.raises(InputError) as error:
            load_policy(path)
        message = str(error.value)
        assert message.startswith(f"policy: {str(path)!r} is not a readable .keras model file: ")
        assert reason in message and "not found" not in message and "\n" not in message
    (tmp_path / "folder.keras").mkdir()
    with pytest.raises(InputError, match=r"folder.keras' is a folder, not a .keras file$"):
        load_policy(tmp_path / "folder.keras")
    (tmp_path / "policy.zip").write_bytes(b"")
    with pytest.raises(
        InputError, match=r'policy: must be a .keras file \(or a legacy Keras ".h5"'
    ):
        load_policy(tmp_path / "policy.zip")


# Text from files went raw into one-line messages.


def test_printable_escapes_control_characters_and_caps_length():
    assert printable("CartPole-v1") == "CartPole-v1"
    assert printable("a\x1b[31mb\nc\u202e") == "a\\x1b[31mb\\nc\\u202e"
    assert printable("é✓") == "é✓"  # printable non-ASCII stays
    assert printable("x" * 300) == "x" * 199 + "…"
    assert len(printable("\x00" * 300, limit=50)) == 50


def test_a_note_that_is_not_a_json_object_is_no_note(tmp_path):
    path = save_policy(small_policy(), tmp_path / "p.keras", [1, 2])
    assert load_metadata(path) == {}
    undecodable = tmp_path / "q.keras"
    with zipfile.ZipFile(undecodable, "w") as archive:
        archive.writestr("reinforce_tf.json", b"\xff\xfe{")
    assert load_metadata(undecodable) == {}


def test_output_file_checks_name_the_flag(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(InputError, match=r"^out: '.*x.png' is a folder; give a file name"):
        check_output_file(tmp_path / "x.png", "out", ".png")
    with pytest.raises(InputError, match=r"^out: must end in \".png\"; got '.*x.jpg'$"):
        check_output_file(tmp_path / "x.jpg", "out", ".png")
    check_output_file(tmp_path / "y.png", "out", ".png")  # a new file in a writable folder


# Folders (a SavedModel export) are written as files are: whole or not at all.


def test_a_folder_is_replaced_whole_keeping_its_mode_and_links(tmp_path):
    (tmp_path / "store").mkdir()
    real = tmp_path / "store" / "model"
    with folder_written_atomically(real, replaceable=always) as temporary:
        (Path(temporary) / "a.txt").write_text("old")
    real.chmod(0o750)
    link = tmp_path / "model"
    link.symlink_to(real)
    with (
        pytest.raises(RuntimeError),
        folder_written_atomically(link, replaceable=always) as temporary,
    ):
        (Path(temporary) / "b.txt").write_text("half")
        raise RuntimeError("the writer failed")
    assert sorted(p.name for p in real.iterdir()) == ["a.txt"]  # the old folder, whole
    with folder_written_atomically(link, replaceable=always) as temporary:
        (Path(temporary) / "b.txt").write_text("new")
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == ["b.txt"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o750
    assert leftovers(tmp_path / "store") == leftovers(tmp_path) == []


def test_output_folder_checks_name_the_flag(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("")
    (tmp_path / "empty").mkdir()
    never = lambda folder: False  # no folder of files may be replaced
    with pytest.raises(InputError, match=r"^out: '.*file' exists and is not a folder; give a"):
        check_output_folder(tmp_path / "file", "out", never)
    with pytest.raises(InputError, match=r"^out: '.*mine' is a folder of other files, which"):
        check_output_folder(tmp_path / "mine", "out", never)
    check_output_folder(tmp_path / "mine", "out", lambda folder: folder.name == "mine")
    check_output_folder(tmp_path / "empty", "out", never)
    with pytest.raises(InputError, match=r"^out: folder '.*missing' does not exist$"):
        check_output_folder(tmp_path / "missing" / "model", "out", never)


# A folder is replaced only when `replaceable` allows; these tests allow any.
def always(folder) -> bool:
    return True


def listing(folder) -> dict:
    """Every file under `folder` and its bytes."""
    return {
        os.path.relpath(os.path.join(parent, name), folder): Path(parent, name).read_bytes()
        for parent, _, names in os.walk(folder)
        for name in names
    }


def test_an_interrupt_between_the_two_renames_puts_the_old_folder_back(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    with folder_written_atomically(folder, replaceable=always) as temporary:
        (Path(temporary) / "a.txt").write_text("old")
    real_replace, renames = os.replace, []

    def interrupted_at_the_second(source, destination):
        renames.append(source)
        if len(renames) == 2:  # the old folder is aside; the new one not yet in place
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", interrupted_at_the_second)
    with (
        pytest.raises(KeyboardInterrupt),
        folder_written_atomically(folder, replaceable=always) as temporary,
    ):
        (Path(temporary) / "b.txt").write_text("new")
    monkeypatch.undo()
    assert os.fspath(renames[0]) == str(folder)  # the old folder was set aside first
    assert listing(folder) == {"a.txt": b"old"}
    assert leftovers(tmp_path) == []


def killed_writes(folder: Path) -> None:
    """Writes that a process killed (as by kill -9: no cleanup runs) left, each after making
    its temporary: a file, a folder, and a folder killed between its two renames (the old
    folder at deploy set aside, the new one not yet in place), where it exits with 9."""
    entered = [
        written_atomically(folder / "p.onnx"),
        folder_written_atomically(folder / "new", replaceable=always),
    ]
    for writing in entered:
        writing.__enter__()
    real_replace = os.replace

    def killed_at_the_second(source, destination):
        if not Path(destination).name.startswith("."):  # the new folder's rename into place
            os._exit(9)
        real_replace(source, destination)

    os.replace = killed_at_the_second
    with folder_written_atomically(folder / "deploy", replaceable=always) as temporary:
        (Path(temporary) / "b.txt").write_text("new")


def test_temporaries_of_a_killed_write_are_cleaned_by_the_next_to_that_path(tmp_path):
    with folder_written_atomically(tmp_path / "deploy", replaceable=always) as temporary:
        (Path(temporary) / "a.txt").write_text("old")
    child = os.fork()  # a process of its own, which dies as a killed one would
    if child == 0:
        try:
            killed_writes(tmp_path)
        finally:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert not (tmp_path / "deploy").exists()
    assert len(leftovers(tmp_path)) == 4  # three temporaries, and deploy's old folder aside
    (tmp_path / ".p.onnx.notes").write_text("mine")  # a user's file, named alike
    alive = written_atomically(tmp_path / "p.onnx")  # this process's, maybe still writing
    kept = Path(alive.__enter__())
    # The next write to deploy first puts the old folder back: a failed write keeps it.
    with (
        pytest.raises(RuntimeError),
        folder_written_atomically(tmp_path / "deploy", replaceable=always),
    ):
        raise RuntimeError("the writer failed")
    assert listing(tmp_path / "deploy") == {"a.txt": b"old"}
    write_text_atomically(tmp_path / "p.onnx", "export")
    new = [name for name in leftovers(tmp_path) if name.startswith(".new.")]
    assert len(new) == 1  # another path's: cleaned by the next write to "new"
    assert leftovers(tmp_path) == sorted([".p.onnx.notes", kept.name, *new])
    with folder_written_atomically(tmp_path / "new", replaceable=always):
        pass
    assert leftovers(tmp_path) == sorted([".p.onnx.notes", kept.name])
    alive.__exit__(None, None, None)
    assert leftovers(tmp_path) == [".p.onnx.notes"]


def keras_zip(path, members: dict[str, bytes]) -> None:
    """A zip at `path` holding `members`, deflated (Keras stores its members uncompressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_keras_zip_bomb_is_refused_before_anything_is_decompressed(tmp_path, monkeypatch):
    good = save_policy(small_policy(), tmp_path / "good.keras", {})
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    # config.json of 64 MiB of spaces (64 KiB on disk); weights of 40 MiB of zeros (40 KiB
    # on disk: at most 100 × 40 KiB + 1 MiB ≈ 5 MiB is believed); 65 members.
    bombs = {
        "config.keras": (
            {**members, "config.json": b" " * 2**26},
            (
                "its member 'config.json' declares 67,108,864 bytes (at most 16,777,216 for "
                "a JSON member)"
            ),
        ),
        "weights.keras": (
            {**members, "model.weights.h5": bytes(40 * 2**20)},
            (
                "its member 'model.weights.h5' declares 41,943,040 bytes from {} stored (at "
                "most 100 times as many, plus 1 MiB)"
            ),
        ),
        "members.keras": (
            {**members, **{f"assets/{i}": b"" for i in range(61)}},
            "it has 65 members (a policy file has 4; at most 64 are read)",
        ),
    }
    for name, (content, _) in bombs.items():
        keras_zip(tmp_path / name, content)
    with zipfile.ZipFile(tmp_path / "weights.keras") as archive:
        stored = archive.getinfo("model.weights.h5").compress_size

    def decompressing(*args, **kwargs):
        raise AssertionError("a member was decompressed")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", decompressing)
    for name, (_, reason) in bombs.items():
        with pytest.raises(InputError) as error:
            load_policy(tmp_path / name)
        assert str(error.value) == (
            f"policy: {str(tmp_path / name)!r} is not a readable .keras model file: "
            + reason.format(f"{stored:,}")
        )
    monkeypatch.undo()
    assert load_policy(good).count_params() == small_policy().count_params()


def test_a_policy_with_non_finite_weights_is_refused(tmp_path):
    policy = small_policy()
    kernel, bias = policy.get_layer("logits").get_weights()
    kernel[1, 0] = np.nan
    policy.get_layer("logits").set_weights([kernel, bias])
    path = save_policy(policy, tmp_path / "nan.keras", {"env": "CartPole-v1"})
    with pytest.raises(InputError) as error:
        load_policy(path)
    assert str(error.value) == (
        f"policy: {str(path)!r} has non-finite weights (NaN or infinite) in "
        "'logits/kernel': its actions would be undefined"
    )


def test_a_linked_output_folder_is_named_once_with_what_it_points_to(tmp_path):
    # Before: "'out' (where the link 'out' points) exists and is not a folder".
    (tmp_path / "notes.txt").write_text("mine\n")
    (tmp_path / "out").symlink_to(tmp_path / "notes.txt")
    with pytest.raises(InputError) as error:
        check_output_folder(tmp_path / "out", "output", replaceable=lambda folder: False)
    assert str(error.value) == (
        f"output: '{tmp_path / 'out'}' points to '{tmp_path / 'notes.txt'}': it exists and is "
        "not a folder; give a folder name"
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine\n")
    (tmp_path / "linked").symlink_to(tmp_path / "other")
    with pytest.raises(InputError) as error:
        check_output_folder(tmp_path / "linked", "output", replaceable=lambda folder: False)
    assert str(error.value) == (
        f"output: '{tmp_path / 'linked'}' points to '{tmp_path / 'other'}': it is a folder of "
        "other files, which is not replaced; give a new folder name"
    )
    assert (tmp_path / "notes.txt").read_text() == (tmp_path / "other" / "keep.txt").read_text()
