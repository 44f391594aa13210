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


class grid_progress:
    """A lasting bar over a grid of cells (elapsed and remaining time): ``advance(description)``."""

    def __init__(self, enabled: bool, total: int, label: str = "grid"):
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self):
        if not self.enabled:
            return lambda _desc: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn(f"[bold]{self.label}[/bold] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        task = self.bar.add_task("", total=self.total)
        return lambda desc: self.bar.update(task, advance=1, description=desc)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False
