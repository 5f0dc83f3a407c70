"""The winrm_https_cert role's connection target and certificate names, through Ansible itself.

The role's vars/main.yml computes, in Jinja, the name or address the play connects to (as the
connection plugins read it: their own host variable over ansible_host over the inventory name,
an IPv6 address without brackets) and the names the certificate gets. A play on localhost
loads the role's defaults and vars and prints them; no connection is opened (debug runs on the
controller), so the plugin named by ansible_connection is loaded but never connects.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from json_playbook import run_json_playbook

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "winrm_https_cert"
PLAY = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_vars: {ROLE / "defaults" / "main.yml"}
    - ansible.builtin.include_vars: {ROLE / "vars" / "main.yml"}
    - name: names
      ansible.builtin.debug:
        msg:
          target: "{{{{ __winrm_https_cert_connection_target }}}}"
          dns_names: "{{{{ __winrm_https_cert_dns_names }}}}"
          ip_addresses: "{{{{ __winrm_https_cert_ip_addresses }}}}"
"""


def _names(tmp_path: Path, variables: dict[str, t.Any]) -> dict[str, t.Any]:
    (tmp_path / "play.yml").write_text(PLAY, encoding="utf-8")
    (tmp_path / "vars.json").write_text(json.dumps(variables), encoding="utf-8")
    done = run_json_playbook(["play.yml", "-e", "@vars.json"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    tasks = json.loads(done.stdout)["plays"][0]["tasks"]
    result = next(task for task in tasks if task["task"]["name"] == "names")
    return t.cast(dict[str, t.Any], result["hosts"]["localhost"]["msg"])


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(
            # Before, the brackets stayed and the address was listed twice.
            {
                "ansible_connection": "winops.remoting.winrm",
                "ansible_host": "192.0.2.9",
                "ansible_winrm_host": "[FE80::1]",
                "winrm_https_cert_ip_addresses": ["fe80::1"],
                "winrm_https_cert_names_include_connection_target": True,
            },
            {"target": "FE80::1", "dns_names": [], "ip_addresses": ["fe80::1"]},
            id="winrm-host-ipv6-in-brackets",
        ),
        pytest.param(
            {
                "ansible_connection": "winops.remoting.psrp",
                "ansible_host": "a.example",
                "ansible_psrp_host": "b.example",
                "winrm_https_cert_dns_names": ["alias.example"],
                "winrm_https_cert_names_include_connection_target": True,
            },
            {
                "target": "b.example",
                "dns_names": ["alias.example", "b.example"],
                "ip_addresses": [],
            },
            id="psrp-host-beside-an-alias",
        ),
        pytest.param(
            {
                "ansible_connection": "ansible.builtin.winrm",
                "ansible_host": "192.0.2.5",
                "winrm_https_cert_source": "enrolled",
            },
            {"target": "192.0.2.5", "dns_names": [], "ip_addresses": ["192.0.2.5"]},
            id="enrolled-without-names-needs-the-target",
        ),
        pytest.param(
            {"ansible_connection": "winops.remoting.winrm", "ansible_host": "a.example"},
            {"target": "a.example", "dns_names": [], "ip_addresses": []},
            id="self-signed-default-names",
        ),
    ],
)
def test_the_certificate_names_the_host_the_plugin_connects_to(
    tmp_path: Path, variables: dict[str, t.Any], expected: dict[str, t.Any]
) -> None:
    assert _names(tmp_path, variables) == expected
