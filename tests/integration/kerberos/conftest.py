"""Kerberos integration tests run against a real MIT KDC (tests/kdc)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kdc"))

from kdc.pytest_plugin import kdc_server, kerberos_env  # noqa: F401
