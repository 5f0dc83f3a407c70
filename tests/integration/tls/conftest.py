"""winhost targets for the TLS tests: hosts of the `legacy` profile (Windows Server 2008 R2 SP1
with WMF 5.1, whose HTTPS listener offers TLS 1.0 only).

One winhost session of its own from FIRST, the start of the `tls` block of address_blocks.py
(127.0.10.110-119 unless TLS_FIRST moves it; the legacy hosts are 110-112). Each host has one
job, because the tests change them for good: `refuse` stays legacy, `fix` gets the tls12 role
and its reboot, `reboot` is restarted with win_reboot alone. Playbooks run through the real ansible-playbook with this collection's
plugins (the installed build when WINOPS_COLLECTIONS_PATH is set, else build/dev).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import sys
import threading
import time
import typing as t
import warnings
from pathlib import Path

import pytest
import yaml
from address_blocks import block

from winhost import profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "roles"))
from module_playbook import PlaybookRun, run_playbook

BLOCK = block("tls")
FIRST = BLOCK.first
OFFSETS = {"refuse": 0, "fix": 1, "reboot": 2}
# test_cipher_suites.py's session follows at FIRST + len(OFFSETS).
assert sorted(OFFSETS.values()) == list(range(len(OFFSETS)))
PLUGINS = ("winrm", "psrp")


def connection_vars(plugin: str, scheme: str, ca_bundle: str) -> dict[str, t.Any]:
    """Inventory variables for `plugin`: HTTPS with NTLM and certificate validation against the
    test CA, or HTTP with NTLM message encryption (which needs no TLS at all)."""
    https = scheme == "https"
    if plugin == "winrm":
        variables: dict[str, t.Any] = {
            "ansible_winrm_scheme": scheme,
            "ansible_winrm_transport": "ntlm",
            "ansible_winrm_reconnection_retries": 0,
        }
        if https:
            variables["ansible_winrm_server_cert_validation"] = "validate"
            variables["ansible_winrm_ca_trust_path"] = ca_bundle
        else:
            variables["ansible_winrm_message_encryption"] = "always"
    else:
        variables = {
            "ansible_psrp_protocol": scheme,
            "ansible_psrp_auth": "ntlm",
            "ansible_psrp_reconnection_retries": 0,
        }
        if https:
            variables["ansible_psrp_cert_validation"] = "validate"
            variables["ansible_psrp_ca_cert"] = ca_bundle
        else:
            variables["ansible_psrp_message_encryption"] = "always"
    return {
        "ansible_connection": f"winops.remoting.{plugin}",
        "ansible_port": 5986 if https else 5985,
        "ansible_shell_type": "powershell",
        **variables,
    }


def _write_private_yaml(path: Path, data: t.Any) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


@dataclasses.dataclass
class TlsTargets:
    session: WinhostSession
    work: Path

    def name(self, role: str) -> str:
        return profiles.host_name(FIRST + OFFSETS[role])

    def address(self, role: str) -> str:
        return f"{profiles.ADDRESS_PREFIX}{FIRST + OFFSETS[role]}"

    def state(self, role: str) -> dict[str, t.Any]:
        return self.session.state(self.name(role))

    @property
    def ca_bundle(self) -> str:
        return str(self.session.host_vars(self.name("refuse"))["winhost_ca_bundle"])

    def play(
        self,
        role: str,
        plugin: str,
        scheme: str,
        body: str,
        *,
        label: str,
        extra_vars: dict[str, t.Any] | None = None,
    ) -> PlaybookRun:
        """Run the playbook `body` (YAML naming its host as HOST) against the host through
        `plugin` over `scheme` ("https": validated against the test CA; "http": encrypted)."""
        work = self.work / f"{role}-{plugin}-{label}"
        work.mkdir(parents=True, exist_ok=True)
        playbook = work / "play.yml"
        playbook.write_text(body.replace("HOST", self.name(role)), encoding="utf-8")
        overlay = _write_private_yaml(
            work / "connection.yml",
            {
                "all": {
                    "vars": {
                        **connection_vars(plugin, scheme, self.ca_bundle),
                        **(extra_vars or {}),
                    }
                }
            },
        )
        return run_playbook(playbook, [self.session.inventory, overlay], work)

    def wait_until_up(self, role: str, timeout: float = 30.0) -> dict[str, t.Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(role)
            if not state["runtime"]["down"] and state["runtime"]["listening"]:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name(role)} did not come back: {state['runtime']}")
            time.sleep(0.2)


def handshake(address: str, ca_bundle: str, legacy_client: bool = False) -> str:
    """Version a TLS handshake with the host's HTTPS listener negotiates: a default client
    (TLS 1.2 at least, as requests and urllib3 are), or one that also speaks TLS 1.0/1.1."""
    context = ssl.create_default_context(cafile=ca_bundle)
    context.check_hostname = False
    if legacy_client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection((address, 5986), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            return str(tls.version())


class RefusalWatch:
    """Tries a TCP connection to the host's HTTP port every 0.2 s while a play runs and
    records whether one was refused (the host down) and whether one succeeded afterwards."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.refused = 0
        self.accepted_after_refusal = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            try:
                with socket.create_connection((self.address, 5985), timeout=1):
                    if self.refused:
                        self.accepted_after_refusal += 1
            except OSError:
                self.refused += 1

    def __enter__(self) -> RefusalWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="session")
def tls_targets(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[TlsTargets]:
    state_dir = tmp_path_factory.mktemp("winhost-tls")
    session = start_session(state_dir, len(OFFSETS), "legacy", first=FIRST)
    try:
        yield TlsTargets(session, tmp_path_factory.mktemp("tls-plays"))
    finally:
        stop_session(session)
