"""Execution engine: module emulations and become (runas), fed the exact exec-wrapper manifests
ansible-core 2.19 builds (module_common.modify_module with the installed ansible.windows) and
sent through ansible-core's own winrm connection plugin."""

from __future__ import annotations

import hashlib
import io
import json
import typing as t
import zipfile
from base64 import b64encode
from pathlib import Path

import pytest
from exec_helpers import (
    ADMIN,
    OPERATOR,
    EngineWinRM,
    FakeHost,
    module_payload,
    run_module,
    run_to_end,
    shell_plugin,
    task_args,
)

from winhost import api


def test_win_ping_and_its_crash_mode(engine: api.ExecutionEngine, host: FakeHost) -> None:
    rc, result = run_module(engine, host, "ansible.windows.win_ping")
    assert rc == 0
    assert result["ping"] == "pong"
    assert result["changed"] is False
    assert result["invocation"] == {"module_args": {"data": "pong"}}
    rc, result = run_module(engine, host, "ansible.windows.win_ping", data="crash")
    assert rc == 1
    assert result["failed"] is True
    assert result["msg"] == "Unhandled exception while executing module: boom"


def test_ansible_basic_option_checks(engine: api.ExecutionEngine, host: FakeHost) -> None:
    rc, result = run_module(engine, host, "ansible.windows.win_ping", bogus=1)
    assert rc == 1
    assert result["msg"] == (
        "Unsupported parameters for (ansible.windows.win_ping) module: bogus. "
        "Supported parameters include: data"
    )
    rc, result = run_module(
        engine, host, "ansible.windows.win_stat", path="C:\\x", checksum_algorithm="crc"
    )
    assert rc == 1
    assert (
        "value of checksum_algorithm must be one of: md5, sha1, sha256, sha384, sha512"
        in result["msg"]
    )


def test_module_not_emulated_fails_naming_it(engine: api.ExecutionEngine, host: FakeHost) -> None:
    rc, result = run_module(engine, host, "ansible.windows.win_service", name="WinRM")
    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith(
        "winhost does not emulate the module ansible.windows.win_service;"
    )
    assert "ansible.windows.win_ping" in result["msg"]


def test_setup_facts_are_the_host_and_user(engine: api.ExecutionEngine, host: FakeHost) -> None:
    rc, result = run_module(engine, host, "ansible.windows.setup")
    assert rc == 0
    facts = result["ansible_facts"]
    assert facts["ansible_hostname"] == "WIN1"
    assert facts["ansible_fqdn"] == "win1.winops.test"
    assert facts["ansible_domain"] == "winops.test"
    assert facts["ansible_os_family"] == "Windows"
    assert facts["ansible_powershell_version"] == 5
    assert facts["ansible_user_id"] == "ansible"
    assert facts["ansible_user_dir"] == "C:\\Users\\ansible"
    assert facts["ansible_all_ipv4_addresses"] == ["127.0.10.1"]
    assert facts["ansible_all_ipv6_addresses"] == ["fe80::1"]
    assert facts["ansible_env"]["TEMP"] == "C:\\Users\\ansible\\AppData\\Local\\Temp"
    assert len(facts["ansible_date_time"]["iso8601"]) == 20

    rc, result = run_module(
        engine, host, "ansible.windows.setup", gather_subset=["!all", "!min", "dns"]
    )
    assert set(result["ansible_facts"]) >= {"ansible_fqdn", "ansible_hostname"}
    assert "ansible_env" not in result["ansible_facts"]


