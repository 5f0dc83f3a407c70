"""Fixtures shared by the connection plugin unit tests."""

from __future__ import annotations

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.session import _psrp_session


@pytest.fixture(autouse=True)
def resolvable_host_names(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example host names of these tests resolve (tests marked real_name_lookup excepted):
    the psrp session looks its host up once before it opens the runspace pool."""
    if request.node.get_closest_marker("real_name_lookup") is None:
        monkeypatch.setattr(_psrp_session, "lookup_host", lambda host, port: None)
