"""Errors a user sees, each with the exit code of docs/design.md section 3."""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FAILED = 1  # the import ended cancelled or failed, or a cleanup was refused
EXIT_BAD_INPUT = 2  # nothing was sent or written
EXIT_AWS = 3  # AWS or network error
EXIT_INTERRUPTED = 130


def without_code(code: str | None, message: str) -> str:
    """`message` without a leading restatement of `code` ("NetworkError: ..." or "network
    error: ..." when the code is NetworkError): messages are often built from another error's
    text, and the code is printed in front of them once, by `coded`."""
    if not code:
        return message
    lead, sep, rest = message.partition(": ")
    while sep and re.sub(r"[\s_-]", "", lead).lower() == code.lower():
        lead, sep, rest = rest.partition(": ")
        message = f"{lead}{sep}{rest}"
    return message


def coded(code: str | None, message: str) -> str:
    """The line a user reads: the code once, then the message."""
    message = without_code(code, message)
    return f"{code}: {message}" if code else message


class WizardError(Exception):
    """An error meant for the user: one clear line, never a traceback."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source  # file or argument the bad value came from
        self.field = field  # dotted path, e.g. request.LaunchSpecification.PrivateIpAddress

    def __str__(self) -> str:
        return self.located

    @property
    def located(self) -> str:
        """The message with the file and field it is about, without any error code."""
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class InputError(WizardError):
    """Bad input (usage, profile, image): nothing was sent or written."""

    exit_code = EXIT_BAD_INPUT


class AwsError(WizardError):
    """AWS or the network refused or failed; `code` is AWS's error code when there is one."""

    exit_code = EXIT_AWS

    def __init__(self, message: str, *, code: str | None = None, **kw: str | None):
        super().__init__(without_code(code, message), **kw)
        self.code = code

    def __str__(self) -> str:
        return coded(self.code, self.located)


class RefusedError(WizardError):
    """An action refused for a good reason (e.g. cleanup of an active task)."""

    exit_code = EXIT_FAILED


class ImageChanged(WizardError):
    """The image file changed while it was being uploaded: parts were sent, so this is not bad
    input (exit 2 promises nothing was sent); the run is kept for `resume`."""

    exit_code = EXIT_FAILED

    def __init__(self, path: str, what: str):
        super().__init__(
            f"the image {what} while it was being uploaded, so some parts may hold old bytes; "
            "nothing was submitted. When the file is final, resume the run: it checks every "
            "part and sends the ones that changed (a file of another size needs a new run)",
            source=path,
            field="source.path",
        )


class Interrupted(WizardError):
    """SIGINT/SIGTERM: stopped cleanly, state saved for `resume`."""

    exit_code = EXIT_INTERRUPTED
