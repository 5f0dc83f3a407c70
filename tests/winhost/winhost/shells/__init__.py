"""winhost's shells: the WinRS cmd shell and the PowerShell (PSRP) shell.

`shell_handlers(host, engine)` is the seam the WS-Management router uses. The mapping it returns
is keyed by resource URI; besides the two fixed URIs it answers for every URI under
http://schemas.microsoft.com/powershell/ (`get`, `in` and `[]`), so that a client asking for a
session configuration the host does not have gets the fault Windows sends from the PowerShell
handler instead of a generic one.
"""

from __future__ import annotations

import typing as t

from winhost import api
from winhost.shells.common import CMD_RESOURCE_URI, PS_RESOURCE_PREFIX, ShellTable
from winhost.shells.psrp import PowerShellHandler
from winhost.shells.winrs import CmdShellHandler

POWERSHELL_RESOURCE_URI = f"{PS_RESOURCE_PREFIX}Microsoft.PowerShell"

__all__ = ["CMD_RESOURCE_URI", "POWERSHELL_RESOURCE_URI", "ShellHandlerMap", "shell_handlers"]


class ShellHandlerMap(dict[str, api.ShellHandler]):
    """Resource URI -> handler, where any URI under the PowerShell prefix (any case) maps to
    the PowerShell handler."""

    def __init__(
        self, cmd: CmdShellHandler, powershell: PowerShellHandler, table: ShellTable
    ) -> None:
        # Every configuration the host has is a key of its own too, for users that copy the
        # mapping into a plain dict (the prefix lookup then no longer applies).
        super().__init__(
            {CMD_RESOURCE_URI: cmd}
            | {f"{PS_RESOURCE_PREFIX}{name}": powershell for name in powershell.configuration_names}
        )
        self._powershell = powershell
        self._table = table

    def reset(self) -> None:
        """Forget every shell and end what runs in it, as a reboot or a WinRM service restart
        does (clients then get the shell-not-found fault)."""
        self._table.clear()

    def open_shells(self) -> int:
        return len(self._table)

    def shell_summaries(self) -> list[dict[str, t.Any]]:
        return self._table.summaries()

    def __missing__(self, key: str) -> api.ShellHandler:
        if isinstance(key, str) and self._powershell.serves(key):
            return self._powershell
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or (isinstance(key, str) and self._powershell.serves(key))

    def get(self, key: str, default: api.ShellHandler | None = None) -> api.ShellHandler | None:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default


def shell_handlers(host: api.HostView, engine: api.ExecutionEngine) -> dict[str, api.ShellHandler]:
    """The shell handlers of one host; both share its shell table (WinRM's per-user quotas
    count every shell of a user)."""
    table = ShellTable(host)
    return ShellHandlerMap(
        CmdShellHandler(host, engine, table), PowerShellHandler(host, engine, table), table
    )
