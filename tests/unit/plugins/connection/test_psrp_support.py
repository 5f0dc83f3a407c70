"""Shared helpers for the psrp plugin tests (no tests here; imported by test_psrp_*.py).

Loads both connection plugins through ansible's real plugin loader and runs their connect path
with the pypsrp classes patched, so that what each hands to ``pypsrp.wsman.WSMan`` can be
compared without any network.
"""

from __future__ import annotations

import contextlib
import typing as t
from unittest import mock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.winops.remoting.plugins.plugin_utils.session import _psrp_session

OURS = "winops.remoting.psrp"
BUILTIN = "ansible.builtin.psrp"


def load_connection(name: str, variables: dict[str, t.Any]) -> t.Any:
    """A connection plugin with its options set from ``variables`` as a task would set them.

    ``_resolve_option_variables`` is ansible's own step that picks the plugin's variables and
    the ``ansible_psrp_*`` extras out of the host's variables.
    """
    connection = connection_loader.get(name, PlayContext())
    assert connection is not None, f"plugin loader cannot find {name}"
    templar = Templar(loader=DataLoader(), variables=variables)
    var_options = connection._resolve_option_variables(variables, templar)
    connection.set_options(var_options=var_options)
    return connection


class Captured(t.NamedTuple):
    wsman_kwargs: dict[str, t.Any]
    runspace_kwargs: dict[str, t.Any]
    kinit_requests: list[t.Any]


class FakeCredentialCache:
    """Stands in for _kerberos.CredentialCache: a name for KRB5CCNAME, a remove() to count."""

    def __init__(self) -> None:
        self.path = "/nonexistent/winops-test-ccache"
        self.name = f"FILE:{self.path}"
        self.shared = True
        self.removed = False

    def remove(self) -> None:
        self.removed = True


@contextlib.contextmanager
def no_network() -> t.Iterator[None]:
    """Fail the test if anything tries to open a socket."""

    def refuse(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        pytest.fail("a network connection was attempted")

    with (
        mock.patch("socket.create_connection", side_effect=refuse),
        mock.patch("socket.socket.connect", side_effect=refuse),
        mock.patch("requests.Session.send", side_effect=refuse),
    ):
        yield


def connect_ours(variables: dict[str, t.Any]) -> tuple[Captured, t.Any]:
    """Run our plugin's _connect with WSMan/RunspacePool patched; returns what they received."""
    connection = load_connection(OURS, variables)
    with (
        no_network(),
        mock.patch.object(_psrp_session, "WSMan") as wsman,
        mock.patch.object(_psrp_session, "RunspacePool") as runspace_pool,
        mock.patch.object(
            _psrp_session, "acquire_ticket", side_effect=lambda request: FakeCredentialCache()
        ) as acquire_ticket,
    ):
        connection._connect()
    kinit_requests = [call.args[0] for call in acquire_ticket.call_args_list]
    captured = Captured(
        dict(wsman.call_args.kwargs), _runspace_kwargs(runspace_pool), kinit_requests
    )
    return captured, connection


def connect_builtin(variables: dict[str, t.Any]) -> Captured:
    """Run ansible.builtin.psrp's _connect with WSMan/RunspacePool patched the same way."""
    connection = load_connection(BUILTIN, variables)
    module = type(connection).__module__
    with (
        no_network(),
        mock.patch(f"{module}.WSMan") as wsman,
        mock.patch(f"{module}.RunspacePool") as runspace_pool,
    ):
        connection._connect()
    return Captured(dict(wsman.call_args.kwargs), _runspace_kwargs(runspace_pool), [])


def _runspace_kwargs(runspace_pool: mock.MagicMock) -> dict[str, t.Any]:
    kwargs = dict(runspace_pool.call_args.kwargs)
    kwargs.pop("host", None)  # each plugin's own PSHost object
    return kwargs
