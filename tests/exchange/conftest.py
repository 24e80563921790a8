from __future__ import annotations

from pathlib import Path

import pytest

from .cities import make_template


@pytest.fixture(scope="session")
def register_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("template"))
