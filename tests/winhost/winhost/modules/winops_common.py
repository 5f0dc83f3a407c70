"""Helpers shared by the emulations of winops.remoting's own PowerShell modules.

Those modules are Ansible.Basic modules; these helpers reproduce the parts of Ansible.Basic
and of the Windows cmdlets they call that the emulations need: case-insensitive choices,
sub-option validation, and access to the host's persisted model through HostView.configure.
"""

from __future__ import annotations

import contextlib
import typing as t

from winhost.modules import ModuleFailure, ModuleRun, Option, validate
from winhost.state import HostState, StoredCert

MY_STORE = "LocalMachine\\My"
ROOT_STORE = "LocalMachine\\Root"
INTERMEDIATE_STORE = "LocalMachine\\CA"


def check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    """Ansible.Basic accepts a choice in any case (silently) and keeps the value as given."""
    if value is None:
        return None
    if value.lower() not in (c.lower() for c in choices):
        raise ModuleFailure(
            f"value of {name} must be one of: {', '.join(choices)}. Got no match for: {value}"
        )
    return value


def sub_options(run: ModuleRun, name: str, options: dict[str, Option]) -> dict[str, t.Any] | None:
    """A `type = 'dict'` option with `options`: validated like Ansible.Basic, context named."""
    value = run.params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModuleFailure(
            f"argument for {name} is of type {type(value).__name__} and we were unable to "
            "convert to dict"
        )
    try:
        return validate(options, value, run.module_name, ignore_unknown=False)
    except ModuleFailure as err:
        raise ModuleFailure(f"{err.msg} found in {name}") from err


@contextlib.contextmanager
def host_model(run: ModuleRun) -> t.Iterator[HostState]:
    """The host's persisted model; changes are saved and applied live when the block ends."""
    configure = getattr(run.ctx.host, "configure", None)
    if configure is None:
        raise ModuleFailure(
            f"winhost cannot run {run.module_name} here: this host "
            f"({type(run.ctx.host).__name__}) does not expose its configuration "
            "(HostView.configure)"
        )
    with configure() as state:
        yield state


def store_cert(state: HostState, store: str, thumbprint: str) -> StoredCert | None:
    wanted = thumbprint.upper()
    return next((c for c in state.store_certs(store) if c.thumbprint.upper() == wanted), None)


def ps_equal(left: t.Any, right: t.Any) -> bool:
    """PowerShell's -eq: strings compare case-insensitively."""
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    return left == right


def established_connections(run: ModuleRun) -> list[tuple[str, int, str]]:
    """(LocalAddress, LocalPort, RemoteAddress) of Get-NetTCPConnection -State Established on
    the host's WinRM listeners, without the host's connections to itself (client and local
    address equal): the modules' guards leave those out, as firewall rules have no effect on
    loopback traffic. Takes the host's lock: call it outside the state lock."""
    established = getattr(run.ctx.host, "established_connections", None)
    if established is None:
        raise ModuleFailure(
            "winhost does not model Get-NetTCPConnection on this host "
            f"({type(run.ctx.host).__name__} has no established_connections)"
        )
    return [(local, port, remote) for local, port, remote in established() if remote != local]
