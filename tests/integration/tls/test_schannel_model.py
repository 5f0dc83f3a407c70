"""winhost's SCHANNEL model without a server: which versions a host's registry lets HTTPS offer,
by Windows release (the defaults of Microsoft's table, cited in winhost.releases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from address_blocks import block

from winhost import profiles, releases, schannel
from winhost.state import HostState

BLOCK = block("tls")
SERVER = schannel.SCHANNEL_KEY + "\\{}\\Server"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostState]:
    state_dir: Path = tmp_path_factory.mktemp("schannel-model")
    # Host models that never listen; the indexes only name them (the legacy hosts' addresses).
    legacy = profiles.create_state_dir(state_dir / "legacy", 1, "legacy", first=BLOCK.index(0))[0]
    default = profiles.create_state_dir(state_dir / "default", 1, "default", first=BLOCK.index(1))[
        0
    ]
    stock = profiles.create_state_dir(state_dir / "stock", 1, "stock", first=BLOCK.index(2))[0]
    return {"legacy": legacy, "default": default, "stock": stock}


def _offered(state: HostState, keys: dict[str, dict[str, object]]) -> tuple[str, ...]:
    saved = {key: dict(values) for key, values in state.registry.items()}
    try:
        for protocol, values in keys.items():
            state.registry[SERVER.format(protocol)] = dict(values)
        return schannel.offered_versions(state, releases.release_of(state))
    finally:
        state.registry = saved


def test_profiles_name_their_release(hosts: dict[str, HostState]) -> None:
    assert releases.release_of(hosts["legacy"]) is releases.WINDOWS_SERVER_2008_R2_SP1
    assert releases.release_of(hosts["default"]) is releases.WINDOWS_SERVER_2022
    powershell = hosts["legacy"].registry[releases.POWERSHELL_ENGINE_KEY]["PowerShellVersion"]
    assert powershell.startswith("5.1.")


@pytest.mark.parametrize(
    ("profile", "keys", "offered"),
    [
        # Server 2008 R2: missing keys mean TLS 1.0 only.
        ("legacy", {}, ("TLS 1.0",)),
        # Enabled=1 alone leaves TLS 1.2 disabled by default: HTTP.sys still does not offer it.
        ("legacy", {"TLS 1.2": {"Enabled": 1}}, ("TLS 1.0",)),
        ("legacy", {"TLS 1.2": {"DisabledByDefault": 0}}, ("TLS 1.0", "TLS 1.2")),
        (
            "legacy",
            {"TLS 1.1": {"Enabled": 1, "DisabledByDefault": 0}, "TLS 1.0": {"Enabled": 0}},
            ("TLS 1.1",),
        ),
        # 2008 R2 has no TLS 1.3 whatever the registry says.
        ("legacy", {"TLS 1.3": {"Enabled": 1, "DisabledByDefault": 0}}, ("TLS 1.0",)),
        # SCHANNEL reads DWORDs only: a string "0" is no DisabledByDefault to it.
        ("legacy", {"TLS 1.2": {"Enabled": 1, "DisabledByDefault": "0"}}, ("TLS 1.0",)),
        # Server 2022 untouched (stock) offers everything; the default profile's baseline
        # turns TLS 1.0 and 1.1 off.
        ("stock", {}, ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")),
        ("default", {}, ("TLS 1.2", "TLS 1.3")),
        ("default", {"TLS 1.2": {"Enabled": 0, "DisabledByDefault": 1}}, ("TLS 1.3",)),
    ],
)
def test_offered_versions(
    hosts: dict[str, HostState],
    profile: str,
    keys: dict[str, dict[str, object]],
    offered: tuple[str, ...],
) -> None:
    assert _offered(hosts[profile], keys) == offered


def test_unknown_build_is_refused(hosts: dict[str, HostState]) -> None:
    state = hosts["stock"]
    saved = dict(state.registry[releases.CURRENT_VERSION_KEY])
    state.registry[releases.CURRENT_VERSION_KEY]["CurrentBuildNumber"] = "9600"
    try:
        with pytest.raises(ValueError, match="CurrentBuildNumber is '9600'"):
            releases.release_of(state)
    finally:
        state.registry[releases.CURRENT_VERSION_KEY] = saved
