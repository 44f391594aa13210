"""Directories that xite builds once and then reuses (converted models under ``xite_home()/models``).

A build writes into a temp dir beside its destination and renames it into place only when it is
complete, so an interrupted or failed build never leaves a half-written model. Several processes
(parallel test workers, two ``xite augment`` runs) may want the same directory at once: a file
lock makes one of them build it while the others wait and then reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable


@contextlib.contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temp_dirs(dest: Path) -> None:
    """Temp dirs of builds that were killed (SIGKILL skips our cleanup): hundreds of MB each."""
    for tmp in dest.parent.glob(f".{dest.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, dest: Path) -> None:
    """Rename the finished temp dir into place; a previous build there is moved aside first."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(dest, old)
    os.rename(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_atomically(dest: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` fills a fresh temp dir next to ``dest``, which then replaces ``dest``.
    The temp dir's name carries our pid so that a later build can tell a dead one."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        write(tmp)
        _install(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def build_once(dest: Path, is_current: Callable[[Path], bool], build: Callable[[Path], object]) -> Path:
    """``dest``, calling ``build(dest)`` under a lock unless a current build is already there."""
    if is_current(dest):
        return dest
    with file_lock(dest.with_name(f".{dest.name}.lock")):
        if not is_current(dest):  # another process may have built it while we waited
            remove_dead_temp_dirs(dest)
            build(dest)
    return dest
