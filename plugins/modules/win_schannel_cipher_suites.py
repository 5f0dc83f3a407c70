# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_schannel_cipher_suites.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_schannel_cipher_suites
short_description: Set the SCHANNEL cipher suite priority list (SSL Cipher Suite Order)
description:
  - Writes the comma-separated REG_SZ value C(Functions) under
    C(HKLM:\SOFTWARE\Policies\Microsoft\Cryptography\Configuration\SSL\00010002), the value the
    local Group Policy setting C(SSL Cipher Suite Order) (Computer Configuration, Administrative
    Templates, Network, SSL Configuration Settings) sets, and the one SChannelDsc's
    C(CipherSuites) resource writes.
  - When a list is configured SCHANNEL uses only the suites in it, in its order; TLS 1.3 suites
    (C(TLS_AES_256_GCM_SHA384), C(TLS_AES_128_GCM_SHA256)) are entries of the same list.
    V(absent) removes the value and the release's default order applies again.
  - A list without either of those two is refused, before anything is written, on a host that
    serves TLS 1.3 (Windows Server 2022 and later, unless its C(TLS 1.3\\Server) key turns it
    off). SCHANNEL still chooses TLS 1.3 with a client that offers it and then finds no suite,
    so the handshake fails rather than falling back to TLS 1.2, and the controller (which offers
    TLS 1.3) would be cut off. Disable TLS 1.3 for the server first with
    M(winops.remoting.win_schannel_protocol) to use such a list.
  - Every name is checked against the suites Microsoft lists for the host's release before
    anything is written, for Windows Server 2008 R2 (build 7601; ECDHE suites carry the curve,
    C(_P256), C(_P384), C(_P521)) and Windows Server 2022 and later (build 20348 and up). Other
    builds are refused; manage them with Group Policy.
  - Windows reads the list at start-up. RV(reboot_required) is true whenever something changed;
    reboot before relying on it. A domain GPO that sets the same policy overwrites the value at
    its next refresh, and so does the local Group Policy Object when the policy was set there
    (gpedit.msc), unlike M(winops.remoting.win_credssp), which writes the local GPO as well.
    Neither is detected; change the list in that GPO instead.
  - The module cannot tell whether the controller can still negotiate with the list; the
    C(winops.remoting.controller_cipher_suites) filter can, and the C(winops.remoting.tls12)
    role checks it before calling this module.
version_added: 0.1.0
options:
  cipher_suites:
    description:
      - The suites in priority order, with Microsoft's names (for example
        C(TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)). Required when O(state=present); names are
        case-sensitive, as SCHANNEL's are, and may appear once.
      - Joined with commas the list may be at most 1,023 characters long.
    type: list
    elements: str
  state:
    description:
      - V(present) sets the list; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Validates the list and reports what would change without writing.
  diff_mode:
    support: full
    details: Shows the configured list before and after; null means no list.
  platform:
    support: full
    details: Windows Server 2008 R2 SP1, Windows Server 2022 and later.
seealso:
  - module: winops.remoting.win_schannel_protocol
  - module: ansible.windows.win_reboot
  - name: Cipher Suites in TLS/SSL (Schannel SSP)
    description: The suites each Windows release supports and its default order.
    link: https://learn.microsoft.com/windows/win32/secauthn/cipher-suites-in-schannel
  - name: Manage Transport Layer Security (TLS)
    description: The SSL Cipher Suite Order policy, its 1,023 character limit and the reboot.
    link: https://learn.microsoft.com/windows-server/security/tls/manage-tls
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Allow only ECDHE with AES-GCM on TLS 1.2, and TLS 1.3
  winops.remoting.win_schannel_cipher_suites:
    cipher_suites:
      - TLS_AES_256_GCM_SHA384
      - TLS_AES_128_GCM_SHA256
      - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
      - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
      - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
      - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  register: suites

- name: Restart when the list changed
  ansible.windows.win_reboot:
  when: suites.reboot_required

- name: Go back to the release's default order
  winops.remoting.win_schannel_cipher_suites:
    state: absent
"""

RETURN = r"""
cipher_suites:
  description: The list configured after the task; null when none is.
  returned: always
  type: list
  elements: str
  sample: ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
build:
  description: The host's Windows build (C(CurrentBuildNumber)), which decides the known suites.
  returned: always
  type: int
  sample: 20348
reboot_required:
  description: Whether a restart is needed for the change to take effect.
  returned: always
  type: bool
  sample: true
"""
