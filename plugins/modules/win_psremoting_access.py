# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_psremoting_access.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_psremoting_access
short_description: Restrict PowerShell remoting and WinRM access to given accounts
description:
  - Sets the security descriptor of PowerShell session configurations (by default all of them,
    C(Microsoft.PowerShell), which the psrp connection uses, C(Microsoft.PowerShell32), the
    workflow endpoints where present, and any custom or JEA endpoint Windows PowerShell's
    C(Get-PSSessionConfiguration) lists) and, with O(root_sddl=true), the WinRM service's
    C(RootSDDL) (which governs the cmd shell that the winrm connection uses), so that only
    O(accounts) may connect. Each listed account gets full access.
  - Every PowerShell remoting endpoint that the task leaves as it was (a WinRM plugin served by
    C(pwrshplugin.dll) that O(configurations) did not select or that Windows PowerShell's
    C(Get-PSSessionConfiguration) did not list, for example PowerShell 7's C(PowerShell.7)
    endpoints when it does not) is returned in
    RV(unrestricted_configurations), with a warning. Restrict those with PowerShell 7's
    C(Set-PSSessionConfiguration), or remove them.
  - Fails when none of O(accounts) is the account running the task or one of its groups, unless
    O(allow_lockout=true), because the play's next connection would be refused.
  - A changed session configuration takes effect once the WinRM service restarts. Restarting it
    from inside the task would end the task's own WinRM session, so with O(restart_winrm=true)
    the module registers a one-off scheduled task (C(winops.remoting restart WinRM), running as
    SYSTEM) that restarts WinRM ten seconds later and deletes itself; RV(restart_scheduled) says
    so, and the play should then wait for the host, for example with
    M(ansible.builtin.wait_for_connection) and a C(delay) of 20 seconds. Without it the module
    returns RV(restart_required). C(RootSDDL) applies at once.
options:
  accounts:
    description:
      - Accounts or groups, as names (V(HOST\\ansible), V(.\\ansible), V(ansible),
        V(BUILTIN\\Administrators)) or SIDs (V(S-1-5-32-544)). The list is exact.
      - V(.\\name) names a local account of this host (it becomes V(<computer name>\\name)); a bare
        name that is a local user is looked up on this host before the domain.
    type: list
    elements: str
    required: true
  configurations:
    description:
      - Session configurations to restrict, by name or with PowerShell wildcards as
        C(Get-PSSessionConfiguration -Name) takes them. V(*) is every one.
      - Restricting a JEA endpoint to O(accounts) replaces the access its role definitions
        gave; name the configurations explicitly on hosts that use JEA.
    type: list
    elements: str
    default: ["*"]
  root_sddl:
    description: Whether to restrict the WinRM service's C(RootSDDL) as well.
    type: bool
    default: true
  allow_lockout:
    description: Allow a list that does not include the account running the task.
    type: bool
    default: false
  restart_winrm:
    description:
      - Schedule a WinRM restart ten seconds after a session configuration changed (see above).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would change without writing.
  diff_mode:
    support: full
    description: Shows each security descriptor (SDDL) before and after.
  platform:
    support: full
    platforms: windows
    description: Windows hosts with PowerShell remoting enabled.
author:
  - winops.remoting contributors
"""

EXAMPLES = r"""
- name: Let only the Ansible account and the built-in Administrators use remoting
  winops.remoting.win_psremoting_access:
    accounts:
      - "{{ ansible_user }}"
      - BUILTIN\Administrators
    restart_winrm: true
  register: remoting_access

- name: Wait for WinRM to come back after the scheduled restart
  ansible.builtin.wait_for_connection:
    delay: 20
    timeout: 180
  when: remoting_access.restart_scheduled
"""

RETURN = r"""
sddl:
  description: The security descriptor applied.
  returned: always
  type: str
  sample: O:NSG:BAD:P(A;;GA;;;S-1-5-32-544)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)
accounts:
  description: The accounts allowed, with SID and resolved name.
  returned: always
  type: list
  elements: dict
  sample: [{"sid": "S-1-5-32-544", "name": "BUILTIN\\Administrators"}]
changed_configurations:
  description:
    - Session configurations whose descriptor changed, named as C(Get-PSSessionConfiguration)
      names them; Windows registers the built-in ones in lower case (C(microsoft.powershell),
      C(microsoft.powershell32)), and the diff's keys use the same names.
  returned: always
  type: list
  elements: str
  sample: [microsoft.powershell, microsoft.powershell32]
unrestricted_configurations:
  description:
    - PowerShell remoting endpoints (WinRM plugins served by C(pwrshplugin.dll)) this task left
      as they were; they still grant whatever their own descriptors grant.
  returned: always
  type: list
  elements: str
  sample: ["PowerShell.7", "PowerShell.7.4.6"]
restart_required:
  description: Whether the WinRM service must still be restarted for the change to apply.
  returned: always
  type: bool
restart_scheduled:
  description: Whether a WinRM restart was (or, in check mode, would be) scheduled.
  returned: always
  type: bool
"""
