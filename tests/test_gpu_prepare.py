"""bench/gpu_prepare.py: the wheels it fetches for a lent GPU machine are of packages installed here."""

import importlib.metadata
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_it_fetches_is_installed_here_at_a_version():
    spec = importlib.util.spec_from_file_location("gpu_prepare", ROOT / "bench" / "gpu_prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    for name in prepare.MISSING:
        assert importlib.metadata.version(name), name  # PackageNotFoundError where one is missing
