# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_schannel_protocol.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_schannel_protocol
short_description: Enable or disable an SCHANNEL protocol (TLS, SSL) for server and client
description:
  - Writes both C(Enabled) and C(DisabledByDefault) under
    C(HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\<protocol>\Server)
    and C(...\Client). Writing only C(Enabled) can leave a protocol that is on but not offered to
    applications that do not ask for it (C(DisabledByDefault=1)), which is how TLS 1.2 stays
    unused on some older hosts.
  - The WinRM HTTPS listener is served by SCHANNEL, so the V(server) side decides which TLS
    versions a controller can negotiate; the V(client) side matters for the host's own outgoing
    connections (the second hop, downloads).
  - SCHANNEL reads these values at start-up. RV(reboot_required) is true whenever something
    changed; reboot (for example with M(ansible.windows.win_reboot)) before relying on it.
  - V(TLS 1.3) with O(state=enabled) is refused, before anything is written, on builds before
    20348 (Windows Server 2022, Windows 11). Microsoft supports TLS 1.3 in SCHANNEL from those
    releases and calls enabling it on earlier ones not a safe configuration; Windows 10 and
    Windows Server 2019 carry an experimental TLS 1.3 that these values would switch on.
    Disabling it or restoring the default is allowed everywhere.
version_added: 0.1.0
options:
  protocol:
    description: The SCHANNEL protocol key.
    type: str
    required: true
    choices: ["SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
  sides:
    description: Which sides to manage.
    type: list
    elements: str
    choices: [server, client]
    default: [server, client]
  state:
    description:
      - V(enabled) writes C(Enabled=1) and C(DisabledByDefault=0); V(disabled) writes
        C(Enabled=0) and C(DisabledByDefault=1); V(default) removes both values so the
        operating system's default for the protocol applies.
    type: str
    required: true
    choices: [enabled, disabled, default]
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
    details: Shows both values of each side before and after; null means not set.
  platform:
    support: full
    details: Windows hosts; enabling TLS 1.3 needs Windows Server 2022 or Windows 11 (build 20348).
seealso:
  - module: ansible.windows.win_reboot
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Make TLS 1.2 available and offered on both sides
  winops.remoting.win_schannel_protocol:
    protocol: TLS 1.2
    state: enabled
  register: tls12

- name: Turn off TLS 1.0 and TLS 1.1 for the server side only
  winops.remoting.win_schannel_protocol:
    protocol: "{{ item }}"
    sides: [server]
    state: disabled
  loop: ["TLS 1.0", "TLS 1.1"]
  register: legacy

- name: Restart when SCHANNEL changed
  ansible.windows.win_reboot:
  when: >-
    tls12.reboot_required
    or (legacy.results | selectattr('reboot_required') | list | length > 0)
"""

RETURN = r"""
protocol:
  description: The protocol managed.
  returned: always
  type: str
  sample: TLS 1.2
sides:
  description: C(Enabled) and C(DisabledByDefault) per side after the task; null means not set.
  returned: always
  type: dict
  sample: {"server": {"Enabled": 1, "DisabledByDefault": 0}, "client": {"Enabled": 1, "DisabledByDefault": 0}}
reboot_required:
  description: Whether a restart is needed for the change to take effect.
  returned: always
  type: bool
  sample: true
build:
  description: The host's Windows build (C(CurrentBuildNumber)), for the release-specific steps of a play.
  returned: always
  type: int
  sample: 20348
"""
