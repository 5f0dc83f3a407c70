"""The controller libraries' declared minimums are the versions one of the unit runs uses.

requirements.txt says which versions of pywinrm, pypsrp and the libraries under them the
collection supports. Among the unit runs (Makefile ``units``), the oldest venv has ansible-core
2.17 and every library at the lowest version requirements.txt allows
(tests/requirements-ansible-2.17.txt pins them), so that a feature used beyond a declared minimum
fails a test instead of a user's task; the others have the newest libraries.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]


def _requirements(path: Path) -> dict[str, Requirement]:
    found: dict[str, Requirement] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-r"):
            requirement = Requirement(text)
            found[requirement.name.lower()] = requirement
    return found


def _minimum(requirement: Requirement) -> Version:
    lower = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    assert len(lower) == 1, f"{requirement} names no single minimum (>=)"
    return lower[0]


DECLARED = _requirements(ROOT / "requirements.txt")
OLDEST = _requirements(ROOT / "tests" / "requirements-ansible-2.17.txt")


def test_the_oldest_venv_pins_every_library_at_its_declared_minimum() -> None:
    for name, requirement in DECLARED.items():
        pinned = OLDEST.get(name)
        assert pinned is not None, f"tests/requirements-ansible-2.17.txt does not pin {name}"
        (spec,) = pinned.specifier
        assert spec.operator == "==", f"{pinned} is not a pin"
        assert Version(spec.version) == _minimum(requirement), (
            f"{name}: requirements.txt allows {requirement.specifier}, the oldest venv runs "
            f"{spec.version}"
        )
        assert pinned.extras == requirement.extras, f"{name}: extras differ"


def test_the_installed_libraries_are_ones_requirements_txt_allows() -> None:
    for name, requirement in DECLARED.items():
        installed = importlib.metadata.version(name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{name} {installed} is installed, requirements.txt allows {requirement.specifier}"
        )


def test_requirements_txt_declares_a_minimum_for_each_library() -> None:
    assert set(DECLARED) >= {"pywinrm", "pypsrp", "pyspnego", "urllib3", "cryptography"}
    for requirement in DECLARED.values():
        assert re.fullmatch(r"\d+(\.\d+)*", str(_minimum(requirement)))
