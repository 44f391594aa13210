"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class XiteError(Exception):
    """Base for every error caused by the user's input or configuration."""


class InputError(XiteError):
    """Bad input data: names the file, the line (1-based, when known) and the field."""

    def __init__(self, path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = self.path
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class UnknownComponentError(XiteError):
    """A component name that no plugin registered."""


class ConfigError(XiteError, ValueError):
    """Options that do not fit together or do not fit the component.

    Also a ValueError: callers that caught a component's ValueError for a bad option still do."""


class XiteWarning(UserWarning):
    """Something xite changed or noticed in what the user gave (labels normalised, duplicates
    with two labels, ...). Issued through :mod:`warnings`; the CLI prints each as one line."""


def warn(message: str) -> None:
    """Tell the user about a rule that changed what they gave. One mechanism for every such note:
    Python's ``warnings`` (the CLI shows each as ``warning: ...``; API users can filter them)."""
    import warnings

    warnings.warn(message, XiteWarning, stacklevel=2)
