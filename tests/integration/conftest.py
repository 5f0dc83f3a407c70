"""Shared fixtures of the integration tests: the session-scoped `winhost` fixture
(see tests/winhost/winhost/pytest_plugin.py for its API)."""

from winhost.pytest_plugin import winhost

__all__ = ["winhost"]
