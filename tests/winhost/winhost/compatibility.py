"""WinRM's compatibility listeners: the listeners the service adds on its own when
winrm/config/Service EnableCompatibilityHttpListener (port 80) or
EnableCompatibilityHttpsListener (port 443) is true, next to the configured ones.

They are not configuration entries: `winrm enumerate winrm/config/listener` shows them with the
attribute Source="Compatibility" on the Listener element, Address "*", and they come and go with
the service setting, not with Create or Delete on winrm/config/listener. The HTTPS one serves the
certificate of winrm/config/Service CertificateThumbprint (assumed: the setting is the service's
only certificate, and it is what winhost already falls back on for an HTTPS listener without
one).
"""

from __future__ import annotations

from winhost.state import HostState, Listener

SOURCE = "Compatibility"
# Transport -> (service setting, port).
SETTINGS = {
    "HTTP": ("Service/EnableCompatibilityHttpListener", 80),
    "HTTPS": ("Service/EnableCompatibilityHttpsListener", 443),
}


def compatibility_listeners(state: HostState) -> list[Listener]:
    """The compatibility listeners the service settings switch on (caller holds state.lock)."""
    listeners = []
    for transport, (setting, port) in SETTINGS.items():
        if state.winrm_setting(setting).strip().lower() == "true":
            listeners.append(Listener(address="*", transport=transport, port=port))
    return listeners
