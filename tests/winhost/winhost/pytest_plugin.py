"""pytest support: the session-scoped `winhost` fixture (registered by tests/integration/conftest.py).

It starts hosts exactly as `python -m winhost start` does (same code, same background server
process) in a temporary state directory and stops them at the end of the session.

    def test_x(winhost):
        winhost.state_dir        # Path of the state directory
        winhost.inventory        # Path of inventory.yml (group `windows`, mode 0600)
        winhost.hosts            # [HostInfo(name="win1", address="127.0.10.1", ...), ...]
        winhost.credentials("win1")   # (user, password) of the admin account
        winhost.fault("win1", "receive_timeout", seconds=5)   # kinds: see winhost.faults
        winhost.clear_faults("win1")
        winhost.state("win1")    # JSON view of the modelled state (passwords masked)

Environment: WINHOST_HOSTS (default 3), WINHOST_PROFILE (default "default"), WINHOST_FIRST
(index of the first host, default 1: hosts are win<I> on 127.0.10.<I>; set it to run a second
test session beside one that already uses 127.0.10.1-3).
"""

from __future__ import annotations

import dataclasses
import os
import typing as t
from pathlib import Path

import pytest
import yaml

from winhost import cli

# The fixture's hosts without WINHOST_FIRST/WINHOST_HOSTS: 127.0.10.1-3, the `winhost_fixture`
# block of tests/integration/address_blocks.py (tests/unit/test_address_blocks.py compares them).
DEFAULT_FIRST = 1
DEFAULT_HOSTS = 3


@dataclasses.dataclass(frozen=True)
class HostInfo:
    name: str
    address: str
    computer_name: str
    fqdn: str
    http_port: int
    https_port: int

    @property
    def http_endpoint(self) -> str:
        return f"http://{self.address}:{self.http_port}/wsman"

    @property
    def https_endpoint(self) -> str:
        return f"https://{self.address}:{self.https_port}/wsman"


class WinhostSession:
    """Running winhost hosts of one state directory."""

    def __init__(self, state_dir: Path, inventory: Path) -> None:
        self.state_dir = state_dir
        self.inventory = inventory
        self._vars = yaml.safe_load(inventory.read_text(encoding="utf-8"))["all"]["children"][
            "windows"
        ]["hosts"]
        self.hosts = [
            HostInfo(
                name=name,
                address=v["ansible_host"],
                computer_name=v["winhost_computer_name"],
                fqdn=v["winhost_fqdn"],
                http_port=v["winhost_http_port"],
                https_port=v["winhost_https_port"],
            )
            for name, v in self._vars.items()
        ]

    def host_vars(self, host: str) -> dict[str, t.Any]:
        return dict(self._vars[host])

    def credentials(self, host: str) -> tuple[str, str]:
        entry = self._vars[host]
        return entry["ansible_user"], entry["ansible_password"]

    def fault(self, host: str, kind: str, **options: t.Any) -> dict[str, t.Any]:
        return cli.inject_fault(self.state_dir, host, kind, **options)

    def enroll(self, host: str, **options: t.Any) -> dict[str, t.Any]:
        """Put a certificate the test CA issues from a template into the host's
        LocalMachine\\My, as auto-enrolment does (winhost.enrolment)."""
        return cli.enroll(self.state_dir, host, **options)

    def clear_faults(self, host: str) -> None:
        cli.inject_fault(self.state_dir, host, "clear")

    def state(self, host: str | None = None) -> dict[str, t.Any]:
        return cli.get_state(self.state_dir, host)


def start_session(
    state_dir: Path,
    hosts: int,
    profile: str,
    first: int = 1,
    clock_offset: float = 0.0,
    *,
    latency_profile: str = "none",
) -> WinhostSession:
    """Start hosts like the fixture does (for tests that need another profile: pick a
    `first` index that does not collide with the session's hosts, and `stop_session` them).
    `clock_offset` shifts the hosts' clocks (winhost.clock); `latency_profile` makes them
    sleep what Windows' set-up steps cost (winhost.latency)."""
    return WinhostSession(
        state_dir,
        cli.start(
            state_dir,
            hosts=hosts,
            profile=profile,
            first=first,
            clock_offset=clock_offset,
            latency_profile=latency_profile,
        ),
    )


def stop_session(session: WinhostSession) -> None:
    cli.stop(session.state_dir)


@pytest.fixture(scope="session")
def winhost(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[WinhostSession]:
    state_dir = tmp_path_factory.mktemp("winhost")
    hosts = int(os.environ.get("WINHOST_HOSTS", str(DEFAULT_HOSTS)))
    profile = os.environ.get("WINHOST_PROFILE", "default")
    first = int(os.environ.get("WINHOST_FIRST", str(DEFAULT_FIRST)))
    latency_profile = os.environ.get("WINHOST_LATENCY", "none")
    inventory = cli.start(
        state_dir, hosts=hosts, profile=profile, first=first, latency_profile=latency_profile
    )
    try:
        yield WinhostSession(state_dir, inventory)
    finally:
        cli.stop(state_dir)
