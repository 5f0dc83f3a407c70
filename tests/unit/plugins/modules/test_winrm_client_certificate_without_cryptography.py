"""Without the cryptography library the module fails with Ansible's missing-library message.

ansible-test's import sanity test imports every module_utils file in a virtualenv without the
collection's requirements; an unguarded `from cryptography import x509` made that import fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]

# Runs in a fresh interpreter in which every `import cryptography...` raises ImportError.
SCRIPT = textwrap.dedent(
    """
    import json, sys

    class RefuseCryptography:
        def find_spec(self, name, path=None, target=None):
            if name == "cryptography" or name.startswith("cryptography."):
                raise ImportError(f"No module named {name!r} (refused by the test)")
            return None

    sys.meta_path.insert(0, RefuseCryptography())

    from ansible.module_utils import basic
    from ansible_collections.winops.remoting.plugins.module_utils import _client_certificate as cc
    from ansible_collections.winops.remoting.plugins.modules import winrm_client_certificate

    assert "refused by the test" in cc.CRYPTOGRAPHY_IMPORT_ERROR
    args = {"username": "ansible", "path": "/nonexistent/c.pem", "key_path": "/nonexistent/c.key"}
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        winrm_client_certificate.main()
    else:
        with patch_module_args(args):
            winrm_client_certificate.main()
    """
)


def test_module_reports_the_missing_library_instead_of_an_import_traceback() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "build" / "dev"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["failed"] is True
    assert "Failed to import the required Python library (cryptography)" in result["msg"]
