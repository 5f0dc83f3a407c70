"""What a Galaxy or Automation Hub reviewer checks first: licence, metadata, module docs.

- LICENSE holds the full GNU GPL v3 text, matching `license` in galaxy.yml and the file headers;
- galaxy.yml names a repository, documentation and issues URL, all under the same repository;
- every module documents version_added as the collection version that introduced it (0.1.0),
  takes the shared attribute descriptions from the doc fragment and names its author with a
  GitHub handle.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
FIRST_VERSION = "0.1.0"
MODULE_DOCS = sorted((REPO / "plugins" / "modules").glob("*.py"))


def module_documentation(path: Path) -> dict:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"{path.name} has no DOCUMENTATION")


def test_license_is_the_gpl3_text_galaxy_yml_names() -> None:
    text = (REPO / "LICENSE").read_text()
    assert GALAXY["license"] == ["GPL-3.0-or-later"]
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    assert "Version 3, 29 June 2007" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_galaxy_yml_links_point_into_one_repository() -> None:
    repository = GALAXY["repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository), repository
    assert "example.invalid" not in repository
    assert GALAXY["documentation"].startswith(repository + "/")
    assert GALAXY["issues"] == repository + "/issues"


def test_version_added_is_the_collection_version_that_introduced_the_module() -> None:
    assert GALAXY["version"] == FIRST_VERSION
    wrong = {
        path.name: module_documentation(path).get("version_added")
        for path in MODULE_DOCS
        if module_documentation(path).get("version_added") != FIRST_VERSION
    }
    assert not wrong, f"version_added must be {FIRST_VERSION}: {wrong}"


@pytest.mark.parametrize("path", MODULE_DOCS, ids=lambda path: path.stem)
def test_module_attributes_come_from_the_doc_fragment(path: Path) -> None:
    documentation = module_documentation(path)
    fragments = documentation.get("extends_documentation_fragment", [])
    assert "winops.remoting.attributes" in fragments
    for name, attribute in documentation["attributes"].items():
        # The fragment says what the attribute means; the module says only how it supports it.
        assert "description" not in attribute, f"{name}: the description belongs in the fragment"
        assert attribute.get("support") in {"full", "partial", "none", None}, name
    assert all(re.search(r"\(@[\w-]+\)$", author) for author in documentation["author"])


def test_readme_opens_with_the_title_and_links_work_on_galaxy() -> None:
    # Galaxy renders the README outside the repository: relative links break there.
    readme = (REPO / "README.md").read_text()
    assert readme.startswith("# winops.remoting\n")
    headings = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    assert headings[:3] == ["Install", "Compatibility", "Quick start"], headings
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links
    for link in links:
        assert link.startswith(("https://", "#")), f"relative link in README.md: {link}"
        if link.startswith(GALAXY["repository"]):
            path = link.removeprefix(GALAXY["repository"] + "/blob/main/").split("#")[0]
            assert (REPO / path).is_file(), f"README links to a file the repository lacks: {link}"


def test_tarball_ships_no_test_that_needs_the_repository(tmp_path: Path) -> None:
    ansible_galaxy = Path(sys.executable).with_name("ansible-galaxy")
    subprocess.run(
        [str(ansible_galaxy), "collection", "build", "--output-path", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (tarball,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        shipped_tests = [name for name in names if name.startswith(("tests/", "extensions/"))]
        needing_repository = []
        for name in shipped_tests:
            member = archive.extractfile(name)  # None for directories
            if member and re.search(rb"tests/winhost|import winhost|kdc\.", member.read()):
                needing_repository.append(name)
    assert "LICENSE" in names
    assert not [
        name for name in shipped_tests if name.startswith(("tests/unit", "tests/integration"))
    ]
    assert not needing_repository, needing_repository
