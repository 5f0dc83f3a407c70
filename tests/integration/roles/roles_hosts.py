"""Where the module tests' winhost session lives (its own block of 127.0.10.x addresses).

Host FIRST + OFFSETS[role] is win<N> on 127.0.10.<N>, in the `roles` block of
address_blocks.py (127.0.10.185-200 unless ROLES_FIRST moves it); test_host_configure.py's host
follows the session's at FIRST + len(OFFSETS). EXTRA_HTTPS_PORT is the port the listener and certificate tests open a second HTTPS
listener on (their hosts' firewalls admit it).
"""

from __future__ import annotations

from address_blocks import block

BLOCK = block("roles")
FIRST = BLOCK.first
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
# The session starts len(OFFSETS) hosts from FIRST; HostView.configure's host is the next one.
assert sorted(OFFSETS.values()) == list(range(len(OFFSETS))) and len(OFFSETS) < BLOCK.size
EXTRA_HTTPS_PORT = 5990
