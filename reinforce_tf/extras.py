"""The optional features and the extra of `pip install ".[<extra>]"` (in the checkout) that brings
each. The core install (tensorflow, gymnasium, numpy, absl-py, tensorboard) trains and plays
classic-control envs; a feature whose packages are missing fails before anything is written,
in one line that names its extra (`missing`).

    mujoco    MuJoCo envs (HalfCheetah-v5, ...)      atari    ALE/ ids (ale-py, OpenCV)
    minatar   MinAtar/ ids                          ray      --workers
    export    scripts/export.py and playing exports video    --video_dir
    plot      scripts/plot.py, the Sutton & Barto figures
"""

from reinforce_tf.errors import InputError

EXTRAS = ("mujoco", "atari", "minatar", "ray", "export", "video", "plot")


def missing(what: str, extra: str, field: str | None = None) -> InputError:
    """The error for a feature whose extra is not installed, e.g. with `what` "needs Ray"
    and field "workers": `--workers: needs Ray: install the extra reinforce_tf[ray] (in the
    checkout: pip install ".[ray]")`.

    Args:
        what: "needs <packages>", completed by the rest of the sentence.
        extra: one of EXTRAS.
        field: the flag the feature belongs to, if any.
    """
    if extra not in EXTRAS:
        raise ValueError(f"no extra {extra!r}")
    # The command installs from the checkout: `pip install "reinforce_tf[extra]"` would ask
    # the package index, where the name is not ours.
    return InputError(
        f"{what}: install the extra reinforce_tf[{extra}] "
        f'(in the checkout: pip install ".[{extra}]")',
        field=field,
    )
