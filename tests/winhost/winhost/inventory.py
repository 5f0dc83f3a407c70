"""inventory.yml for the hosts of a state directory (group `windows`, mode 0600)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from winhost.profiles import ADMIN, OPERATOR, SECRETS_FILE
from winhost.state import HostState

INVENTORY_FILE = "inventory.yml"


def host_vars(state_dir: Path, state: HostState, secrets_: dict[str, str]) -> dict[str, object]:
    client = state_dir / "client"
    return {
        "ansible_host": state.address,
        "ansible_user": ADMIN,
        "ansible_password": secrets_["admin_password"],
        "winhost_computer_name": state.computer_name,
        "winhost_fqdn": state.fqdn,
        "winhost_local_user": OPERATOR,
        "winhost_local_password": secrets_["operator_password"],
        "winhost_ca_bundle": str(state_dir / "ca" / "ca.pem"),
        "winhost_client_cert": str(client / f"{ADMIN}.pem"),
        "winhost_client_key": str(client / f"{ADMIN}.key"),
        "winhost_http_port": 5985,
        "winhost_https_port": 5986,
        "winhost_profile": state.profile,
    }


def write_inventory(state_dir: Path, states: list[HostState]) -> Path:
    secrets_ = json.loads((state_dir / SECRETS_FILE).read_text(encoding="utf-8"))
    hosts = {state.computer_name.lower(): host_vars(state_dir, state, secrets_) for state in states}
    data = {"all": {"children": {"windows": {"hosts": hosts}}}}
    path = state_dir / INVENTORY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Written by `python -m winhost start`; holds passwords (mode 0600).\n")
        yaml.safe_dump(data, handle, allow_unicode=True, sort_keys=False)
    os.chmod(path, 0o600)
    return path
