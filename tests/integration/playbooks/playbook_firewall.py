"""The firewall of a host as set-up scripts and a domain leave it, for the brownfield tests.

- "Allow WinRM HTTPS": ConfigureRemotingForAnsible.ps1's rule for 5986, open to any address,
  made with `netsh advfirewall firewall add rule name=...`, so its Name is a GUID;
- "Windows Remote Management (HTTPS-In)": the rule of Ansible's set-up snippet, made with
  New-NetFirewallRule without -Name, so also a GUID;
- a Group Policy rule that admits 5986 from a management station (MANAGEMENT_ADDRESS): enforced,
  and out of reach of anything run on the host.

The `default` profile's own WINRM-HTTPS-In-TCP rule is taken away: that name is the one the
role knew (winrm_listener_firewall_replaced_rules), and these hosts never had it.

For plain HTTP (open_http_as_found): the GUID-named rule of Ansible's WinRM guide for 5985
(winhost.profiles.guide_http_rule), next to a Group Policy rule that admits 5985 from the
management station and a local rule for every port from a documentation prefix: what the role
must report rather than change when it closes the HTTP port.
"""

from __future__ import annotations

import typing as t

from winhost import profiles
from winhost.state import HostState

SCRIPT_RULE = {
    "Name": "{6F0C5C8E-2B7A-4D61-9C1E-3A5D8B9E0F12}",
    "DisplayName": "Allow WinRM HTTPS",
    "Enabled": True,
    "Direction": "Inbound",
    "Action": "Allow",
    "Protocol": "TCP",
    "LocalPort": "5986",
    "RemoteAddress": "Any",
    "PolicyStoreSourceType": "Local",
}
SNIPPET_RULE = {
    "Name": "{B3E1A7D2-94C6-4F08-8E25-7D1C0A6B4E93}",
    "DisplayName": "Windows Remote Management (HTTPS-In)",
    "Enabled": True,
    "LocalPort": 5986,
    "RemoteAddress": "Any",
}
MANAGEMENT_ADDRESS = "127.0.0.9"
POLICY_RULE = {
    "Name": "{0D9F2E64-58B1-4C3A-A7E0-1F6B2C8D9A47}",
    "DisplayName": "WinRM HTTPS from the management station",
    "Enabled": True,
    "LocalPort": "5986",
    "RemoteAddress": MANAGEMENT_ADDRESS,
    "PolicyStoreSourceType": "GroupPolicy",
    "PolicyStoreSource": "Servers Baseline",
}


def open_firewall_as_found(state: HostState) -> None:
    """Replace the profile's named HTTPS rule with the GUID-named ones and the GPO rule."""
    state.firewall_rules[:] = [
        rule for rule in state.firewall_rules if rule["Name"] != "WINRM-HTTPS-In-TCP"
    ]
    state.firewall_rules.extend(dict(rule) for rule in (SCRIPT_RULE, SNIPPET_RULE, POLICY_RULE))
    state.save()


HTTP_POLICY_RULE = {
    "Name": "{5A7C1E93-0B2D-4F86-A1C4-9E3D7B6F2A05}",
    "DisplayName": "WinRM HTTP from the management station",
    "Enabled": True,
    "LocalPort": "5985",
    "RemoteAddress": MANAGEMENT_ADDRESS,
    "PolicyStoreSourceType": "GroupPolicy",
    "PolicyStoreSource": "Servers Baseline",
}
EVERY_PORT_RULE = {
    "Name": "{C2E8F4A1-7D39-4B05-8E6A-1F0B3C9D5E72}",
    "DisplayName": "Backup agent (all ports)",
    "Enabled": True,
    "LocalPort": "Any",
    "RemoteAddress": ["192.0.2.0/255.255.255.0"],
    "PolicyStoreSourceType": "Local",
}


SHARED_PORTS_RULE = {
    "Name": "{8B1D6E24-3F9A-4C57-9D02-6A4E1B7C3F58}",
    "DisplayName": "Web server and WinRM",
    "Enabled": True,
    "LocalPort": ["80", "443", "5985"],
    "RemoteAddress": ["198.51.100.0/255.255.255.0"],
    "PolicyStoreSourceType": "Local",
}


def open_http_as_found(state: HostState) -> dict[str, t.Any]:
    """Add the guide's GUID-named HTTP rule, the Group Policy rule for 5985, the rule for
    every port and one that names 5985 beside the web ports; returns the guide's rule (its
    Name is a new GUID)."""
    guide = profiles.guide_http_rule()
    state.firewall_rules.extend(
        [guide, dict(HTTP_POLICY_RULE), dict(EVERY_PORT_RULE), dict(SHARED_PORTS_RULE)]
    )
    state.save()
    return guide
