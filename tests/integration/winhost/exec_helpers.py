"""Helpers for the execution-engine tests: a small HostView over a temp dir, and the real
command lines/manifests ansible-core 2.19 builds (made by ansible's own code, not by hand)."""

from __future__ import annotations

import dataclasses
import json
import typing as t
from pathlib import Path
from typing import Any

from winhost import api


@dataclasses.dataclass
class FakeHost:
    """Implements api.HostView for tests: two local accounts on WIN1."""

    root: Path
    accounts: list[api.Account] = dataclasses.field(
        default_factory=lambda: [
            api.Account("ansible", "Pässw0rd-ü1!", "WIN1", is_admin=True),
            api.Account("operator", "0perator-pw", "WIN1", is_admin=False),
            api.Account("disabled", "disabled-pw", "WIN1", is_admin=False, enabled=False),
        ]
    )
    model_facts: dict[str, t.Any] = dataclasses.field(
        default_factory=lambda: {"ip_addresses": ["127.0.10.1", "fe80::1"], "timezone": "UTC"}
    )
    # The modelled costs the commands paid (no latency profile here: nothing is slept).
    paid: list[str] = dataclasses.field(default_factory=list)

    @property
    def computer_name(self) -> str:
        return "WIN1"

    @property
    def fqdn(self) -> str:
        return "win1.winops.test"

    @property
    def fs_root(self) -> Path:
        return self.root

    def find_account(self, name: str) -> api.Account | None:
        short = name.rsplit("\\", maxsplit=1)[-1].split("@", maxsplit=1)[0].lower()
        return next((a for a in self.accounts if a.name.lower() == short), None)

    def account_sid(self, principal: api.Principal) -> str:
        if principal.username.upper() == "SYSTEM":
            return "S-1-5-18"
        names = [a.name.lower() for a in self.accounts]
        return f"S-1-5-21-1-2-3-{1000 + names.index(principal.username.lower())}"

    def winrm_setting(self, path: str) -> str:
        raise KeyError(path)

    def pay(self, operation: str) -> None:
        self.paid.append(operation)

    def facts(self) -> dict[str, t.Any]:
        return dict(self.model_facts)


_LOADER_READY = False


def init_ansible() -> None:
    """ansible's plugin loader, configured once per test process."""
    global _LOADER_READY  # noqa: PLW0603 - one-time process-wide initialisation
    if not _LOADER_READY:
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader()
        _LOADER_READY = True


ADMIN = api.Principal("ansible", "WIN1", "NTLM", is_admin=True)
OPERATOR = api.Principal("operator", "WIN1", "NTLM", is_admin=False)


def run_to_end(process: api.Process, timeout: float = 30.0) -> api.OutputBatch:
    """Read until finished; returns one batch with everything concatenated."""
    total = api.OutputBatch()
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = process.read_output(1.0)
        total.stdout += batch.stdout
        total.stderr += batch.stderr
        total.objects += batch.objects
        total.errors += batch.errors
        total.error_records += batch.error_records
        total.had_errors = total.had_errors or batch.had_errors
        if batch.finished:
            total.finished = True
            total.exit_code = batch.exit_code
            total.terminating_error = batch.terminating_error
            return total
    raise AssertionError("process did not finish")


def shell_plugin() -> t.Any:
    from ansible.plugins.loader import shell_loader

    init_ansible()
    shell = shell_loader.get("powershell")
    shell.set_options(var_options={}, direct={"remote_tmp": "%TEMP%"})
    return shell


def module_payload(
    module: str,
    args: dict[str, t.Any],
    become_user: str | None = None,
    become_pass: str | None = None,
    *,
    async_timeout: int = 0,
    environment: dict[str, str] | None = None,
) -> bytes:
    """The exact stdin ansible-core 2.19 sends to the bootstrap wrapper for a module (with
    `async_timeout`, the manifest of a task with `async:`; it needs ANSIBLE_ASYNC_DIR in
    `environment`, as ActionBase adds it)."""
    from ansible.executor.module_common import modify_module
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import become_loader, module_loader
    from ansible.template import Templar

    init_ansible()
    found = module_loader.find_plugin_with_context(module, mod_type=".ps1")
    assert found.resolved, module
    become = None
    if become_user is not None:
        become = become_loader.get("runas")
        direct = {"become_user": become_user}
        if become_pass is not None:
            direct["become_pass"] = become_pass
        become.set_options(direct=direct)
    built = modify_module(
        module_name=module,
        module_path=found.plugin_resolved_path,
        module_args=dict(args),
        templar=Templar(loader=DataLoader()),
        task_vars={},
        become_plugin=become,
        async_timeout=async_timeout,
        environment=environment or {},
    )
    return built.b_module_data


