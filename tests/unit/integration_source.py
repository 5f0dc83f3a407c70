"""Load a plain module from tests/integration into a unit test, by path: those modules are
imported by bare name from their own suite's directory there, which is not on the unit tests'
sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"


def load_integration_module(relative: str, name: str) -> ModuleType:
    """tests/integration/<relative>, imported as `name`."""
    spec = importlib.util.spec_from_file_location(name, INTEGRATION / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module
