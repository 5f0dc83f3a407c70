"""Where the module tests' winhost session lives (its own block of 127.0.10.x addresses).

Host FIRST + OFFSETS[role] is win<N> on 127.0.10.<N>; ROLES_FIRST (default 185) moves the
block. EXTRA_HTTPS_PORT is the port the listener and certificate tests open a second HTTPS
listener on (their hosts' firewalls admit it).
"""

from __future__ import annotations

import os

FIRST = int(os.environ.get("ROLES_FIRST", "185"))
OFFSETS = {
    "service": 0,
    "listener": 1,
    "policy": 2,
    "cert": 3,
    "tls": 4,
    "fw": 5,
    "credssp": 6,
    "regedit": 7,
    "certstore": 8,
    "mapping": 9,
    "access": 10,
    "eventlog": 11,
    "reboot": 12,
    "compat": 13,
    "fw_guard": 14,
}
EXTRA_HTTPS_PORT = 5990
