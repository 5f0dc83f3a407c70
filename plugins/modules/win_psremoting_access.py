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
    O(accounts) may connect, at the level O(access) names.
  - With O(mode=add) or O(mode=remove) the module changes only the listed accounts' entries and
    keeps every other entry of each descriptor, so that accounts can be granted or withdrawn one
    at a time.
  - Every PowerShell remoting endpoint that the task leaves as it was (a WinRM plugin served by
    C(pwrshplugin.dll) that O(configurations) did not select or that Windows PowerShell's
    C(Get-PSSessionConfiguration) did not list, for example PowerShell 7's C(PowerShell.7)
    endpoints when it does not) is returned in
    RV(unrestricted_configurations), with a warning. Restrict those with PowerShell 7's
    C(Set-PSSessionConfiguration), or remove them.
  - Fails when none of O(accounts) is the account the play connects as or one of its groups
    (O(mode=exact)), or when removing them (O(mode=remove)) turns a descriptor that lets that
    account in into one that does not, unless O(allow_lockout=true), because the play's next
    connection would be refused. Nothing is written in either case. That account is the one
    running the task unless O(connection_sids) names it (under C(become) the task runs as
    another account).
  - A changed session configuration takes effect once the WinRM service restarts. Restarting it
    from inside the task would end the task's own WinRM session, so with O(restart_winrm=true)
    the module registers a one-off scheduled task (C(winops.remoting restart WinRM), running as
    SYSTEM) that restarts WinRM ten seconds later and deletes itself; RV(restart_scheduled) says
    so, and the play should then wait for the host, for example with
    M(ansible.builtin.wait_for_connection) and a C(delay) of 20 seconds. Without it the module
    returns RV(restart_required). C(RootSDDL) applies at once.
version_added: 0.1.0
options:
  accounts:
    description:
      - Accounts or groups, as names (V(HOST\\ansible), V(.\\ansible), V(ansible),
        V(BUILTIN\\Administrators)) or SIDs (V(S-1-5-32-544)). With O(mode=exact) the list is
        exact.
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
  connection_sids:
    description:
      - The SIDs of the token the play connects with (its account first, then its groups), for
        example from M(ansible.windows.win_whoami) run with C(become=false). The lockout checks
        protect them instead of the account running the task, which under C(become) is another
        one. Names are taken as for O(accounts).
    type: list
    elements: str
  allow_lockout:
    description: Allow a list that does not include the account the play connects as.
    type: bool
    default: false
  restart_winrm:
    description:
      - Schedule a WinRM restart ten seconds after a session configuration changed (see above).
    type: bool
    default: false
  access:
    description:
      - What O(accounts) are granted.
      - V(full) is generic all (C(GA) in SDDL), what Administrators have by default.
      - V(read_execute) is generic read and execute (C(GXGR)), the Read and Execute
        permissions that C(winrm configSDDL default) offers and Ansible's WinRM guide names as
        the least a non-administrator needs to run commands over WinRM. The account connects
        and runs commands with its own rights; tasks that need an administrator need an
        administrator connection, as C(become) does not work from a non-administrator one.
        See the collection's docs/hardening.md.
    type: str
    choices: [full, read_execute]
    default: full
  mode:
    description:
      - V(exact) replaces each descriptor's entries with O(accounts).
      - V(add) gives each of O(accounts) an allow entry with O(access) (replacing the allow
        entry it had) and keeps every other entry.
      - V(remove) drops the allow entries of O(accounts) and keeps every other entry; O(access)
        is not used.
    type: str
    choices: [exact, add, remove]
    default: exact
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
    details: Shows each security descriptor (SDDL) before and after.
  platform:
    support: full
    details: Windows hosts with PowerShell remoting enabled.
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Let only the Ansible account and the built-in Administrators use remoting
  winops.remoting.win_psremoting_access:
    accounts:
      - "{{ ansible_user }}"
      - BUILTIN\Administrators
    restart_winrm: true
  register: remoting_access

- name: Also let a non-administrator account connect, keeping everyone already allowed
  winops.remoting.win_psremoting_access:
    accounts:
      - .\operator
    access: read_execute
    mode: add
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
  description:
    - The security descriptor applied with O(mode=exact); null with V(add) and V(remove), where
      each target keeps a descriptor of its own (see RV(descriptors)).
  returned: always
  type: str
  sample: O:NSG:BAD:P(A;;GA;;;S-1-5-32-544)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)
descriptors:
  description:
    - Each selected session configuration's descriptor, and C(RootSDDL) with O(root_sddl=true),
      after the task (in check mode, as it would be).
  returned: always
  type: dict
  sample: {"Microsoft.PowerShell": "O:NSG:BAD:P(A;;GA;;;BA)(A;;GXGR;;;S-1-5-21-1-2-3-1001)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"}
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
