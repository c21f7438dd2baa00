"""Shared test set-up: a private peftlab cache per test session unless one is given."""

import os
import tempfile

import pytest


@pytest.fixture(scope="session", autouse=True)
def _peftlab_cache():
    """Tests use $PEFTLAB_CACHE when set (CI shares it with the notebooks), else a temporary one."""
    if os.environ.get("PEFTLAB_CACHE"):
        yield
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PEFTLAB_CACHE"] = tmp
        yield
        del os.environ["PEFTLAB_CACHE"]


# Notebooks executed by the test suite (tests/test_proofs.py) check the stored solutions of their exercises
# (solutions/*.py): a solution that stops working fails its notebook. The docs build runs without it,
# so the published pages show a learner's view ("not answered yet").
os.environ.setdefault("PEFTLAB_SOLUTIONS", "1")
