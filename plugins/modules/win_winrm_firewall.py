# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_winrm_firewall.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_winrm_firewall
short_description: Manage the inbound firewall rule for a WinRM port, scoped to remote addresses
description:
  - Creates or updates one inbound TCP allow rule in Windows Firewall, identified by O(name),
    for a WinRM listener port, limited to O(remote_addresses) (for example the controller and
    execution nodes) and optionally to O(local_addresses) and O(profiles).
  - Only the values that are given are compared. With just O(name) and O(enabled) it switches an
    existing rule, such as Windows' own C(WINRM-HTTP-In-TCP), on or off without touching its
    ports or scope; a rule to be switched off that does not exist is left absent.
  - Windows reports an IPv4 prefix such as V(10.0.0.0/8) back as C(10.0.0.0/255.0.0.0) and a
    V(/32) as the bare address; the module compares in that form, so give network addresses
    (V(10.0.0.0/8), not V(10.1.2.3/8)) to stay idempotent.
version_added: 0.1.0
options:
  name:
    description: The rule's unique name (C(-Name) of the NetSecurity cmdlets).
    type: str
    required: true
  display_name:
    description: Display name; defaults to O(name) for a new rule.
    type: str
  description:
    description: Description of the rule.
    type: str
  port:
    description: Local TCP port. Required to create a rule.
    type: int
  remote_addresses:
    description:
      - Remote addresses allowed to connect; IP addresses, prefixes (V(192.0.2.0/24)), ranges
        (V(192.0.2.10-192.0.2.20)) or keywords such as V(Any) and V(LocalSubnet). The list is exact.
      - A new rule without it allows V(Any).
    type: list
    elements: str
  local_addresses:
    description: Local addresses the rule applies to, in the same forms; a new rule defaults to V(Any).
    type: list
    elements: str
  profiles:
    description: Network profiles the rule applies to; a new rule defaults to V(any).
    type: list
    elements: str
    choices: [any, domain, private, public]
  enabled:
    description: Whether the rule is enabled.
    type: bool
    default: true
  state:
    description: Whether the rule should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
    details: Shows the rule's compared values before and after.
  platform:
    support: full
    details: Windows hosts with the NetSecurity module (Windows Server 2012 and later).
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Allow WinRM over HTTPS from the controllers only
  winops.remoting.win_winrm_firewall:
    name: winops-WinRM-HTTPS-In
    display_name: Windows Remote Management (HTTPS-In, Ansible controllers)
    port: 5986
    remote_addresses:
      - 192.0.2.10
      - 198.51.100.0/24

- name: Switch off Windows' own rule for WinRM over HTTP
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    enabled: false

- name: Remove our rule
  winops.remoting.win_winrm_firewall:
    name: winops-WinRM-HTTPS-In
    state: absent
"""

RETURN = r"""
rule:
  description: The compared values of the rule after the task; null when absent.
  returned: always
  type: dict
  sample:
    port: "5986"
    remote_addresses: ["192.0.2.10", "198.51.100.0/255.255.255.0"]
    profiles: any
    enabled: true
"""
