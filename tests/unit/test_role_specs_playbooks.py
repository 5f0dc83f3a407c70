"""Static checks that the shipped playbooks validate every role's variables before any change.

A play's roles each validate their own variables when they start, but by then the roles before
them have changed the host. So every role a shipped playbook composes has a `validate` entry
point (tasks/validate.yml: checks only, the same options as `main`, imported first by main),
and the playbook runs them all in pre_tasks, with the role variables it decides set as play
variables that the validation sees. The end-to-end proof against winhost is
tests/integration/playbooks/test_bad_variables.py.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"
PLAYBOOKS_DIR = REPO / "playbooks"
PREFIX = "winops.remoting."


def load_yaml(path: Path) -> t.Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def roles_with_validation() -> list[str]:
    return sorted(p.parent.parent.name for p in ROLES_DIR.glob("*/tasks/validate.yml"))


def composed_plays() -> list[tuple[str, dict[str, t.Any]]]:
    """(playbook, play) for every play of a shipped playbook that runs more than one role."""
    plays = []
    for path in sorted(PLAYBOOKS_DIR.glob("*.yml")):
        for play in load_yaml(path):
            if len(play.get("roles", [])) > 1:
                plays.append((path.stem, play))
    return plays


def test_the_composing_playbooks_are_covered() -> None:
    assert {name for name, _ in composed_plays()} >= {"setup", "harden"}


@pytest.mark.parametrize("role", roles_with_validation())
def test_validate_entry_point_matches_main_and_runs_first(role: str) -> None:
    specs = load_yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]
    assert specs["validate"]["options"] == specs["main"]["options"]
    first = load_yaml(ROLES_DIR / role / "tasks" / "main.yml")[0]
    assert first.get("ansible.builtin.import_tasks") == "validate.yml", first
    # Only checks: asserts, and the read-only questions that the cut-off guards assert on: to
    # the play's own connection, or to the host through a module forced into check mode (ours,
    # win_whoami for the account the play connects as, win_reg_stat for a registry value).
    checks = {"ansible.builtin.assert", "winops.remoting.winrm_connection_auth"}
    readers = {"ansible.windows.win_whoami", "ansible.windows.win_reg_stat"}
    for task in load_yaml(ROLES_DIR / role / "tasks" / "validate.yml"):
        asks_in_check_mode = task.get("check_mode") is True and any(
            key.startswith("winops.remoting.win_") or key in readers for key in task
        )
        assert checks & set(task) or asks_in_check_mode, (
            f"{role}/tasks/validate.yml: {task.get('name')}"
        )


@pytest.mark.parametrize(
    ("playbook", "play"), composed_plays(), ids=[name for name, _ in composed_plays()]
)
def test_playbook_validates_every_role_before_the_first(
    playbook: str, play: dict[str, t.Any]
) -> None:
    roles = [entry["role"] for entry in play["roles"]]
    validated = []
    for task in play.get("pre_tasks", []):
        include = task.get("ansible.builtin.include_role")
        if include and include.get("tasks_from") == "validate":
            validated += task.get("loop", [include["name"]])
    composed = [r for r in roles if r.removeprefix(PREFIX) in roles_with_validation()]
    assert composed == roles, f"{playbook}: roles without a validate entry point"
    assert validated == roles, f"{playbook}: pre_tasks validate {validated}, roles are {roles}"
    # Role-entry vars would be invisible to the validation in pre_tasks.
    with_vars = [entry["role"] for entry in play["roles"] if entry.get("vars")]
    assert with_vars == [], f"{playbook}: role variables belong in the play's vars"
