"""Check that an execution environment built with winops.remoting can use Kerberos and CredSSP.

    python tests/execution_environment/check.py --builder .venv-lint/bin/ansible-builder \
        --collections build/collections

1. `ansible-builder create -f meta/ee/execution-environment.yml` writes a build context; its
   Python requirements and bindep file must select the Kerberos and CredSSP packages for the
   image (bindep's default profile on the RPM platform of the base image) and the Kerberos
   build dependencies for ansible-builder's builder stage (`compile` profile).
2. The context's own introspect.py, which runs inside the image build on the collections it
   installs, is run on the installed collection with no user requirements: an EE whose
   definition names only `winops.remoting` under galaxy gets the same packages from the
   collection's meta/execution-environment.yml.
No image is built (that needs a container runtime and the base image's registry).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EE_DEFINITION = REPO / "meta" / "ee" / "execution-environment.yml"

# Python distributions (with the extra that brings Kerberos or CredSSP) the plugins need.
REQUIRED_PYTHON = {
    "pywinrm": {"kerberos", "credssp"},
    "pypsrp": {"kerberos", "credssp"},
    "pyspnego": {"kerberos"},
    "requests-credssp": set(),
}
# (package, bindep profile) on the RPM platform of the EE's base image.
REQUIRED_RPM = {("krb5-workstation", "default"), ("krb5-devel", "compile"), ("gcc", "compile")}


def python_requirements(lines: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?", line.split("#", 1)[0])
        if match and match.group(1):
            extras = {extra.strip() for extra in (match.group(2) or "").split(",") if extra.strip()}
            found.setdefault(match.group(1).lower(), set()).update(extras)
    return found


def bindep_selection(lines: list[str], platform: str, profile: str) -> set[str]:
    """Packages bindep installs for a platform and profile (bindep's rules for plain tags)."""
    selected = set()
    for raw_line in lines:
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"(\S+)\s*(?:\[([^\]]*)\])?", line)
        assert match, raw_line
        tags = (match.group(2) or "").split()
        platforms = [tag for tag in tags if tag.startswith("platform:")]
        profiles = [tag for tag in tags if not tag.startswith("platform:")]
        if platforms and f"platform:{platform}" not in platforms:
            continue
        if (profile == "default" and not profiles) or profile in profiles:
            selected.add(match.group(1))
    return selected


def problems_with(python_lines: list[str], bindep_lines: list[str], what: str) -> list[str]:
    problems = []
    python = python_requirements(python_lines)
    for name, extras in REQUIRED_PYTHON.items():
        if name not in python:
            problems.append(f"{what}: Python requirement {name} missing")
        elif not extras <= python[name]:
            problems.append(f"{what}: {name} lacks the extras {sorted(extras - python[name])}")
    for package, profile in sorted(REQUIRED_RPM):
        if package not in bindep_selection(bindep_lines, "rpm", profile):
            problems.append(
                f"{what}: bindep does not select {package} for rpm in profile {profile}"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builder", type=Path, required=True, help="the ansible-builder program")
    parser.add_argument(
        "--collections", type=Path, required=True, help="where the collection is installed"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="winops-ee-") as scratch:
        context = Path(scratch) / "context"
        subprocess.run(
            [
                str(args.builder),
                "create",
                "-f",
                str(EE_DEFINITION),
                "--context",
                str(context),
                "--output-filename",
                "Containerfile",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        build = context / "_build"
        containerfile = (context / "Containerfile").read_text()
        problems = problems_with(
            (build / "requirements.txt").read_text().splitlines(),
            (build / "bindep.txt").read_text().splitlines(),
            "build context",
        )
        for step in ("/output/scripts/assemble", "/output/scripts/install-from-bindep"):
            if step not in containerfile:
                problems.append(f"build context: the Containerfile does not run {step}")
        if "winops.remoting" not in (build / "requirements.yml").read_text():
            problems.append("build context: requirements.yml does not install winops.remoting")

        # What the image build's introspection finds in the installed collection alone.
        introspected = Path(scratch) / "introspected.yml"
        subprocess.run(
            [
                sys.executable,
                str(build / "scripts" / "introspect.py"),
                "introspect",
                str(args.collections.absolute()),
            ],
            check=True,
            stdout=introspected.open("w"),
        )
        found = yaml.safe_load(introspected.read_text()) or {}
        problems += problems_with(
            [line.split("  # from collection", 1)[0] for line in found.get("python", [])],
            [line.split("  # from collection", 1)[0] for line in found.get("system", [])],
            "introspection of the installed collection",
        )

    for problem in problems:
        print(f"FAILED {problem}")
    if problems:
        return 1
    print(
        "execution environment: the build context and the collection's introspected "
        "requirements install Kerberos and CredSSP support"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
