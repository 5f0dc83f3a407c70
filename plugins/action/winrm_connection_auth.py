# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for winops.remoting.winrm_connection_auth: what the play's own connection needs of
the host's WinRM service, read on the controller from the connection the task runs on."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.winops.remoting.plugins.plugin_utils._connection_auth import (
    ConnectionAuthError,
    depends_on_winrm,
    describe_connection,
    plugin_name,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS: frozenset[str] = frozenset()

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        name = plugin_name(self._connection)
        winrm = depends_on_winrm(name)
        if winrm is False:
            # The play does not reach the host through WinRM: nothing the roles change in
            # the WinRM service can cut it off.
            result.update(plugin=name, depends_on_winrm=False, changed=False)
            return result
        if winrm is None:
            raise AnsibleError(
                f"winrm_connection_auth cannot tell how the connection plugin {name} reaches "
                "the host; it knows winops.remoting.winrm, winops.remoting.psrp, "
                "ansible.builtin.winrm and ansible.builtin.psrp (and that ssh/local do not use "
                "WinRM)"
            )
        # The session decides among the configured transports when it opens.
        self._connection._connect()
        try:
            auth = describe_connection(self._connection)
        except ConnectionAuthError as err:
            raise AnsibleError(f"winrm_connection_auth: {err}") from err
        result.update(auth.as_result())
        result.update(depends_on_winrm=True, changed=False)
        return result
