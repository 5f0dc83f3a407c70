"""Run `ansible-test sanity` on the built collection, offline except for the package index.

    python tests/sanity/run.py --ansible-bin .venv/bin --tarball dist/winops-remoting-0.1.0.tar.gz

- The tarball is installed into a fresh directory outside the git work tree: ansible-test lists
  a collection's files through git when it sits inside a repository, and the work tree ignores
  build/, so sanity would find no targets there. Installing the tarball also tests what
  Galaxy users get (tests/sanity ships; see build_ignore in galaxy.yml).
- Sanity tests run in virtualenvs that ansible-test makes and fills from the package index.
  It bootstraps pip in them with a get-pip.py downloaded from a host outside the registries;
  get_pip.py (beside this file) is put in ansible-test's cache in its place and installs pip
  from the index instead. HOME points at --home so those virtualenvs are reused between runs
  and nothing is written to the user's ~/.ansible.
- PowerShell (pwsh) does not run here. pslint needs it: ansible-test reports pslint as skipped
  ('Required program "pwsh" not found'). validate-modules runs each .ps1 module in pwsh to
  compare its argument spec with the docs: it runs in a second pass without the .ps1 files, so
  the .py documentation is still validated. Neither needs an ignore entry (Automation Hub
  accepts only a short list of them: ansible-lint's `sanity` rule).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def ansible_test_pip_version(ansible_bin: Path) -> str:
    """The pip version ansible-test bootstraps into its virtualenvs (pip='X' in its source)."""
    python = ansible_bin / "python"
    source = subprocess.run(
        [
            str(python),
            "-c",
            "import ansible_test._internal.python_requirements as m; print(m.__file__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    match = re.search(r"pip='([0-9.]+)'", Path(source).read_text())
    if not match:
        sys.exit(f"cannot find the pip version ansible-test bootstraps in {source}")
    return match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ansible-bin", type=Path, required=True, help="bin/ of the venv with ansible-core"
    )
    parser.add_argument("--tarball", type=Path, required=True)
    parser.add_argument("--home", type=Path, default=REPO / "build" / "sanity-home")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("sanity_args", nargs="*", help="further ansible-test sanity arguments")
    args = parser.parse_args()

    ansible_bin = args.ansible_bin.absolute()
    home = args.home.absolute()
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    pip_version = ansible_test_pip_version(ansible_bin)
    shutil.copyfile(HERE / "get_pip.py", cache / f"get_pip_{pip_version.replace('.', '_')}.py")

    with tempfile.TemporaryDirectory(prefix="winops-sanity-") as collections:
        subprocess.run(
            [
                str(ansible_bin / "ansible-galaxy"),
                "collection",
                "install",
                "--no-deps",
                "--force",
                "-p",
                collections,
                str(args.tarball.absolute()),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        collection = Path(collections) / "ansible_collections" / "winops" / "remoting"
        environment = {
            **os.environ,
            "HOME": str(home),
            "PATH": f"{ansible_bin}:{os.environ['PATH']}",
        }
        sanity = [
            str(ansible_bin / "ansible-test"),
            "sanity",
            "--local",
            "--python",
            args.python,
            "--color",
            "no",
            *args.sanity_args,
        ]
        powershell_modules = sorted(
            path.relative_to(collection).as_posix()
            for path in (collection / "plugins" / "modules").glob("*.ps1")
        )
        passes = [
            [*sanity, "--skip-test", "validate-modules"],
            [*sanity, "--test", "validate-modules"]
            + [option for path in powershell_modules for option in ("--exclude", path)],
        ]
        failed = False
        for command in passes:
            completed = subprocess.run(command, cwd=collection, env=environment, check=False)
            failed = failed or completed.returncode != 0
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
