"""Execution engine: file transfer scripts — ours (plugin_utils.transfer._transfer, both WinRS and PSRP
framing) and ansible-core 2.19's builtin winrm/psrp put/fetch — against real sandbox bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import typing as t
from pathlib import Path

import pytest
from exec_helpers import ADMIN, EngineWinRM, FakeHost, run_to_end

from ansible_collections.winops.remoting.plugins.plugin_utils.core._clixml import clean_stderr
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer
from winhost import api


@pytest.fixture
def random_file(tmp_path: Path) -> Path:
    path = tmp_path / "random.bin"
    path.write_bytes(os.urandom(300_001))
    return path


def winrs_script(
    engine: api.ExecutionEngine, host: FakeHost, script: str, lines: list[str]
) -> api.OutputBatch:
    command, *args = _transfer.powershell_command_line(script).split(" ")
    process = engine.start_command_line(host, ADMIN, command, args)
    data = b"".join(line.encode("ascii") + b"\r\n" for line in lines)
    # Send in uneven pieces, as WinRS Send chunks arrive.
    for start in range(0, len(data), 7001):
        process.send_input(data[start : start + 7001], start + 7001 >= len(data))
    if not data:
        process.send_input(b"", True)
    return run_to_end(process)


def psrp_script(
    engine: api.ExecutionEngine, host: FakeHost, script: str, lines: list[t.Any]
) -> api.OutputBatch:
    process = engine.start_pipeline(host, ADMIN, [api.PipelineCommand(script, True, [])])
    process.send_input(lines, True)
    return run_to_end(process)


@pytest.mark.parametrize("framing", [winrs_script, psrp_script])
def test_our_put_then_fetch_round_trip(
    engine: api.ExecutionEngine, host: FakeHost, random_file: Path, tmp_path: Path, framing
) -> None:  # type: ignore[no-untyped-def]
    dest = "C:\\Users\\ansible\\Desktop\\ünïcode dir\\file [1].bin"
    (host.root / "Users" / "ansible" / "Desktop" / "ünïcode dir").mkdir(parents=True)
    lines = [
        _transfer.encode_header({"path": dest}),
        *_transfer.iter_put_lines(str(random_file), 65_536),
    ]
    batch = framing(engine, host, _transfer.PUT_SCRIPT, lines)
    assert batch.exit_code in (0, None)
    result_line = batch.stdout.decode().strip() if batch.stdout else batch.objects[-1]
    sha1, size = _transfer.parse_result_line(result_line)
    assert sha1 == _transfer.sha1_of_file(str(random_file))
    assert size == random_file.stat().st_size
    stored = host.root / "Users" / "ansible" / "Desktop" / "ünïcode dir" / "file [1].bin"
    assert stored.read_bytes() == random_file.read_bytes()

    header = _transfer.encode_header({"path": dest.upper(), "chunk_size": 100_000})
    batch = framing(engine, host, _transfer.FETCH_SCRIPT, [header])
    decoder = _transfer.FetchDecoder(str(tmp_path / "back.bin"))
    decoder.feed(batch.stdout.decode() if batch.stdout else "\n".join(batch.objects) + "\n")
    remote_sha1, remote_size = decoder.finish()
    assert (remote_sha1, remote_size) == (sha1, size)
    assert decoder.local_sha1 == sha1


def test_our_put_of_an_empty_file(engine: api.ExecutionEngine, host: FakeHost) -> None:
    batch = winrs_script(
        engine, host, _transfer.PUT_SCRIPT, [_transfer.encode_header({"path": "C:\\empty.txt"})]
    )
    assert batch.exit_code == 0
    assert _transfer.parse_result_line(batch.stdout.decode().strip()) == (
        hashlib.sha1(b"").hexdigest(),
        0,
    )
    assert (host.root / "empty.txt").read_bytes() == b""


def test_our_transfer_errors_exit_1_with_the_reason_on_stderr(
    engine: api.ExecutionEngine, host: FakeHost, random_file: Path
) -> None:
    lines = [
        _transfer.encode_header({"path": "C:\\no\\such\\dir\\f.bin"}),
        *_transfer.iter_put_lines(str(random_file), 65_536),
    ]
    batch = winrs_script(engine, host, _transfer.PUT_SCRIPT, lines)
    assert batch.exit_code == 1
    assert batch.stdout == b""
    assert (
        "winops.remoting put: the parent directory 'C:\\no\\such\\dir' of 'C:\\no\\such\\dir\\f.bin' does not exist"
        in clean_stderr(batch.stderr.decode())
    )

    broken = [_transfer.encode_header({"path": "C:\\half.bin"}), "QUJD", "!!not base64!!"]
    batch = winrs_script(engine, host, _transfer.PUT_SCRIPT, broken)
    assert batch.exit_code == 1
    assert not (host.root / "half.bin").exists()  # nothing half-written left behind

    batch = winrs_script(
        engine,
        host,
        _transfer.FETCH_SCRIPT,
        [_transfer.encode_header({"path": "D:\\x", "chunk_size": 10})],
    )
    assert batch.exit_code == 1
    assert "winops.remoting fetch: 'D:\\x' does not exist" in clean_stderr(batch.stderr.decode())
    (host.root / "adir").mkdir(parents=True, exist_ok=True)
    batch = psrp_script(
        engine,
        host,
        _transfer.FETCH_SCRIPT,
        [_transfer.encode_header({"path": "C:\\adir", "chunk_size": 10})],
    )
    assert batch.exit_code == 1
    assert batch.errors == ["winops.remoting fetch: 'C:\\adir' is a directory"]


def test_an_unknown_transfer_protocol_version_is_refused(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    script = _transfer.PUT_SCRIPT.replace("put v1", "put v2", 1)
    batch = psrp_script(engine, host, script, [])
    assert batch.had_errors
    assert "winhost does not model the transfer protocol" in batch.errors[0]


def test_builtin_winrm_put_and_fetch(
    engine: api.ExecutionEngine, host: FakeHost, random_file: Path, tmp_path: Path
) -> None:
    conn = EngineWinRM(engine, host, ADMIN).connection
    conn.put_file(str(random_file), "C:\\Windows\\Temp\\copy.bin")
    assert (host.root / "Windows" / "Temp" / "copy.bin").read_bytes() == random_file.read_bytes()
    conn.fetch_file("C:\\Windows\\Temp\\copy.bin", str(tmp_path / "fetched.bin"))
    assert (tmp_path / "fetched.bin").read_bytes() == random_file.read_bytes()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    conn.put_file(str(empty), "C:\\Windows\\Temp\\empty")
    assert (host.root / "Windows" / "Temp" / "empty").read_bytes() == b""
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError, match="failed to transfer file"):
        conn.fetch_file("C:\\Windows\\Temp\\missing.bin", str(tmp_path / "missing.bin"))


def test_builtin_psrp_put_and_fetch_actions(
    engine: api.ExecutionEngine, host: FakeHost, random_file: Path
) -> None:
    from ansible.executor.powershell.module_manifest import _bootstrap_powershell_script

    script, in_data = _bootstrap_powershell_script(
        "psrp_put_file.ps1", {"Path": "C:\\p.bin"}, has_input=True
    )
    data = random_file.read_bytes()
    chunks = [base64.b64encode(data[i : i + 50_000]).decode() for i in range(0, len(data), 50_000)]
    # The builtin psrp plugin yields each chunk as a one-element list: PowerShell binds that
    # array to the [string] parameter as its items joined by spaces, i.e. the chunk itself.
    batch = psrp_script(
        engine, host, script, [*in_data.decode().splitlines(), *([c] for c in chunks)]
    )
    assert json.loads(batch.objects[-1]) == {"sha1": hashlib.sha1(data).hexdigest()}

    script, in_data = _bootstrap_powershell_script(
        "psrp_fetch_file.ps1", {"Path": "C:\\p.bin", "BufferSize": 65_536}
    )
    batch = psrp_script(engine, host, script, in_data.decode().splitlines())
    assert batch.objects[0] == "[FILE]"
    assert b"".join(base64.b64decode(o) for o in batch.objects[1:]) == data
    script, in_data = _bootstrap_powershell_script(
        "psrp_fetch_file.ps1", {"Path": "C:\\none", "BufferSize": 10}
    )
    batch = psrp_script(engine, host, script, in_data.decode().splitlines())
    assert batch.exit_code == 1
    assert (
        json.loads(batch.objects[-1])["msg"]
        == "failure during exec_wrapper: C:\\none does not exist"
    )
