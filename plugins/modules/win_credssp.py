# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_credssp.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_credssp
short_description: Manage the CredSSP server and client roles and the delegation lists
description:
  - The server role (C(WSMan:\localhost\Service\Auth\CredSSP)) lets the WinRM service accept
    CredSSP, so a controller can connect with C(ansible_winrm_transport=credssp) or
    C(ansible_psrp_auth=credssp) and the host can use the delegated credentials on a second hop.
  - The client role (C(WSMan:\localhost\Client\Auth\CredSSP)) lets this host delegate fresh
    credentials to the computers in the "Allow delegating fresh credentials" policy
    (C(HKLM:\SOFTWARE\Policies\Microsoft\Windows\CredentialsDelegation\AllowFreshCredentials)) and,
    for servers authenticated by NTLM only, "Allow delegating fresh credentials with NTLM-only
    server authentication" (C(...\AllowFreshCredentialsWhenNTLMOnly)).
  - The lists are exact. C(Enable-WSManCredSSP -Role Client) only adds entries, so a computer
    once allowed stays allowed; with this module an entry not given is removed.
  - C(Enable-WSManCredSSP -Role Client) keeps its list in the local Group Policy Object (the
    machine C(Registry.pol) under C(%SystemRoot%\System32\GroupPolicy)), and Group Policy writes
    that list back onto the live key at every policy refresh and at boot. Where the local GPO
    holds a list, this module writes the local GPO as well (through C(IGroupPolicyObject), as
    the cmdlet does), so the exact list survives the next refresh; RV(local_group_policy) names
    those lists. A list set by a domain GPO is not detected and is replaced at its next refresh.
  - Options that are not given are left as they are. A role switch that Group Policy sets
    (C(HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM\Service\AllowCredSSP) or
    C(...\Client\AllowCredSSP)) is reported in RV(managed_by_policy), not changed.
  - CredSSP hands the user's password to the server. Enable the server role only on hosts that
    need the double hop, and name delegate computers as narrowly as possible.
version_added: 0.1.0
options:
  server:
    description: Whether the WinRM service accepts CredSSP.
    type: bool
  client:
    description:
      - Whether this host's WinRM client may use CredSSP. V(true) requires a non-empty
        O(delegate_computers).
      - V(false) without O(delegate_computers) also does what C(Disable-WSManCredSSP -Role Client)
        does to the "Allow delegating fresh credentials" list, live and in the local Group Policy
        Object. Its C(wsman/...) entries are removed, other entries (such as C(TERMSRV/*)) stay,
        and a list left empty takes the policy out. The NTLM-only list is not changed.
    type: bool
  delegate_computers:
    description:
      - Computers this host may delegate fresh credentials to. A name such as
        V(server01.example.com) or V(*.example.com) becomes C(wsman/<name>); an entry that
        already contains C(/) (for example V(TERMSRV/*)) is kept as written.
      - The name must match the name the connection uses, normally the FQDN.
      - The list replaces the policy's list; an empty list removes the policy.
    type: list
    elements: str
  delegate_computers_ntlm_only:
    description:
      - Like O(delegate_computers) for the NTLM-only policy, needed when the next hop is
        authenticated with NTLM (for example a workgroup server).
    type: list
    elements: str
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
    details:
      - Shows the role switches and lists before and after, under the option names. C(server)
        and C(client) (C(Service\Auth\CredSSP) and C(Client\Auth\CredSSP)) appear when the
        option is given; C(delegate_computers) and C(delegate_computers_ntlm_only) always appear,
        null when the policy is not set.
  platform:
    support: full
    details: Windows hosts with the WinRM service running.
seealso:
  - module: winops.remoting.win_winrm_service
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Let the WinRM service accept CredSSP
  winops.remoting.win_credssp:
    server: true

- name: Let this host delegate credentials to the file servers of one domain, and nothing else
  winops.remoting.win_credssp:
    client: true
    delegate_computers:
      - "*.files.example.com"
    delegate_computers_ntlm_only: []

- name: Turn both roles off and clear the list
  winops.remoting.win_credssp:
    server: false
    client: false
    delegate_computers: []
"""

RETURN = r"""
delegate_computers:
  description: The AllowFreshCredentials SPNs after the task; null when the policy is not set.
  returned: always
  type: list
  elements: str
  sample: ["wsman/*.files.example.com"]
delegate_computers_ntlm_only:
  description: The AllowFreshCredentialsWhenNTLMOnly SPNs after the task; null when not set.
  returned: always
  type: list
  elements: str
local_group_policy:
  description:
    - The lists (by option name) that the local Group Policy Object also holds, as
      C(Enable-WSManCredSSP -Role Client) leaves them; for a list given to the module, the local
      GPO is written too.
  returned: always
  type: list
  elements: str
  sample: ["delegate_computers"]
managed_by_policy:
  description: Role switches that Group Policy sets and that were left unchanged.
  returned: always
  type: list
  elements: str
  sample: ["Service\\Auth\\CredSSP"]
"""
