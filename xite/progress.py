"""One look for xite's progress bars: rich, on stderr, gone when done."""

from __future__ import annotations

import contextlib


def progress_bar(enabled: bool, label: str):
    """A rich Progress (use ``add_task``/``advance``), or a null context yielding None."""
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # stderr: stdout may carry a command's real output (JSON, tables) that must stay clean.
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True, console=Console(stderr=True),
    )
