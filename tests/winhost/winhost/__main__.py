"""Entry point: python -m winhost (see winhost.cli)."""

import sys

from winhost.cli import main

sys.exit(main())
