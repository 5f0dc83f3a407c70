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
    ports or scope. A rule to be switched off (O(enabled=false)) that does not exist is left
    absent, whether or not O(port) is given, since a switched-off rule would admit nothing.
  - Windows reports an IPv4 prefix such as V(10.0.0.0/8) back as C(10.0.0.0/255.0.0.0) and a
    V(/32) as the bare address; the module compares in that form, so give network addresses
    (V(10.0.0.0/8), not V(10.1.2.3/8)) to stay idempotent. The form Windows reports
    (V(10.0.0.0/255.0.0.0)) is taken as well.
  - A scope means little while another rule admits the same port from anyone. The usual set-up
    scripts make such rules with a random GUID as their name (New-NetFirewallRule without
    C(-Name), C(netsh advfirewall), ConfigureRemotingForAnsible.ps1's C(Allow WinRM HTTPS)), so
    they cannot be found by name. With O(port) given, the module looks in the ActiveStore, Group
    Policy rules included, for every other enabled inbound allow rule that admits that TCP port
    from addresses other than O(remote_addresses), and handles it as O(other_rules) says.
  - To close a port, switch the named rule off (O(enabled=false)) or remove it
    (O(state=absent)) with O(port) and O(other_rules=disable). Every other enabled local rule
    that names that TCP port is then switched off too, whatever its name or addresses; Windows'
    own rules are switched off, not removed.
  - Removing the rule, switching it off, or narrowing its port, addresses or profiles is
    refused, before anything changes, when the rule lets in WinRM clients connected now (the
    play's own connection is one of them) and afterwards no enabled allow rule of the
    ActiveStore would admit any of them. A rule admits a client only on a network of its
    profiles, and the category of the interface the connection arrives on
    (C(Get-NetConnectionProfile)) decides which network that is. A host whose firewall is off in every profile is
    not refused. Check mode reports the change without this check, as the play's earlier
    tasks have not moved its connection yet.
  - Closing a port is refused, before anything changes, when any WinRM client connected now
    from another address (C(Get-NetTCPConnection); the host's connections to itself are left
    out, as firewall rules do not apply to loopback traffic) is admitted by the named rule or
    by one of the rules to be switched off and by no enabled rule afterwards. The module cannot
    tell the play's connection from the others, and nobody should need a port being closed.
    Check mode skips this check too.
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
    description:
      - Local TCP port. Required to create a rule, and compared with an existing rule's port
        like the other values (so give the rule's own port, or a name of no existing rule, when
        closing a port).
      - With O(other_rules=disable) and O(state=absent) or O(enabled=false), the port to close.
    type: int
  remote_addresses:
    description:
      - Remote addresses allowed to connect; IP addresses, prefixes (V(192.0.2.0/24) or
        V(192.0.2.0/255.255.255.0)), ranges
        (V(192.0.2.10-192.0.2.20)) or keywords such as V(Any) and V(LocalSubnet). The list is exact.
      - A new rule without it allows V(Any).
    type: list
    elements: str
  local_addresses:
    description:
      - Addresses of this host the rule applies to (C(-LocalAddress)). Windows Firewall matches
        them against the address a connection arrives on. IP addresses, prefixes or ranges, or
        V(Any); a new rule without it applies to V(Any).
      - With O(state=present) and O(enabled=true), the module fails before anything changes when
        none of the host addresses that the clients now connected to a WinRM port arrived on
        (C(Get-NetTCPConnection), the play's own connection among them) is in the list, since the
        play would be cut off once this rule is the one that admits the port. V(Any) is never
        refused.
    type: list
    elements: str
  profiles:
    description:
      - Network profiles the rule applies to; a new rule defaults to V(any).
      - With O(other_rules) V(disable) or V(scope), profiles that leave out the network the
        connected WinRM clients arrive on are refused before anything changes, as the rule
        would not admit them in place of the rules it changes.
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
  other_rules:
    description:
      - What to do with the other enabled inbound allow rules that admit O(port) over TCP from
        addresses other than O(remote_addresses) (from any address when the port is closed);
        see RV(other_rules).
      - V(keep) leaves them and warns that the scope does not hold.
      - V(disable) switches off the local ones that name the port alone.
      - V(scope) sets their remote addresses to O(remote_addresses).
      - Whatever the choice, Group Policy rules cannot be changed on the host, and rules that
        also admit other ports (LocalPort Any, a wider range, more ports) serve other traffic
        too; both are left as they are, listed in RV(other_rules) and named in a warning that
        says what must be done instead.
      - V(scope) needs O(state=present), O(enabled=true), O(port) and O(remote_addresses), and
        so does V(disable) to keep the port open to O(remote_addresses); the other rules are
        changed only after this rule is in place.
      - V(disable) with O(state=absent) or O(enabled=false) and O(port) closes the port. The
        other rules are then switched off after this rule is removed or switched off (see above
        for when that is refused).
      - Before anything changes, V(disable) (to keep the port open) and V(scope) fail, naming
        the clients, when none of the clients now connected to a WinRM port
        (C(Get-NetTCPConnection), the play's own connection among them) is in
        O(remote_addresses), since the play would be cut off. When some client is in it the
        play's own may still not be; the P(winops.remoting.winrm_listener#role) role then checks
        that the host still answers.
    type: str
    choices: [keep, disable, scope]
    default: keep
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

- name: Allow WinRM over HTTPS from the controllers only, switching off older open rules
  winops.remoting.win_winrm_firewall:
    name: winops-WinRM-HTTPS-In
    port: 5986
    remote_addresses: [192.0.2.10]
    other_rules: disable

- name: Allow WinRM over HTTPS from the controllers, to the listener's address only
  winops.remoting.win_winrm_firewall:
    name: winops-WinRM-HTTPS-In
    port: 5986
    remote_addresses: [192.0.2.10]
    local_addresses: [198.51.100.4]

- name: Switch off Windows' own rule for WinRM over HTTP
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    enabled: false

- name: Close WinRM over HTTP to the network, whatever set-up scripts named their rules
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    enabled: false
    port: 5985
    other_rules: disable

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
other_rules:
  description:
    - The other enabled inbound allow rules, as found before the task, that admit O(port) over
      TCP from addresses other than O(remote_addresses) (from any address when the task closes
      the port), from the ActiveStore (local and Group Policy rules). Empty when O(port) is not
      given, and with O(state=absent) unless the task closes the port.
    - C(action) is V(disabled) or V(scoped) (changed by this task, or would be in check mode),
      V(kept) (left open, by O(other_rules=keep) or because the rule admits other ports too) or V(reported)
      (Group Policy or another store the host cannot change; the warning says what to do).
  returned: always
  type: list
  elements: dict
  sample:
    - name: "{3C0E2D5A-6B1F-4E8C-9A7D-2F4B6C8E0A1B}"
      display_name: Allow WinRM HTTPS
      local_ports: ["5986"]
      remote_addresses: [Any]
      policy_store_source_type: Local
      policy_store_source: ""
      action: disabled
    - name: "{8D1B4F2E-0C3A-4B5D-9E6F-7A8B9C0D1E2F}"
      display_name: WinRM HTTPS (domain policy)
      local_ports: ["5986"]
      remote_addresses: [Any]
      policy_store_source_type: GroupPolicy
      policy_store_source: Servers Baseline
      action: reported
"""
