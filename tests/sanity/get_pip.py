"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip in its virtualenvs.

ansible-test fetches get-pip.py from a host outside the package registries unless a copy sits
in its cache (~/.ansible/test/cache/get_pip_<version>.py). tests/sanity/run.py puts this file
there instead: it installs the pip that Python ships (ensurepip, offline) and then upgrades to
the pip version ansible-test asks for from the package index (PyPI), with the same arguments.
"""

import subprocess
import sys

# ansible-test passes get-pip.py options; these two are get-pip.py's own, not pip install's.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    pip_arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    subprocess.run(
        [sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *pip_arguments], check=True)


if __name__ == "__main__":
    main()
