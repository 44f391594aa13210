"""Collects the kernel benchmark's timings and prints them as one table at the end of the run
(also written to .benchmarks/kernel_table.md): the ratios are only meaningful within one run."""

from __future__ import annotations

from pathlib import Path

import pytest

# results: (d, r, name) -> best seconds; meta: notes for the table; table: the formatter
# (test_kernel.kernel_table), registered by the test module.
_KERNEL_STORE: dict = {"results": {}, "meta": {}, "table": None}
TABLE_PATH = Path(__file__).resolve().parents[1] / ".benchmarks" / "kernel_table.md"


@pytest.fixture(scope="session")
def kernel_store() -> dict:
    return _KERNEL_STORE


def pytest_terminal_summary(terminalreporter):
    store = _KERNEL_STORE
    if not store["results"] or store["table"] is None:
        return
    table = store["table"](store["results"], store["meta"])
    TABLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    TABLE_PATH.write_text(table + "\n")
    terminalreporter.write_sep("=", "xite kernel: fused op vs eager PyTorch vs memory copy")
    terminalreporter.write_line(table)
    terminalreporter.write_line(f"(written to {TABLE_PATH})")
