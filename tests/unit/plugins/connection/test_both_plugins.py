"""The same mistake through both connection plugins gets the same answer.

The winrm and psrp plugins share one option source, one failure path and one wording table;
these tests feed each the same input and compare what users see.
"""

from __future__ import annotations

import typing as t

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError

PLUGINS = ("winops.remoting.winrm", "winops.remoting.psrp")
BASE = {
    "inventory_hostname": "win-01.example.com",
    "ansible_user": "admin",
    "ansible_password": "sëcret-pässword",
}


def load_connection(
    name: str, variables: dict[str, t.Any], task_keys: dict[str, t.Any] | None = None
) -> t.Any:
    """A connection plugin with its options set as a task sets them (variables and keywords)."""
    connection = connection_loader.get(name, PlayContext())
    assert connection is not None, f"plugin loader cannot find {name}"
    templar = Templar(loader=DataLoader(), variables=variables)
    var_options = connection._resolve_option_variables(variables, templar)
    connection.set_options(task_keys=task_keys, var_options=var_options)
    return connection


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize(
    ("variables", "task_keys", "label"),
    [
        pytest.param({"ansible_port": "not-a-port"}, None, "ansible_port", id="variable"),
        pytest.param({}, {"port": "not-a-port"}, "port (play keyword)", id="play-keyword"),
    ],
)
def test_bad_port_is_named_alike_by_both_plugins(
    plugin: str, variables: dict[str, t.Any], task_keys: dict[str, t.Any] | None, label: str
) -> None:
    connection = load_connection(plugin, {**BASE, **variables}, task_keys)
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value) == (
        f"Invalid value 'not-a-port' for {label}: expected a port number between 1 and 65535"
    )
