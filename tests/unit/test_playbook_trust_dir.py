"""Where the setup and harden playbooks keep the issuers' trust files, through Ansible itself.

The default is <inventory dir>/winrm-ca. An inventory given as a list of hosts (-i host,) has no
directory: inventory_dir reads "None" there, and the trust files went to "None/winrm-ca" (or, by
the old fallback, inside the installed collection). The playbooks now ask for winops_ca_dir
first. Only controller-side tasks run (assert, debug), so no host is contacted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from json_playbook import run_json_playbook

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = ("setup", "harden")


def _play(
    tmp_path: Path, playbook: str, inventory: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    playbook_path = str(REPO / "playbooks" / f"{playbook}.yml")
    arguments = [playbook_path, "-i", inventory, "-e", "winops_hosts=win1", *extra]
    return run_json_playbook(arguments, tmp_path)


def _result(done: subprocess.CompletedProcess[str], task: str) -> dict[str, object]:
    for play in json.loads(done.stdout)["plays"]:
        for result in play["tasks"]:
            if result["task"]["name"] == task:
                return dict(result["hosts"]["win1"])
    raise AssertionError(f"task {task!r} did not run\n{done.stdout}{done.stderr}")


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_an_inventory_of_host_names_needs_winops_ca_dir(tmp_path: Path, playbook: str) -> None:
    done = _play(tmp_path, playbook, "win1,")
    assert done.returncode != 0, done.stdout
    result = _result(done, "Check that the issuers' trust files have a controller directory")
    assert result.get("failed") is True
    assert str(result["msg"]).startswith("winops_ca_dir is needed")
    # The check comes first: no other task ran.
    names = [r["task"]["name"] for p in json.loads(done.stdout)["plays"] for r in p["tasks"]]
    assert names == ["Check that the issuers' trust files have a controller directory"]


def test_the_trust_files_go_beside_an_inventory_file_or_to_winops_ca_dir(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory" / "hosts.yml"
    inventory.parent.mkdir()
    inventory.write_text("all:\n  hosts:\n    win1:\n", encoding="utf-8")
    tell = "Tell how to connect from now on"
    done = _play(tmp_path, "setup", str(inventory), "--start-at-task", tell)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{inventory.parent}/winrm-ca/win1.pem" in str(_result(done, tell)["msg"])
    done = _play(tmp_path, "setup", "win1,", "-e", "winops_ca_dir=/srv/ca", "--start-at-task", tell)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/srv/ca/win1.pem" in str(_result(done, tell)["msg"])
