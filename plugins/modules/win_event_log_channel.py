# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_event_log_channel.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_event_log_channel
short_description: Enable or disable an event log channel
description:
  - Switches one Windows event log channel on or off and optionally sets its maximum size,
    through the event log service's configuration API (the same as C(wevtutil set-log)).
  - Used by the winrm_hardening role to keep C(Microsoft-Windows-WinRM/Operational) recording
    WinRM sessions and authentication.
version_added: 0.1.0
options:
  name:
    description: The channel, for example V(Microsoft-Windows-WinRM/Operational).
    type: str
    required: true
  enabled:
    description: Whether the channel records events.
    type: bool
    default: true
  max_size_kb:
    description:
      - Maximum size of the log in kilobytes, at least 1024 (Windows keeps no smaller log) and
        a multiple of 64 (Windows sizes event logs in 64 KB steps); unchanged when omitted.
      - An enabled Analytic or Debug channel takes no change while it is on, so it is switched
        off, resized and switched on again.
    type: int
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
    details: Shows C(enabled) and C(max_size_kb) before and after.
  platform:
    support: full
    details: Windows hosts.
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Record WinRM activity
  winops.remoting.win_event_log_channel:
    name: Microsoft-Windows-WinRM/Operational
    enabled: true

- name: Keep more PowerShell history
  winops.remoting.win_event_log_channel:
    name: Microsoft-Windows-PowerShell/Operational
    max_size_kb: 262144
"""

RETURN = r"""
channel:
  description: The channel's settings after the task.
  returned: always
  type: dict
  sample: {"enabled": true, "max_size_kb": 1028}
"""
