"""The one exception type for bad user input.

Scripts catch `InputError` and print its message as a single line; anything else is
a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A bad value from the user: a config field, an env id, a space or a file.

    Attributes:
        reason: what is wrong and what is allowed, without the field.
        field: the config field, flag or file argument at fault (e.g. "gamma"),
            so the CLI can say `--gamma: ...`; None when there is no single one.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.reason = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class TrainingError(RuntimeError):
    """Training cannot go on: non-finite numbers, or an env that raised.

    The message says what happened, at which env step, and which checkpoint is kept.
    """


def error_reason(error: BaseException) -> str:
    """An exception's message as one short line: an OSError's reason ("No space left on
    device"), else the first line (TensorFlow's messages run to many)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class ExportError(RuntimeError):
    """An export could not be written, or does not act as the policy it came from.

    The message says what failed and that nothing was written (or the old export kept).
    """
