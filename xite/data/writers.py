"""Atomic writers: an output either appears whole or not at all.

A run that fails or is interrupted (Ctrl-C included) must never leave a half-written output
that a later step would read as complete. Everything is written to a temporary name next to the
target (same filesystem, so the final rename is atomic) and renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from xite.errors import XiteError


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` when the block succeeds.

    An existing ``path`` is refused unless ``overwrite``; then the old directory is replaced only
    once the new one is complete. On any exception (KeyboardInterrupt included) the temporary
    directory, and any parent directories this call created, are removed and the exception
    re-raised.
    """
    target = Path(path)
    _refuse_existing(target, overwrite)
    try:
        created_parents = _make_parents(target.parent)
    except OSError as exc:
        raise XiteError(f"cannot create the folder for {target}: {exc.strerror or exc} ({exc.filename or target.parent})") from None
    tmp: Path | None = None
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), dir=target.parent))
        except OSError as exc:
            # Name the output the user asked for, not the temporary name beside it.
            raise XiteError(f"cannot write {target}: {exc.strerror or exc} (in {target.parent})") from None
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; outputs are ordinary dirs
        yield tmp
        _refuse_existing(target, overwrite)  # someone may have created it while we worked
        _move_into_place(tmp, target)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty_dirs(created_parents)
        raise


def _refuse_existing(target: Path, overwrite: bool) -> None:
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise XiteError(f"output directory {target} exists; pass --overwrite")
    if not target.is_dir() or target.is_symlink():
        # --overwrite replaces an earlier output directory, never a file or a link.
        raise XiteError(f"output path {target} exists and is not a directory; remove it or choose another")


def _move_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    # Replace: move the old output aside, rename the new one in, then delete the old one. If the
    # second rename fails the old output is put back, so the user never ends up with neither.
    aside = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _temp_prefix(target: Path) -> str:
    # Hidden, and named after the target so that a leftover (after a kill -9) is recognisable.
    return f".{target.name}.tmp-{os.getpid()}-"


def _make_parents(parent: Path) -> list[Path]:
    """mkdir -p ``parent``; returns the directories it created, deepest first."""
    missing: list[Path] = []
    p = parent.absolute()
    while not p.exists():
        missing.append(p)
        p = p.parent
    parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty_dirs(dirs: list[Path]) -> None:
    for d in dirs:  # deepest first
        try:
            d.rmdir()
        except OSError:
            return  # not empty (someone else wrote there) or gone: leave it


def _umask() -> int:
    # The only portable way to read the umask is to set it and restore it.
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike, mode: str, **open_kwargs: Any) -> Iterator[IO]:
    """An open temporary file that replaces ``path`` on success and vanishes on failure."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), dir=target.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes it private
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, then os.replace)."""
    with _atomic_file(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with _atomic_file(path, "w", encoding=encoding, newline="") as f:
        f.write(text)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write one JSON object per line (UTF-8, ``ensure_ascii=False``) atomically.

    Rows are streamed, so a large output never sits in memory as one string. numpy scalars and
    arrays are written as plain numbers and lists. Returns the number of rows written.
    """
    count = 0
    with _atomic_file(path, "w", encoding="utf-8", newline="") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=_json_default))
            f.write("\n")
            count += 1
    return count


def _json_default(value: Any) -> Any:
    # numpy values (similarities, lambdas, indices) are the usual non-JSON types in our rows.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
