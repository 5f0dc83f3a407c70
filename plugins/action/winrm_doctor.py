# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for winops.remoting.winrm_doctor: runs every check on the controller.

Nothing is sent to the host through the connection: the doctor reads the host's connection
options from the connection plugin (so every variable, default and error is the plugin's own)
and then probes the host itself, layer by layer.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import connection_loader

from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import run_checks
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor_targets import (
    psrp_target,
    winrm_target,
)

# Connection names the doctor understands, and the collection plugin that reads their options.
_PLUGINS = {
    "winops.remoting.winrm": "winrm",
    "ansible.builtin.winrm": "winrm",
    "ansible.legacy.winrm": "winrm",
    "winrm": "winrm",
    "winops.remoting.psrp": "psrp",
    "ansible.builtin.psrp": "psrp",
    "ansible.legacy.psrp": "psrp",
    "psrp": "psrp",
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("plugin",))
    _requires_connection = False

    def _connection_plugin(self, wanted: str, task_vars: dict[str, t.Any]) -> t.Any:
        """Our connection plugin for ``wanted`` with this host's options set."""
        if _connection_name(self._connection) == f"winops.remoting.{wanted}":
            return self._connection
        # The host uses the builtin plugin (or the doctor was asked about the other one):
        # give our plugin the same variables the task executor would give it.
        connection = connection_loader.get(
            f"winops.remoting.{wanted}", self._play_context, os.devnull
        )
        known = set(C.config.get_plugin_vars("connection", connection._load_name))
        option_vars: dict[str, t.Any] = {
            name: self._templar.template(task_vars[name]) for name in known if name in task_vars
        }
        # As the task executor does: unknown ansible_<plugin>_* variables travel as extras.
        prefix = f"ansible_{wanted}_"
        option_vars["_extras"] = {
            name: self._templar.template(value)
            for name, value in task_vars.items()
            if name.startswith(prefix) and name not in known
        }
        connection.set_options(task_keys=self._task.dump_attrs(), var_options=option_vars)
        return connection

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp

        current = _connection_name(self._connection)
        wanted = str(self._task.args.get("plugin") or "auto").lower()
        if wanted == "auto":
            wanted = _PLUGINS.get(current, "")
            if not wanted:
                raise AnsibleError(
                    f"winrm_doctor checks WinRM and PSRP connections, but the connection of "
                    f"{task_vars.get('inventory_hostname')} is {current!r}: set ansible_connection "
                    "to winops.remoting.winrm or winops.remoting.psrp, or the plugin argument"
                )
        elif wanted not in ("winrm", "psrp"):
            raise AnsibleError(
                f"Invalid value {wanted!r} for plugin: expected one of auto, winrm, psrp"
            )

        connection = self._connection_plugin(wanted, task_vars)
        settings = connection._read_settings()
        target = winrm_target(settings) if wanted == "winrm" else psrp_target(settings)
        fixes_for = _fixes_for(current, wanted)
        target = dataclasses.replace(target, plugin=fixes_for)
        secrets = list(settings.secrets)

        report = run_checks(target).to_result()
        report["plugin"] = f"winops.remoting.{wanted}"
        report["fixes_for"] = fixes_for
        report["endpoint"] = target.endpoint.url
        report["transport"] = target.transport
        report["session"] = connection._new_slot().describe()
        result.update(_redacted(report, secrets))
        return result


def _connection_name(connection: t.Any) -> str:
    """The connection's name as users write it (ansible_connection), e.g. winops.remoting.psrp."""
    name = str(getattr(connection, "transport", "") or "")
    load_name = str(getattr(connection, "_load_name", "") or "")
    if load_name.startswith("ansible_collections.winops.remoting."):
        return f"winops.remoting.{load_name.rsplit('.', 1)[-1]}"
    return name or load_name


def _fixes_for(current: str, wanted: str) -> str:
    """The plugin whose variables the fixes name: the host's builtin plugin when it is of the
    kind checked (ours only read its variables, and the builtin ignores some of ours), else
    the collection's plugin checked."""
    ours = f"winops.remoting.{wanted}"
    if current != ours and _PLUGINS.get(current) == wanted:
        return f"ansible.builtin.{wanted}"
    return ours


def _redacted(value: t.Any, secrets: list[str]) -> t.Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, secrets) for key, item in value.items()}
    return value
