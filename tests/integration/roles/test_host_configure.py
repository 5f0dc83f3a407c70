"""HostView.configure, the seam the module emulations change a host through: changes are
saved and applied to the sockets when the block ends, and rolled back when it raises."""

from __future__ import annotations

import json
import socket
import typing as t

import pytest
from roles_hosts import BLOCK, OFFSETS

from winhost import pki, profiles
from winhost.host import WinHost

# After the module tests' hosts, so both can run in one session.
INDEX = BLOCK.index(len(OFFSETS))


@pytest.fixture
def host(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[WinHost]:
    secrets = {"admin_password": "Ädmin-Pässw0rd!", "operator_password": "Öp-Pässw0rd!"}
    state = profiles.build_host(
        tmp_path_factory.mktemp("configure"),
        INDEX,
        "stock",
        pki.CertificateAuthority.create(),
        secrets,
    )
    running = WinHost(state)
    running.boot()
    yield running
    running.shutdown()


def accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


def saved(host: WinHost) -> dict[str, t.Any]:
    return json.loads((host.state.directory / "state.json").read_text(encoding="utf-8"))


def test_configure_saves_and_reconciles(host: WinHost) -> None:
    address = host.state.address
    assert accepts(address, 5985)
    with host.configure() as state:
        state.listeners[0].port = 5991
        state.set_winrm_setting("Service/Auth/Basic", "true")
    assert not accepts(address, 5985) and accepts(address, 5991)
    assert saved(host)["listeners"][0]["port"] == 5991
    assert saved(host)["winrm"]["Service"]["Auth"]["Basic"] == "true"


def test_configure_rolls_back_when_the_block_raises(host: WinHost) -> None:
    address = host.state.address
    on_disk = saved(host)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), host.configure() as state:
        state.listeners.clear()
        state.set_winrm_setting("Service/AllowUnencrypted", "true")
        raise Boom
    assert [listener.port for listener in host.state.listeners] == [5985]
    assert host.state.winrm_setting("Service/AllowUnencrypted") == "false"
    assert saved(host) == on_disk
    assert accepts(address, 5985)