def test_become_system_is_the_default_runas_user(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    rc, result = run_module(engine, host, "ansible.windows.win_whoami", become_user="SYSTEM")
    assert rc == 0
    assert (result["account"]["domain_name"], result["account"]["account_name"]) == (
        "NT AUTHORITY",
        "SYSTEM",
    )
    assert result["account"]["sid"] == "S-1-5-18"
    rc, result = run_module(
        engine, host, "ansible.windows.setup", become_user="SYSTEM", gather_subset=["min"]
    )
    # $env:USERNAME of a SYSTEM process is the computer account.
    assert result["ansible_facts"]["ansible_user_id"] == "WIN1$"
    assert result["ansible_facts"]["ansible_user_sid"] == "S-1-5-18"
    rc, result = run_module(
        engine, host, "ansible.windows.win_shell", become_user="SYSTEM", _raw_params="whoami"
    )
    assert (rc, result["stdout"]) == (0, "nt authority\\system\r\n")


def test_become_another_account_with_its_password(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    rc, result = run_module(
        engine,
        host,
        "ansible.windows.win_command",
        become_user="operator",
        become_pass="0perator-pw",
        _raw_params="whoami",
    )
    assert (rc, result["stdout"]) == (0, "win1\\operator\r\n")


@pytest.mark.parametrize(
    ("principal", "user", "password", "message"),
    [
        (
            ADMIN,
            "operator",
            "wrong",
            'Failed to logon .\\operator (The user name or password is incorrect, Win32ErrorCode 1326 - 0x0000052E)"',
        ),
        (ADMIN, "disabled", "disabled-pw", "Win32ErrorCode 1331 - 0x00000533"),
        (ADMIN, "nobody", "x", "Some or all identity references could not be translated."),
        (
            OPERATOR,
            "SYSTEM",
            None,
            "Failed to get token for NT AUTHORITY\\SYSTEM required for become as a service account or an account without a password",
        ),
        # A standard user's WinRM logon lacks SeImpersonatePrivilege: LogonUser accepts the
        # password, starting the process does not, for an administrator or for itself.
        (
            OPERATOR,
            "ansible",
            "Pässw0rd-ü1!",
            "CreateProcessWithTokenW() failed (A required privilege is not held by the client, Win32ErrorCode 1314 - 0x00000522)",
        ),
        (OPERATOR, "operator", "0perator-pw", "Win32ErrorCode 1314 - 0x00000522"),
        (
            OPERATOR,
            "operator",
            "wrong",
            "Failed to logon .\\operator (The user name or password is incorrect, Win32ErrorCode 1326",
        ),
    ],
)
def test_become_failures_as_windows_reports_them(  # noqa: PLR0917 - pytest passes these positionally
    engine: api.ExecutionEngine,
    host: FakeHost,
    principal: api.Principal,
    user: str,
    password: str | None,
    message: str,
) -> None:
    rc, result = run_module(
        engine, host, "ansible.windows.win_ping", principal, become_user=user, become_pass=password
    )
    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith(
        'failure during exec_wrapper: Exception calling "CreateProcessAsUser" with "9" argument(s): '
    )
    assert message in result["msg"]


def test_win_stat_file_directory_and_missing(engine: api.ExecutionEngine, host: FakeHost) -> None:
    data = b"some data\r\n" * 1000
    target = host.root / "Data Dir"
    target.mkdir(parents=True)
    (target / "file.txt").write_bytes(data)
    rc, result = run_module(engine, host, "ansible.windows.win_stat", path="c:\\data dir\\FILE.txt")
    stat = result["stat"]
    assert rc == 0
    assert stat["exists"] and stat["isreg"] and not stat["isdir"]
    assert stat["checksum"] == hashlib.sha1(data).hexdigest()
    assert stat["size"] == len(data)
    assert stat["path"] == "C:\\Data Dir\\file.txt"
    assert stat["extension"] == ".txt"
    _, result = run_module(
        engine, host, "ansible.windows.win_stat", path="C:\\Data Dir", get_checksum=False
    )
    assert result["stat"]["isdir"] is True
    assert result["stat"]["size"] == len(data)
    _, result = run_module(engine, host, "ansible.windows.win_stat", path="C:\\nope")
    assert result["stat"] == {"exists": False}
    _, result = run_module(engine, host, "ansible.windows.win_stat", path="Z:\\x")
    assert result["stat"] == {"exists": False}


def test_win_file_states(engine: api.ExecutionEngine, host: FakeHost) -> None:
    rc, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\Temp\\a\\b", state="directory"
    )
    assert (rc, result["changed"]) == (0, True)
    assert (host.root / "Temp" / "a" / "b").is_dir()
    _, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\temp\\A\\b", state="directory"
    )
    assert result["changed"] is False
    _, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\Temp\\a\\f.txt", state="touch"
    )
    assert (host.root / "Temp" / "a" / "f.txt").is_file()
    rc, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\Temp\\a\\f.txt", state="directory"
    )
    assert (rc, result["msg"]) == (1, "path C:\\Temp\\a\\f.txt is not a directory")
    rc, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\Temp\\new.txt", state="file"
    )
    assert (rc, result["msg"]) == (1, "path C:\\Temp\\new.txt will not be created")
    _, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\Temp\\a", state="absent"
    )
    assert result["changed"] is True
    assert not (host.root / "Temp" / "a").exists()
    rc, result = run_module(
        engine, host, "ansible.windows.win_file", path="C:\\Temp\\x", state="bogus"
    )
    assert (
        result["msg"]
        == "Get-AnsibleParam: Argument state needs to be one of absent,directory,file,touch but was bogus."
    )


