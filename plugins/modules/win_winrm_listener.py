# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_winrm_listener.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_winrm_listener
short_description: Manage one WinRM listener, keyed by transport and address
description:
  - Creates, updates or removes one WinRM listener (C(winrm/config/listener)), identified the way
    WinRM identifies it, by O(transport) and O(address).
  - Several listeners of the same transport can exist side by side when their addresses differ,
    for example an HTTPS listener on two chosen IP addresses; call the module once per listener.
  - Changing O(certificate_thumbprint) of an existing HTTPS listener rotates its certificate in
    place; the old thumbprint is returned in RV(previous_thumbprint).
  - Listener changes are live. Removing or moving the listener that carries the current
    connection ends that connection; the P(winops.remoting.winrm_listener#role) role orders its
    tasks so that this never happens mid-play.
  - The compatibility listeners that WinRM adds on ports 80 and 443 when C(winrm/config/service)
    C(EnableCompatibilityHttpListener) or C(EnableCompatibilityHttpsListener) is true (shown with
    C(Source="Compatibility")), and listeners made by Group Policy (C(Source="GPO")), are not
    this module's; they never count as the listener of O(transport) and O(address), are never
    changed or removed, and a warning names them. They are listed in RV(listeners) with their
    C(source).
version_added: 0.1.0
options:
  transport:
    description: The listener transport.
    type: str
    required: true
    choices: [http, https]
  address:
    description:
      - The Address selector. V(*) listens on every address, V(IP:<address>) on one IPv4
        (dotted quad) or IPv6 address, V(MAC:<aa-bb-cc-dd-ee-ff>) on the adapter with that MAC
        address (6 hex pairs, or 8 for an EUI-64 address such as V(MAC:aa-bb-cc-dd-ee-ff-00-11)).
      - Anything else fails before the host is changed, with the reason in the message.
    type: str
    default: "*"
  port:
    description:
      - TCP port. Defaults to V(5985) for O(transport=http) and V(5986) for O(transport=https).
      - Moving an existing listener to another port is refused (in check mode too, before
        anything changes) while clients from elsewhere are connected through it, this play's
        own connection among them when it uses this listener; after the move nothing listens on
        the old port, so their next connection would fail. Move it from a connection through
        another listener.
    type: int
  hostname:
    description:
      - The Hostname value of the listener.
      - For HTTPS it must be the certificate's CN (WinRM refuses a listener whose Hostname is
        not, fault 2150858985); another value is refused before anything changes. When omitted,
        an HTTPS listener takes its certificate's CN; an HTTP listener, or an HTTPS one whose
        certificate is not known yet in check mode, keeps its hostname.
    type: str
  certificate_thumbprint:
    description:
      - SHA-1 thumbprint (40 hex digits, spaces ignored) of a certificate in
        C(Cert:\LocalMachine\My) with a private key and, if it lists usages, Server
        Authentication.
      - Required to create an HTTPS listener; invalid with O(transport=http).
      - In check mode a certificate that an earlier task would create may be missing; the module
        then warns instead of failing.
    type: str
  url_prefix:
    description: The URL prefix clients use, C(https://host:5986/<url_prefix>).
    type: str
    default: wsman
  enabled:
    description: Whether the listener accepts connections.
    type: bool
    default: true
  state:
    description: Whether the listener should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without touching the listener.
  diff_mode:
    support: full
    details: Shows the listener's values before and after.
  platform:
    support: full
    details: Windows hosts with the WinRM service running.
seealso:
  - module: winops.remoting.win_winrm_https_certificate
  - module: winops.remoting.win_winrm_firewall
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Listen for HTTPS on every address with a certificate from the machine store
  winops.remoting.win_winrm_listener:
    transport: https
    certificate_thumbprint: "{{ https_cert.thumbprint }}"

- name: Listen for HTTPS on two chosen addresses only
  winops.remoting.win_winrm_listener:
    transport: https
    address: "IP:{{ item }}"
    certificate_thumbprint: "{{ https_cert.thumbprint }}"
  loop:
    - 192.0.2.10
    - "2001:db8::10"

- name: Keep a plain HTTP listener for local tools on the loopback address only
  winops.remoting.win_winrm_listener:
    transport: http
    address: IP:127.0.0.1

- name: Remove the plain HTTP listener on every address
  winops.remoting.win_winrm_listener:
    transport: http
    address: "*"
    state: absent
"""

RETURN = r"""
listener:
  description: The listener as it is (or would be, in check mode) after the task; null when absent.
  returned: always
  type: dict
  sample:
    transport: https
    address: "*"
    port: 5986
    hostname: SERVER01
    enabled: true
    url_prefix: wsman
    certificate_thumbprint: E6CDAA82EEAF2ECE8546E05DB7F3E01AA47D76CE
previous_thumbprint:
  description: The certificate thumbprint that a rotation replaced, otherwise null.
  returned: always
  type: str
  sample: 7C8DCBD5427AFEE6560F4AF524E325915F51172C
listeners:
  description:
    - Every listener on the host after the task (before it, in check mode), same keys as
      RV(listener), plus C(source), the Listener element's Source attribute.
    - C(source) is empty for configured listeners, V(Compatibility) for the compatibility
      listeners and V(GPO) for those Group Policy makes; only the first kind is managed here.
  returned: always
  type: list
  elements: dict
"""
