"""A listener as another tool left it, for test_listener_address_case.py: an HTTPS listener on
an IPv6 address written in lower case (as `winrm create winrm/config/Listener?Address=IP:fd00::a`
would leave it), beside the `default` profile's own `*` listeners. The address is not the host's,
so winhost opens no socket for it (as Windows listens only on addresses the host has); the
listener is configuration the role must keep when it is listed in another case."""

from __future__ import annotations

from winhost.state import HostState, Listener

LOWER_CASE_ADDRESS = "IP:fd00::a"


def add_listener_in_lower_case(state: HostState) -> None:
    """Add the lower-case HTTPS listener, bound to the certificate the `*` one uses."""
    https = next(li for li in state.listeners if li.transport == "HTTPS")
    state.listeners.append(
        Listener(
            address=LOWER_CASE_ADDRESS,
            transport="HTTPS",
            port=https.port,
            hostname=https.hostname,
            certificate_thumbprint=https.certificate_thumbprint,
        )
    )
    state.save()
