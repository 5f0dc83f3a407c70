"""Unit-test set-up: make ansible's collection loader find the working tree.

`make deps` links the repository as build/dev/ansible_collections/winops/remoting, and
pyproject.toml puts build/dev on sys.path, so `ansible_collections.winops.remoting` imports the
code under test and the plugin loader can resolve `winops.remoting.*` names.
"""

from __future__ import annotations

import os
from pathlib import Path

DEV_COLLECTIONS = Path(__file__).resolve().parents[2] / "build" / "dev"
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(DEV_COLLECTIONS))

from ansible.utils.collection_loader._collection_finder import (  # noqa: E402
    _AnsibleCollectionFinder,
)

_AnsibleCollectionFinder(paths=[str(DEV_COLLECTIONS)], scan_sys_paths=True)._install()
