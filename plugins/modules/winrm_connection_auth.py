# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the action plugin winrm_connection_auth does the work on the controller.

DOCUMENTATION = r"""
module: winrm_connection_auth
short_description: Say what the play's own connection needs of the host's WinRM service
description:
  - Runs on the controller, on the connection the task would use for the host, and returns the
    HTTP authentication scheme that connection sends (V(Basic), V(Negotiate), V(CredSSP) or
    V(Certificate)), whether it runs over HTTPS, which C(Service\Auth) settings accept that
    scheme (any one of them keeps the connection), whether it needs
    C(Service\AllowUnencrypted), and whether its logons carry a channel binding token.
  - The roles of this collection call it before they change authentication or encryption, so
    that they refuse a change that would cut the play off. What only the host knows (the
    addresses the play's connection arrives on, behind NAT not the ones the controller
    connects to) the roles ask the host's modules in check mode.
  - The scheme is the one the connection really uses, as resolved by the plugin's own option
    handling, including an unset O(ignore:ansible_winrm_transport) (Basic under the names
    C(ssl) and C(plaintext), or Kerberos for a user principal name), C(ssl) with a client
    certificate (certificate authentication) and pywinrm's C(kerberos) transport, which sends
    the V(Negotiate) scheme.
  - Knows C(winops.remoting.winrm), C(winops.remoting.psrp), C(ansible.builtin.winrm) and
    C(ansible.builtin.psrp). For C(ssh) and C(local) connections it returns
    RV(depends_on_winrm=false); any other plugin is an error.
version_added: 0.1.0
options: {}
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.action
attributes:
  check_mode:
    support: full
    details: Nothing is changed; the connection is opened if it is not yet.
  diff_mode:
    support: none
  action:
    support: full
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Ask what the connection depends on
  winops.remoting.winrm_connection_auth:
  register: connection_auth

- name: Refuse to switch Basic off from inside a Basic session
  ansible.builtin.assert:
    that: "'basic' not in connection_auth.service_auth"
"""

RETURN = r"""
depends_on_winrm:
  description: Whether the connection goes through the host's WinRM service.
  returned: always
  type: bool
plugin:
  description: The connection plugin, as in C(ansible_connection).
  returned: always
  type: str
  sample: ansible.builtin.winrm
client_auth:
  description: The pywinrm transport or pypsrp auth value in use.
  returned: when depends_on_winrm
  type: str
  sample: ssl
http_scheme:
  description: The HTTP authentication scheme the connection sends.
  returned: when depends_on_winrm
  type: str
  sample: Basic
service_auth:
  description:
    - Service authentication methods (in C(winrm_auth_methods) terms) that accept the scheme;
      switching off all of them cuts the connection off.
  returned: when depends_on_winrm
  type: list
  elements: str
  sample: [basic]
service_settings:
  description: The same as WSMan paths.
  returned: when depends_on_winrm
  type: list
  elements: str
  sample: ['Service\Auth\Basic']
https:
  description: Whether the connection uses HTTPS.
  returned: when depends_on_winrm
  type: bool
listener:
  description: The listener the connection arrives on.
  returned: when depends_on_winrm
  type: dict
  contains:
    transport:
      description: V(HTTP) or V(HTTPS).
      type: str
    port:
      description: The port.
      type: int
  sample: {transport: HTTPS, port: 5986}
host:
  description: The host name or address the controller connects to.
  returned: when depends_on_winrm
  type: str
port:
  description: The port the controller connects to.
  returned: when depends_on_winrm
  type: int
needs_allow_unencrypted:
  description: Whether the connection sends clear messages over HTTP (Basic, or message encryption V(never)).
  returned: when depends_on_winrm
  type: bool
sends_channel_binding:
  description:
    - Whether an NTLM or Kerberos logon of the connection carries the TLS channel binding token
      (C(ansible_winrm_send_cbt), C(ansible_psrp_negotiate_send_cbt); both default to true).
  returned: when depends_on_winrm
  type: bool
https_logons_refused_by_strict_cbt:
  description:
    - Whether C(Service\Auth\CbtHardeningLevel=Strict) would refuse the connection's logons
      over HTTPS, which it does for the V(Negotiate) scheme (NTLM, Kerberos) without a channel
      binding token. Given over HTTP too, for a play that is moved to HTTPS later.
  returned: when depends_on_winrm
  type: bool
"""