def test_slurp(engine: api.ExecutionEngine, host: FakeHost) -> None:
    (host.root / "f.bin").parent.mkdir(parents=True, exist_ok=True)
    (host.root / "f.bin").write_bytes(b"\x00\xffdata")
    rc, result = run_module(engine, host, "ansible.windows.slurp", src="C:\\f.bin")
    assert (rc, result["content"], result["encoding"]) == (
        0,
        b64encode(b"\x00\xffdata").decode(),
        "base64",
    )
    rc, result = run_module(engine, host, "ansible.windows.slurp", src="C:\\missing.bin")
    assert (rc, result["msg"]) == (1, "Path C:\\missing.bin is not found")


def test_win_copy_query_then_single_copy_as_the_action_plugin_does(
    engine: api.ExecutionEngine, host: FakeHost, tmp_path: Path
) -> None:
    local = tmp_path / "local.bin"
    local.write_bytes(b"payload" * 100)
    sha1 = hashlib.sha1(local.read_bytes()).hexdigest()
    files = [{"src": str(local), "dest": "copied.bin", "checksum": sha1}]
    rc, query = run_module(
        engine,
        host,
        "ansible.windows.win_copy",
        _copy_mode="query",
        dest="C:\\Dest",
        force=True,
        files=files,
        directories=[],
        symlinks=[],
    )
    assert (rc, query["files"]) == (0, files)

    conn = EngineWinRM(engine, host, ADMIN).connection
    tmp = "C:\\Users\\ansible\\AppData\\Local\\Temp\\ansible-tmp-9"
    (host.root / "Users" / "ansible" / "AppData" / "Local" / "Temp" / "ansible-tmp-9").mkdir(
        parents=True
    )
    conn.put_file(str(local), tmp + "\\source")
    rc, result = run_module(
        engine,
        host,
        "ansible.windows.win_copy",
        _copy_mode="single",
        src=tmp + "\\source",
        dest="C:\\Dest\\copied.bin",
        _original_basename="local.bin",
    )
    assert rc == 1
    assert result["msg"] == "Destination directory 'C:\\Dest' does not exist"
    rc, result = run_module(
        engine,
        host,
        "ansible.windows.win_copy",
        _copy_mode="single",
        src=tmp + "\\source",
        dest="C:\\Dest\\",
        _original_basename="local.bin",
    )
    assert (rc, result["changed"]) == (0, True)
    assert hashlib.sha1((host.root / "Dest" / "local.bin").read_bytes()).hexdigest() == sha1
    files = [{"src": str(local), "dest": "local.bin", "checksum": sha1}]
    _, query = run_module(
        engine,
        host,
        "ansible.windows.win_copy",
        _copy_mode="query",
        dest="C:\\Dest",
        force=True,
        files=files,
        directories=[],
        symlinks=[],
    )
    assert query["files"] == []