def split_command(cmd: str) -> tuple[str, list[str]]:
    """How the builtin winrm plugin hands a shell-plugin command to pywinrm."""
    parts = cmd.split(" ")
    return parts[0], parts[1:]


def result_json(stdout: bytes) -> dict[str, t.Any]:
    lines = [ln for ln in stdout.decode("utf-8").splitlines() if ln.strip()]
    assert lines, "no output"
    return json.loads(lines[-1])


class EngineWinRM:
    """ansible-core's own winrm Connection with its WinRS exchange replaced by a direct call into
    the engine: put_file/fetch_file/exec_command build their real scripts and stdin."""

    def __init__(
        self, engine: api.ExecutionEngine, host: api.HostView, principal: api.Principal
    ) -> None:
        from ansible.playbook.play_context import PlayContext
        from ansible.plugins.loader import connection_loader

        init_ansible()
        self.calls: list[tuple[str, list[str]]] = []
        conn = connection_loader.get("winrm", PlayContext(), None)
        conn.set_options(var_options={"ansible_host": "127.0.10.1"})

        def fake_exec(
            command: Any, args: Any = (), from_exec: bool = False, stdin_iterator: Any = None
        ) -> tuple[int, bytes, bytes]:
            from ansible.module_utils.common.text.converters import to_text
            from ansible.plugins.shell.powershell import _parse_clixml

            text_args = [to_text(a) for a in args]
            self.calls.append((to_text(command), text_args))
            process = engine.start_command_line(host, principal, to_text(command), text_args)
            if stdin_iterator is not None:
                for data, is_last in stdin_iterator:
                    process.send_input(data, is_last)
            batch = run_to_end(process)
            stderr = batch.stderr
            if stderr.startswith(b"#< CLIXML"):
                stderr = _parse_clixml(stderr)
            assert batch.exit_code is not None
            return batch.exit_code, batch.stdout, stderr

        conn._winrm_exec = fake_exec
        conn._winrm_host = "127.0.10.1"
        conn._connected = True
        self.connection = conn


# The powershell shell plugin's default async_dir, which ActionBase passes as ANSIBLE_ASYNC_DIR.
ASYNC_DIR = "%USERPROFILE%\\.ansible_async"


def task_args(module: str, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    """Module args plus the _ansible_* keys ActionBase adds."""
    return {
        **args,
        "_ansible_check_mode": check_mode,
        "_ansible_no_log": False,
        "_ansible_debug": False,
        "_ansible_diff": False,
        "_ansible_verbosity": 0,
        "_ansible_version": "2.19.0",
        "_ansible_module_name": module,
        "_ansible_syslog_facility": "LOG_USER",
        "_ansible_selinux_special_fs": [],
        "_ansible_string_conversion_action": "warn",
        "_ansible_socket": None,
        "_ansible_shell_executable": "/bin/sh",
        "_ansible_keep_remote_files": False,
        "_ansible_tmpdir": None,
        "_ansible_remote_tmp": "%TEMP%",
    }


def run_module(
    engine: api.ExecutionEngine,
    host: FakeHost,
    module: str,
    principal: api.Principal = ADMIN,
    *,
    become_user: str | None = None,
    become_pass: str | None = None,
    check_mode: bool = False,
    async_timeout: int = 0,
    **args: t.Any,
) -> tuple[int, dict[str, t.Any]]:
    """Run a module through ansible-core's winrm plugin: (rc, its one JSON line). With
    `async_timeout`, as a task with `async:` (its async directory the shell's default)."""
    environment = {"ANSIBLE_ASYNC_DIR": ASYNC_DIR} if async_timeout else None
    payload = module_payload(
        module,
        task_args(module, check_mode, **args),
        become_user,
        become_pass,
        async_timeout=async_timeout,
        environment=environment,
    )
    return run_payload(engine, host, payload, principal)


def run_payload(
    engine: api.ExecutionEngine, host: FakeHost, payload: bytes, principal: api.Principal = ADMIN
) -> tuple[int, dict[str, t.Any]]:
    """Send a bootstrap wrapper's input as ansible-core's winrm plugin does: (rc, JSON line)."""
    conn = EngineWinRM(engine, host, principal).connection
    rc, stdout, stderr = conn.exec_command(
        shell_plugin().build_module_command("", "", ""), in_data=payload
    )
    lines = [line for line in stdout.decode().splitlines() if line.strip()]
    assert len(lines) == 1, (stdout, stderr)
    return rc, json.loads(lines[0])
