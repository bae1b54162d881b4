"""Shared fixtures. Compiled JAX functions are shared across tests through the
process-wide cache of `motionrecon.reconstruct` (one compile per window size)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# One small reconstruction setting used by every physics test, so they share one compile.
TEST_WINDOW = 0.5  # s -> 15 frames at 30 fps, 6 keyframes, 16 steps per frame
TEST_EVALS = 25


@pytest.fixture(scope="session")
def test_config():
    from motionrecon.reconstruct import ReconstructionConfig

    return ReconstructionConfig(solver="lbfgs", max_evals=TEST_EVALS, window=TEST_WINDOW, overlap=0.1)


@pytest.fixture(scope="session")
def walk_1s():
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic

    return load_deepmimic(clip_path("walk"), duration=1.0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (../shared/data beside the repository)")
    return SHARED_DATA
