"""Collects the benchmarks' timings and prints each suite's table at the end of the run (also
written under .benchmarks/): the ratios are only meaningful within one run."""

from __future__ import annotations

from pathlib import Path

import pytest

# results: (d, r, name) -> best seconds; meta: notes for the table; table: the formatter
# (test_kernel.kernel_table), registered by the test module.
_KERNEL_STORE: dict = {"results": {}, "meta": {}, "table": None}
TABLE_PATH = Path(__file__).resolve().parents[1] / ".benchmarks" / "kernel_table.md"
# Other suites register (title, file name under .benchmarks/, render() -> table or None) here.
_TABLES: list = []


@pytest.fixture(scope="session")
def kernel_store() -> dict:
    return _KERNEL_STORE


@pytest.fixture(scope="session")
def summary_tables() -> list:
    return _TABLES


def _print_table(terminalreporter, title: str, table: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")
    terminalreporter.write_sep("=", title)
    terminalreporter.write_line(table)
    terminalreporter.write_line(f"(written to {path})")


def pytest_terminal_summary(terminalreporter):
    store = _KERNEL_STORE
    if store["results"] and store["table"] is not None:
        table = store["table"](store["results"], store["meta"])
        _print_table(terminalreporter, "xite kernel: fused op vs eager PyTorch vs memory copy", table, TABLE_PATH)
    for title, name, render in _TABLES:
        table = render()
        if table:
            _print_table(terminalreporter, title, table, TABLE_PATH.parent / name)
