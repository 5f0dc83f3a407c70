# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the action plugin winrm_doctor does the work on the controller.

DOCUMENTATION = r"""
module: winrm_doctor
short_description: Say why a Windows host will not connect over WinRM, layer by layer
description:
  - Runs on the controller for the host in question, from that host's connection variables
    (C(ansible_host), C(ansible_port), C(ansible_winrm_*) or C(ansible_psrp_*)), read through
    the winops.remoting.winrm or winops.remoting.psrp connection plugin exactly as a task would.
  - "Checks, in order: name resolution; TCP reachability of the port (a connection the host
    closes at once points at its firewall scope); TLS (negotiated version, certificate subject,
    SANs and validity, chain and name against the configured CA bundle); WS-Management Identify
    without credentials; the authentication schemes the listener offers against the configured
    one; for Kerberos the service principal (an IP address has none), reverse lookup, the realm
    in krb5.conf, a reachable KDC, clock skew against the host's HTTP Date and the ticket (kinit as the
    plugin runs it, or the user's own cache in manual mode); whether message
    encryption is needed and allowed; and a real authenticated session, opened as the plugin
    opens it."
  - The first failing check names its layer and the fix (the variable to set or the role to
    apply); later checks are reported as skipped. The connection plugins word their errors with
    the same classifier, so a failed task names the same layer and fix.
  - Only the first transport of C(ansible_winrm_transport) is checked.
version_added: 0.1.0
options:
  plugin:
    description:
      - Which plugin's variables to read. V(auto) uses the host's connection; with
        C(ansible.builtin.winrm) or C(ansible.builtin.psrp) the collection's plugin of the same
        kind reads the same variables.
      - For a host on C(ansible.builtin.winrm) or C(ansible.builtin.psrp) checked as its own
        kind, the fixes name only variables that builtin plugin honours; for an option only the
        collection's plugin has, they say so and how to switch (C(ansible_connection)).
        RV(fixes_for) names the plugin the fixes are for.
    type: str
    choices: [auto, winrm, psrp]
    default: auto
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.action
attributes:
  check_mode:
    support: full
    details: The checks change nothing; an authenticated session is opened and closed.
  diff_mode:
    support: none
  action:
    support: full
notes:
  - The password never appears in the result; evidence quoting it is masked.
seealso:
  - module: ansible.windows.win_ping
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
# A broken layer fails the task; ignore_errors lets the next task show the result.
- name: Explain why a host does not answer
  winops.remoting.winrm_doctor:
  register: doctor
  ignore_errors: true

- name: Show the fix
  ansible.builtin.debug:
    msg: "{{ doctor.failed_layer }}: {{ doctor.fix }}"
  when: doctor is failed

- name: Check the variables of the psrp plugin for a host that uses winrm
  winops.remoting.winrm_doctor:
    plugin: psrp
"""

RETURN = r"""
checks:
  description: Every check in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check, e.g. C(tcp), C(tls), C(auth_methods), C(authenticated_session).
      type: str
    layer:
      description: The connection layer it examines.
      type: str
    status:
      description: V(ok), V(failed), V(skipped) (an earlier layer failed) or V(not applicable).
      type: str
    summary:
      description: What failed, one sentence (failed checks only).
      type: str
    evidence:
      description: What was seen.
      type: str
    fix:
      description: The variable to set or the role to apply (failed checks only).
      type: str
failed_layer:
  description: The layer of the first failed check; null when every check passed.
  returned: always
  type: str
  sample: TLS handshake
fix:
  description: The fix of the first failed check; null when every check passed.
  returned: always
  type: str
plugin:
  description: The connection plugin whose variables were read.
  returned: always
  type: str
  sample: winops.remoting.winrm
fixes_for:
  description:
    - The connection plugin whose variables the fixes name. The host's C(ansible.builtin.winrm)
      or C(ansible.builtin.psrp) when it uses that plugin and is checked as that kind (C(msg)
      then says C(fix for ansible.builtin.winrm)), else the collection's plugin in RV(plugin).
  returned: always
  type: str
  sample: ansible.builtin.winrm
endpoint:
  description: The WS-Management URL checked.
  returned: always
  type: str
  sample: https://win01.example.com:5986/wsman
transport:
  description: The authentication checked.
  returned: always
  type: str
"""
