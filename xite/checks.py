"""Checks shared by every command, so one rule holds everywhere: language codes, batch sizes, and
that an output never replaces an input."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable

from xite.errors import ConfigError, XiteError

# BCP-47-like: a 2-3 letter primary subtag, then optional subtags of 1-8 letters/digits
# ("en", "ko", "zh-Hant", "pt-BR", "es-419"). Anything else ("", " ", "zz-Klingon!", "english")
# is refused up front, because the code ends up in manifests, result tables and cell keys.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def check_language(code: object, where: str = "language") -> str:
    """``code`` if it is a language code by the rule above, else a one-line ConfigError."""
    if not isinstance(code, str) or not _LANGUAGE.fullmatch(code):
        raise ConfigError(
            f"{where}: {code!r} is not a language code (2-3 letters, optional -subtags of letters/digits, e.g. ko, pt-BR)"
        )
    return code


def check_batch_size(value: object, what: str = "batch size") -> int:
    """A batch size is an integer >= 1 (0 or a negative one used to be accepted and ignored, or
    to make the encoder return NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def check_finite(value: object, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """A finite number within [low, high] (``low_open``: low excluded); else a ConfigError."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and number > high:
        raise ConfigError(f"{name} must be <= {high}, got {value!r}")
    return number


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_not_input(out: str | os.PathLike | None, inputs: Iterable[str | os.PathLike | None],
                           *, include_home: bool = True) -> None:
    """Refuse an output path that equals an input or contains one (``--overwrite`` would delete
    it when the new output is moved into place), or that contains XITE_HOME (the embedding cache
    and the converted model). Symlinks are resolved, so a link to the data folder counts too."""
    if out is None:
        return
    target = _resolved(out)
    named = [(Path(p), _resolved(p)) for p in inputs if p is not None]
    if include_home:
        from xite.paths import xite_home_path

        home = xite_home_path()
        named.append((home, _resolved(home)))
    for given, real in named:
        if _is_within(real, target):
            what = "is" if real == target else "contains"
            raise XiteError(f"output {out} {what} the input {given}: an output never replaces an input; choose another --out")
