"""The winrm_listener role's firewall LocalAddress, derived from its listener addresses.

winhost serves one address per host and no MAC listeners, so the derivation for `MAC:`, IPv6
zones and several listeners is checked here: the role's own expression (vars/main.yml), templated
by ansible-playbook with each case's variables, as the role templates it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE_VARS = REPO / "roles" / "winrm_listener" / "vars" / "main.yml"

CASES: list[tuple[str, list[str], list[str], list[str]]] = [
    # (id, winrm_listener_https_addresses, winrm_listener_firewall_local_addresses, expected)
    ("every-address", ["*"], [], ["Any"]),
    ("one-ip", ["IP:192.0.2.20"], [], ["192.0.2.20"]),
    (
        "ips-deduplicated-zone-dropped",
        ["IP:192.0.2.20", "IP:fe80::1%12", "IP:192.0.2.20"],
        [],
        ["192.0.2.20", "fe80::1"],
    ),
    ("mac-takes-any", ["MAC:00-15-5D-01-02-03"], [], ["Any"]),
    ("ip-and-mac-take-any", ["IP:192.0.2.20", "MAC:00-15-5D-01-02-03"], [], ["Any"]),
    ("ip-and-star-take-any", ["IP:192.0.2.20", "*"], [], ["Any"]),
    ("given-wins", ["*"], ["192.0.2.0/24", "198.51.100.7"], ["192.0.2.0/24", "198.51.100.7"]),
]


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    """The scope each case's variables give, from one ansible-playbook run."""
    work = tmp_path_factory.mktemp("listener-scope")
    tasks: list[dict[str, t.Any]] = [
        {
            "name": "Load the role's internal variables",
            "ansible.builtin.include_vars": str(ROLE_VARS),
        }
    ]
    for case, listeners, given, _ in CASES:
        tasks.append(
            {
                "name": case,
                "ansible.builtin.debug": {"msg": "{{ __winrm_listener_firewall_local_scope }}"},
                "vars": {
                    "winrm_listener_https_addresses": listeners,
                    "winrm_listener_firewall_local_addresses": given,
                },
            }
        )
    playbook = work / "scope.yml"
    playbook.write_text(
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]),
        encoding="utf-8",
    )
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_HOME=str(work / "home"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=work,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads(result.stdout)
    return {
        task["task"]["name"]: task["hosts"]["localhost"]["msg"]
        for task in record["plays"][0]["tasks"]
        if "msg" in task["hosts"]["localhost"]
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [(case, expected) for case, _, _, expected in CASES],
    ids=[c[0] for c in CASES],
)
def test_local_scope_follows_the_listeners(
    derived: dict[str, t.Any], case: str, expected: list[str]
) -> None:
    assert derived[case] == expected
