"""Shared fixtures of the integration tests: the session-scoped `winhost` fixture
(see tests/winhost/winhost/pytest_plugin.py for its API)."""

from ansible.plugins.loader import init_plugin_loader

from winhost.pytest_plugin import winhost

# Test modules import ansible_collections.winops.remoting (the working tree, through build/dev on
# sys.path) when they are collected. Installed before that, Ansible's collection finder loads the
# package with its collection metadata; imported first by the plain path finder, the package has
# none, and every later lookup of a winops.remoting module through Ansible's plugin loader (the
# in-process execution tests) fails with "collection metadata was not loaded".
init_plugin_loader()

__all__ = ["winhost"]
