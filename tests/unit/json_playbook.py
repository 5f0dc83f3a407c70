"""Running ansible-playbook from a unit test: the venv's own, with the JSON callback.

For tests of what Ansible itself makes of our roles' and playbooks' variables on the controller
(no host is contacted: only controller-side tasks run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_json_playbook(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """ansible-playbook ``arguments`` in ``cwd``; its stdout is the ansible.posix.json report."""
    environment = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
