"""Shells carry the name given on Create and are listed by WS-Enumeration (MS-WSMV 2.2.4.37,
3.1.4.8.2), driven by pypsrp (an independent client) and by the winrm plugin's Protocol."""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError as PsrpFault
from pypsrp.shell import WinRS
from shells_helpers import ADMIN, OTHER, InProcessServer, ScriptedEngine, SettingsHost

from ansible_collections.winops.remoting.plugins.plugin_utils.session import _winrm_protocol
from winhost import faults

CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
NS = {
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
}


@pytest.fixture
def server(tmp_path: Path) -> t.Iterator[InProcessServer]:
    host = SettingsHost(tmp_path)
    faults.clear(host.computer_name)
    yield InProcessServer(host, ScriptedEngine())
    faults.clear(host.computer_name)


def _enumerate(server: InProcessServer, optimized: bool = True) -> list[tuple[str, str | None]]:
    body = ET.Element(f"{{{NS['n']}}}Enumerate")
    if optimized:
        ET.SubElement(body, f"{{{NS['w']}}}OptimizeEnumeration")
        ET.SubElement(body, f"{{{NS['w']}}}MaxElements").text = "32000"
    answer = server.pypsrp().enumerate(CMD, body)
    assert answer.find("n:EnumerateResponse/w:EndOfSequence", NS) is not None
    return [
        (
            shell.findtext("rsp:ShellId", namespaces=NS) or "",
            shell.findtext("rsp:Name", namespaces=NS),
        )
        for shell in answer.findall("n:EnumerateResponse/w:Items/rsp:Shell", NS)
    ]


def test_a_shell_keeps_the_name_given_on_create_and_is_listed(server: InProcessServer) -> None:
    wsman = server.pypsrp()
    named = WinRS(wsman, name="deploy-1")
    named.open()
    unnamed = WinRS(wsman)
    unnamed.open()
    listed = dict(_enumerate(server))
    assert listed == {named.id.upper(): "deploy-1", unnamed.id.upper(): None}
    named.close()
    assert dict(_enumerate(server)) == {unnamed.id.upper(): None}
    unnamed.close()


def test_the_create_answer_leaves_the_name_out(server: InProcessServer) -> None:
    # As a real host answers (pypsrp's recording test_winrs_extra_opts.yml): the name is kept
    # and listed, but the Create answer does not repeat it.
    named = WinRS(server.pypsrp(), name="deploy-2")
    named.open()
    answer = ET.fromstring(server.last_body)
    shell = answer.find(".//rsp:Shell", NS)
    assert shell is not None and shell.findtext("rsp:ShellId", namespaces=NS)
    assert shell.find("rsp:Name", NS) is None
    assert dict(_enumerate(server)) == {named.id.upper(): "deploy-2"}
    named.close()


def test_a_user_lists_only_the_users_own_shells_an_administrator_all(
    server: InProcessServer,
) -> None:
    mine = WinRS(server.pypsrp(), name="admin's")
    mine.open()
    server.principal = OTHER
    theirs = WinRS(server.pypsrp(), name="operator's")
    theirs.open()
    assert [name for _id, name in _enumerate(server)] == ["operator's"]
    server.principal = ADMIN
    assert sorted(name or "" for _id, name in _enumerate(server)) == ["admin's", "operator's"]


def test_enumeration_without_optimize_enumeration_is_not_modelled(
    server: InProcessServer,
) -> None:
    with pytest.raises(PsrpFault) as raised:
        _enumerate(server, optimized=False)
    assert "winhost does not model" in str(raised.value)


def test_the_plugin_names_its_shells_and_finds_them(server: InProcessServer) -> None:
    protocol = server.pywinrm(_winrm_protocol.Protocol)
    first = protocol.open_shell(codepage=65001, name="winops-remoting-test")
    second = protocol.open_shell(codepage=65001)
    assert sorted(protocol.list_shells(), key=lambda shell: shell[1] or "") == sorted(
        [(first, "winops-remoting-test"), (second, None)], key=lambda shell: shell[1] or ""
    )
    protocol.close_shell(first, close_session=False)
    assert protocol.list_shells() == [(second, None)]