def test_win_copy_explode_zip_with_base64_names(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(b64encode(b"sub").decode() + "/", b"")
        archive.writestr(b64encode("sub/ü.txt".encode()).decode(), b"unicode")
    (host.root / "t").mkdir(parents=True)
    (host.root / "t" / "files.zip").write_bytes(buffer.getvalue())
    rc, result = run_module(
        engine,
        host,
        "ansible.windows.win_copy",
        _copy_mode="explode",
        src="C:\\t\\files.zip",
        dest="C:\\out",
    )
    assert (rc, result["changed"]) == (0, True)
    assert (host.root / "out" / "sub" / "ü.txt").read_bytes() == b"unicode"


def test_win_shell_and_win_command_model_only_the_raw_commands(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    rc, result = run_module(
        engine, host, "ansible.windows.win_shell", _raw_params="hostname; echo done"
    )
    assert (rc, result["stdout"], result["rc"]) == (0, "WIN1\r\ndone\r\n", 0)
    rc, result = run_module(
        engine, host, "ansible.windows.win_shell", _raw_params="Restart-Computer -Force"
    )
    assert rc == 1
    assert result["msg"] == "non-zero return code"
    assert result["rc"] == 1
    # Windows has Restart-Computer: winhost says it does not model it, not that it is missing.
    assert "winhost does not model Restart-Computer" in result["stderr"]
    assert "is not recognized" not in result["stderr"]
    rc, result = run_module(engine, host, "ansible.windows.win_command", _raw_params="net user")
    assert rc == 1
    assert result["rc"] == 2
    assert "Could not find file 'net.exe'" in result["msg"]
    rc, result = run_module(
        engine, host, "ansible.windows.win_command", _raw_params="cmd.exe /c echo hi"
    )
    assert (rc, result["stdout"]) == (0, "hi\r\n")
    rc, result = run_module(
        engine, host, "ansible.windows.win_shell", check_mode=True, _raw_params="hostname"
    )
    assert result["skipped"] is True


def test_bootstrap_over_psrp_takes_input_objects(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    import base64

    cmd = shell_plugin().build_module_command("", "", "")
    script = base64.b64decode(cmd.split(" ")[-1]).decode("utf-16-le")
    payload = module_payload("ansible.windows.win_ping", task_args("ansible.windows.win_ping"))
    process = engine.start_pipeline(host, ADMIN, [api.PipelineCommand(script, True, [])])
    process.send_input(payload.decode().splitlines(), True)
    batch = run_to_end(process)
    assert batch.had_errors is False
    assert json.loads(batch.objects[-1])["ping"] == "pong"


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        (
            "winops.remoting.win_winrm_firewall",
            {"name": "WinRM-HTTPS", "profiles": ["domain", "bogus"]},
            "value of profiles must be one or more of: any, domain, private, public. "
            "Got no match for: bogus",
        ),
        (
            "winops.remoting.win_winrm_listener",
            {"transport": "ftp"},
            "value of transport must be one of: http, https. Got no match for: ftp",
        ),
    ],
)
def test_emulations_check_choices_as_the_ps1_spec_does(
    engine: api.ExecutionEngine, host: FakeHost, module: str, args: dict[str, t.Any], message: str
) -> None:
    # Ansible.Basic refuses a value outside the .ps1 spec's choices before the module runs
    # (tests/unit/test_module_specs.py keeps the emulations' choices equal to the spec's).
    rc, result = run_module(engine, host, module, **args)
    assert rc == 1
    assert result["msg"] == message
