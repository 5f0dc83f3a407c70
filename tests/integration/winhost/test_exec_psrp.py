"""Execution engine behind ansible-core's own ansible.builtin.psrp plugin, over real PSRP framing.

pypsrp (client) and psrpcore's ServerRunspacePool (server) exchange real PSRP messages; only the
WinRS transport is replaced by an in-process bridge, and the pipelines the client creates run in
the engine. This pins down what the engine gets and must answer over PSRP (input objects, output
objects, error records, the exit code the shell reports through the SetShouldExit host call)
independently of the network layers; the end-to-end suite covers those.
"""

from __future__ import annotations

import base64
import hashlib
import os
import typing as t
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock

import psrpcore
import pytest
from exec_helpers import ADMIN, FakeHost, init_ansible
from psrpcore.types import (
    ErrorCategoryInfo,
    ErrorRecord,
    HostMethodIdentifier,
    NETException,
    PSInvocationState,
)
from pypsrp.exceptions import WSManFaultError
from pypsrp.wsman import NAMESPACES

from winhost import api
from winhost.execution import create_engine


class EngineBridge:
    """The PSRP server side of one runspace pool, running pipelines in the engine."""

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.engine = create_engine()
        self.pool = psrpcore.ServerRunspacePool()
        self.processes: dict[uuid.UUID, api.Process] = {}
        self.pending: dict[uuid.UUID | None, bytearray] = {}
        self.commands: list[list[api.PipelineCommand]] = []

    def feed(self, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
        while (event := self.pool.next_event()) is not None:
            if isinstance(event, psrpcore.CreatePipelineEvent):
                commands = [
                    api.PipelineCommand(c.command_text, c.is_script, list(c.parameters))
                    for c in event.pipeline.commands
                ]
                self.commands.append(commands)
                # Windows sends no PipelineState(Running) message (psrpcore's start() would): the
                # first Receive must carry output, as ansible.builtin.psrp's fetch_file reads its
                # first poll as "[FILE]"/"[DIR]" and otherwise copies nothing.
                self.pool.pipeline_table[event.pipeline_id]._change_state(
                    PSInvocationState.Running, emit=False
                )
                process = self.engine.start_pipeline(self.host, ADMIN, commands)
                self.processes[event.pipeline_id] = process
                if event.pipeline.no_input:
                    process.send_input([], True)
            elif isinstance(event, psrpcore.PipelineInputEvent):
                self.processes[event.pipeline_id].send_input([event.data], False)
            elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
                self.processes[event.pipeline_id].send_input([], True)

    def take(self, pipeline_id: uuid.UUID | None) -> bytes:
        if pipeline_id in self.processes:
            pipeline = self.pool.pipeline_table[pipeline_id]
            batch = self.processes[pipeline_id].read_output(0.5)
            for obj in batch.objects:
                pipeline.write_output(obj)
            for message in batch.errors:
                pipeline.write_error(NETException(message), ErrorCategoryInfo())
            if batch.finished:
                if batch.terminating_error is not None:
                    failure = ErrorRecord(
                        Exception=NETException(batch.terminating_error.message),
                        CategoryInfo=ErrorCategoryInfo(),
                        FullyQualifiedErrorId=batch.terminating_error.fully_qualified_error_id,
                    )
                    pipeline._change_state(PSInvocationState.Failed, error=failure)
                else:
                    if batch.exit_code:
                        pipeline.host_call(HostMethodIdentifier.SetShouldExit, [batch.exit_code])
                    pipeline.complete()
                del self.processes[pipeline_id]
        while (payload := self.pool.data_to_send()) is not None:
            self.pending.setdefault(payload.pipeline_id, bytearray()).extend(payload.data)
        return bytes(self.pending.pop(pipeline_id, b""))


class BridgeShell:
    """Stands in for pypsrp.shell.WinRS, answering from the bridge."""

    bridge: EngineBridge

    def __init__(self, wsman: t.Any, resource_uri: str, id: str, **kwargs: t.Any) -> None:
        self.id = id

    def open(self, options: t.Any = None, open_content: ET.Element | None = None) -> None:
        assert open_content is not None
        self.bridge.feed(base64.b64decode(open_content.text or ""), None)

    def command(self, executable: str, arguments: list[str], command_id: str) -> ET.Element:
        pipeline_id = uuid.UUID(command_id)
        psrpcore.ServerPipeline(self.bridge.pool, pipeline_id)
        self.bridge.feed(base64.b64decode(arguments[0]), pipeline_id)
        body = ET.Element("Body")
        response = ET.SubElement(body, f"{{{NAMESPACES['rsp']}}}CommandResponse")
        ET.SubElement(response, f"{{{NAMESPACES['rsp']}}}CommandId").text = command_id.upper()
        return body

    def send(self, stream: str, data: bytes, command_id: str | None = None) -> None:
        self.bridge.feed(data, uuid.UUID(command_id) if command_id else None)

    def receive(
        self, stream: str = "stdout", command_id: str | None = None, timeout: int | None = None
    ) -> tuple[str, None, dict[str, bytes]]:
        data = self.bridge.take(uuid.UUID(command_id) if command_id else None)
        if not data:
            raise WSManFaultError(2150858793, "bridge", "OperationTimeout", "", "")
        return "", None, {"stdout": data}

    def signal(self, code: str, command_id: str) -> None:
        process = self.bridge.processes.pop(uuid.UUID(command_id), None)
        if process is not None:
            process.terminate()

    def close(self) -> None:
        return None


@pytest.fixture
def psrp(tmp_path: Path) -> t.Iterator[tuple[t.Any, EngineBridge]]:
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    init_ansible()
    bridge = EngineBridge(FakeHost(tmp_path / "C"))
    shell_class = type("BoundBridgeShell", (BridgeShell,), {"bridge": bridge})
    with mock.patch("pypsrp.powershell.WinRS", shell_class):
        conn = connection_loader.get("psrp", PlayContext(), None)
        conn.set_options(
            var_options={
                "ansible_host": "127.0.10.1",
                "ansible_user": "ansible",
                "ansible_password": "Pässw0rd-ü1!",
            }
        )
        conn._connect()
        yield conn, bridge
        conn.close()


def test_raw_commands_and_exit_codes(psrp: tuple[t.Any, EngineBridge]) -> None:
    conn, bridge = psrp
    assert conn.exec_command("hostname") == (0, b"WIN1", b"")
    assert bridge.commands[-1][0].text == "hostname\nexit $LASTEXITCODE"
    assert conn.exec_command("exit 3")[0] == 3
    # As on Windows (ansible-core's win_raw target, `raw: uname -a` under psrp): the unknown
    # command fails the pipeline before the plugin's "exit $LASTEXITCODE" runs, so rc is 1.
    rc, stdout, stderr = conn.exec_command("Get-Unicorn")
    assert (rc, stdout) == (1, b"")
    assert b"The term 'Get-Unicorn' is not recognized" in stderr


def test_module_through_the_bootstrap_with_input_objects(psrp: tuple[t.Any, EngineBridge]) -> None:
    import json

    from exec_helpers import module_payload, shell_plugin

    conn, _ = psrp
    payload = module_payload("ansible.windows.win_ping", {"data": "über"})
    rc, stdout, _ = conn.exec_command(
        shell_plugin().build_module_command("", "", ""), in_data=payload
    )
    assert rc == 0
    assert json.loads(stdout)["ping"] == "über"
    payload = module_payload("ansible.windows.win_ping", {"data": "crash"})
    rc, stdout, _ = conn.exec_command(
        shell_plugin().build_module_command("", "", ""), in_data=payload
    )
    assert rc == 1
    assert json.loads(stdout)["msg"] == "Unhandled exception while executing module: boom"


def test_builtin_put_and_fetch(psrp: tuple[t.Any, EngineBridge], tmp_path: Path) -> None:
    conn, bridge = psrp
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(400_003))
    conn.put_file(str(source), "C:\\Windows\\Temp\\copy.bin")
    stored = bridge.host.root / "Windows" / "Temp" / "copy.bin"
    assert stored.read_bytes() == source.read_bytes()
    conn.fetch_file("C:\\Windows\\Temp\\copy.bin", str(tmp_path / "back.bin"))
    assert (
        hashlib.sha1((tmp_path / "back.bin").read_bytes()).hexdigest()
        == hashlib.sha1(source.read_bytes()).hexdigest()
    )
    from ansible.errors import AnsibleError

    # The exec wrapper turns the script's Write-Error into its failure JSON and exit code 1,
    # which the plugin reports with the (empty) stderr.
    with pytest.raises(AnsibleError, match="failed to transfer file to"):
        conn.fetch_file("C:\\Windows\\Temp\\missing.bin", str(tmp_path / "missing.bin"))
