"""What each connection problem is called and how it is fixed: the one table of wording.

Internal use only: this module is not part of the collection's public API.

``WORDING`` holds every diagnosis the collection can give, as data: the layer that failed, a
summary and a fix, both templates. The classifier in ``_errors`` (a failed task), the Kerberos
ticket helper and the doctor's checks all build their ``Diagnosis`` through ``describe``, so a
failed win_ping and winrm_doctor say the same thing about the same set-up, and nothing has to
read wording back out of a message. Fixes name the variables of the plugin in use
(``{v.<name>}``, from ``PluginVars``) or the collection role to apply. The doctor also words
fixes for hosts on ``ansible.builtin.winrm`` and ``ansible.builtin.psrp``: they name only what
the builtin plugin honours, and where it has no such option they say how to switch to ours
(``{collection_plugin}``).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import Endpoint


class Layer(enum.Enum):
    """The step of a connection that failed, from the network up."""

    NAME_RESOLUTION = "name resolution"
    TCP = "TCP connection"
    TLS = "TLS handshake"
    HTTP_AUTH = "HTTP authentication"
    MESSAGE_ENCRYPTION = "message encryption"
    WSMAN = "WS-Management"
    KERBEROS = "Kerberos"
    TRANSFER = "file transfer"
    COMMAND = "command"


@dataclasses.dataclass
class Diagnosis:
    """What failed (one sentence), what was seen, and the variable or role that fixes it."""

    layer: Layer
    summary: str
    evidence: str
    fix: str
    # The WORDING entry it was made from ("" for one built elsewhere).
    key: str = ""


@dataclasses.dataclass(frozen=True)
class PluginVars:
    """The variables of one plugin that fixes name; None where the plugin has no such option
    (a row whose fix needs it words that plugin's fix in ``fix_by_plugin``)."""

    auth: str
    cert_validation: str
    ca: str
    scheme: str
    encryption: str
    path: str
    read_timeout: str
    operation_timeout: str
    connection_timeout: str
    max_envelope: str | None
    retries: str | None
    kinit_cmd: str | None
    hostname_override: str
    spn_service: str  # the default service part of the SPN the plugin's library asks for
    configuration: str | None
    credssp_tls_1_0: str  # the variable that makes requests-credssp use TLS 1.0 inside CredSSP


_PLUGIN_VARS = {
    "winrm": PluginVars(
        auth="ansible_winrm_transport",
        cert_validation="ansible_winrm_server_cert_validation",
        ca="ansible_winrm_ca_trust_path",
        scheme="ansible_winrm_scheme",
        encryption="ansible_winrm_message_encryption",
        path="ansible_winrm_path",
        read_timeout="ansible_winrm_read_timeout_sec",
        operation_timeout="ansible_winrm_operation_timeout_sec",
        connection_timeout="ansible_winrm_connection_timeout",
        max_envelope="ansible_winrm_max_envelope_size",
        retries="ansible_winrm_reconnection_retries",
        kinit_cmd="ansible_winrm_kinit_cmd",
        hostname_override="ansible_winrm_kerberos_hostname_override",
        spn_service="HTTP",
        configuration=None,
        credssp_tls_1_0="ansible_winrm_credssp_disable_tlsv1_2",
    ),
    "psrp": PluginVars(
        auth="ansible_psrp_auth",
        cert_validation="ansible_psrp_cert_validation",
        ca="ansible_psrp_ca_cert",
        scheme="ansible_psrp_protocol",
        encryption="ansible_psrp_message_encryption",
        path="ansible_psrp_path",
        read_timeout="ansible_psrp_read_timeout",
        operation_timeout="ansible_psrp_operation_timeout",
        connection_timeout="ansible_psrp_connection_timeout",
        max_envelope="ansible_psrp_max_envelope_size",
        retries="ansible_psrp_reconnection_retries",
        kinit_cmd="ansible_psrp_kinit_cmd",
        hostname_override="ansible_psrp_negotiate_hostname_override",
        spn_service="WSMAN",
        configuration="ansible_psrp_configuration_name",
        credssp_tls_1_0="ansible_psrp_credssp_disable_tlsv1_2",
    ),
}
# The builtin plugins keep our variables' names where they have the option at all (our plugins
# took theirs). ansible.builtin.winrm declares few options itself and hands every other
# ansible_winrm_<name> to pywinrm's Protocol when Protocol takes an argument <name> (its
# DOCUMENTATION's description; server_cert_validation, ca_trust_path, message_encryption,
# read_timeout_sec, operation_timeout_sec, kerberos_hostname_override and
# credssp_disable_tlsv1_2 in pywinrm 0.5). pywinrm has no argument to retry a request or to
# size envelopes (Protocol.DEFAULT_MAX_ENV_SIZE, 153600 bytes, is fixed), and
# ansible.builtin.psrp never runs kinit (pypsrp asks pyspnego for the ticket). Setting any of
# those variables changes nothing there, so the rows that name them say how to switch instead.
# test_both_plugins.py checks these against the builtin plugins' DOCUMENTATION and pywinrm.
_PLUGIN_VARS["ansible.builtin.winrm"] = dataclasses.replace(
    _PLUGIN_VARS["winrm"], max_envelope=None, retries=None
)
_PLUGIN_VARS["ansible.builtin.psrp"] = dataclasses.replace(_PLUGIN_VARS["psrp"], kinit_cmd=None)


@dataclasses.dataclass(frozen=True)
class Wording:
    """One row of the table: the layer, a summary and a fix (``str.format`` templates).

    ``fix_by_plugin`` and ``summary_by_plugin`` replace ``fix`` and ``summary`` for a plugin
    whose remedy or failing resource differs (an option the other plugin does not have, the
    cmd shell against a PowerShell session configuration). Their keys are a kind (winrm,
    psrp: our plugin and the builtin one) or a builtin plugin (ansible.builtin.winrm), which
    comes first.
    """

    layer: Layer
    summary: str
    fix: str
    fix_by_plugin: t.Mapping[str, str] = dataclasses.field(default_factory=dict)
    summary_by_plugin: t.Mapping[str, str] = dataclasses.field(default_factory=dict)


_FIREWALL = (
    "allow the controller's address in the host's firewall rule for port {port} "
    "(winrm_listener_firewall_remote_addresses of the winops.remoting.winrm_listener role)"
)
_CREDENTIALS = "check ansible_user and ansible_password for {transport} authentication"
# How an account is let in to the cmd shell (winrm) or the PowerShell endpoint (psrp): the
# security descriptors that tests/winhost/winhost/access.py and docs/hardening.md describe.
_GRANT_ROOT_SDDL = (
    "make it an administrator or grant it RootSDDL read and execute (winops.remoting."
    "win_psremoting_access with access: read_execute, mode: add; Remote Management Users is "
    "not enough for the cmd shell)"
)
_GRANT_ENDPOINT = (
    "make it an administrator, add it to Remote Management Users, or grant it the session "
    "configuration (winops.remoting.win_psremoting_access with access: read_execute, mode: add, "
    "restart_winrm: true)"
)
# What else Windows refuses with the same 401 as a wrong password (see "logon_refused").
_OTHER_401_CAUSES = (
    "; a local administrator other than the built-in Administrator needs "
    "winrm_auth_local_account_token_filter_policy: enabled (winops.remoting.winrm_auth role); "
    "with NTLM (ntlm, negotiate, credssp) check that the host's policy does not refuse incoming "
    "NTLM (Network security: Restrict NTLM: Incoming NTLM traffic)"
)
_IF_RIGHT = "; if they are right, the account may not use WinRM: "
_TIMEOUTS = "raise {v.operation_timeout} and {v.read_timeout} (read above operation)"
# ansible.builtin.winrm gives pywinrm the operation timeout ansible_winrm_connection_timeout
# and a read timeout 10 seconds above it whenever that variable is set, over
# ansible_winrm_operation_timeout_sec and ansible_winrm_read_timeout_sec (_winrm_connect in
# its winrm.py, and the option's description).
_BUILTIN_WINRM_TIMEOUTS = (
    "raise {v.connection_timeout}: ansible.builtin.winrm makes it the operation timeout and "
    "sets the read timeout 10 seconds above it (without it, raise {v.operation_timeout} and "
    "{v.read_timeout}, read above operation)"
)
# How a fix for a builtin plugin names an option only the collection's plugin has.
_SWITCH = "ansible_connection: {collection_plugin}"

WORDING: dict[str, Wording] = {
    # -- network ---------------------------------------------------------------------------
    "name_not_resolved": Wording(
        Layer.NAME_RESOLUTION,
        "the host name {host!r} could not be resolved",
        "set ansible_host to a resolvable name or to the host's IP address",
    ),
    # Not `winrm quickconfig`, which a Windows client's WSManFault 2150858770 suggests: it also
    # makes a listener on every address and opens the firewall for it (Microsoft Learn,
    # "Installation and configuration for Windows Remote Management"), undoing the hardening
    # the winrm_listener and winrm_hardening roles apply.
    "tcp_refused": Wording(
        Layer.TCP,
        "nothing accepted the connection on port {port}",
        "check ansible_port (5985 for HTTP, 5986 for HTTPS) and create the listener with the "
        "winops.remoting.winrm_listener role; if the listener exists, the WinRM service is "
        "stopped or restarting (a reboot; a Windows client reports WSManFault 2150858770): "
        "start it on the host (Set-Service WinRM -StartupType Automatic; Start-Service WinRM)",
    ),
    "tcp_timeout": Wording(
        Layer.TCP,
        "port {port} did not answer in time",
        "open the port in the host's firewall for the controller (winops.remoting."
        "winrm_listener role); check that a WinRM listener serves port {port} (Windows "
        "Firewall drops connections to a port nothing listens on rather than refuse them); "
        "or raise {v.connection_timeout}",
    ),
    "closed_connection": Wording(
        Layer.TCP,
        "the host closed the connection on port {port} without answering",
        _FIREWALL + "; check {v.scheme} and ansible_port against the host's listeners",
    ),
    "read_timeout": Wording(
        Layer.WSMAN,
        "the host accepted the request but did not answer within the read timeout",
        "raise {v.read_timeout} (it must stay above the operation timeout)",
        fix_by_plugin={"ansible.builtin.winrm": _BUILTIN_WINRM_TIMEOUTS},
    ),
    # The same during a task whose session was working: the request may still be running.
    "read_timeout_during_task": Wording(
        Layer.WSMAN,
        "the host accepted the task's request but did not answer within the read timeout",
        "raise {v.read_timeout} (it must stay above the operation timeout); whether the host ran "
        "what the task sent is unknown, so it was not sent again: check the host before you "
        "rerun the task",
    ),
    "answer_cut": Wording(
        Layer.WSMAN,
        "the connection broke while the host was sending its answer",
        "rerun the task: a request that may have started a command is never repeated "
        "automatically ({v.retries} covers only the steps that are safe to repeat); if it "
        "recurs, look for a proxy, load balancer or firewall cutting long responses",
        fix_by_plugin={
            "ansible.builtin.winrm": "rerun the task; if it recurs, look for a proxy, load "
            "balancer or firewall cutting long responses. ansible.builtin.winrm repeats no "
            "request after a broken connection; the collection's plugin repeats the steps "
            "that are safe to repeat (" + _SWITCH + ", option reconnection_retries)",
        },
    ),
    # -- TLS -------------------------------------------------------------------------------
    "tls_plain_http_port": Wording(
        Layer.TLS,
        "port {port} did not answer TLS: it is most likely a plain HTTP listener",
        "set {v.scheme}: http (or ansible_port: 5986 for the HTTPS listener)",
    ),
    "tls_no_shared_version": Wording(
        Layer.TLS,
        "the host and the controller share no TLS version",
        "enable TLS 1.2 on the host with the winops.remoting.tls12 role; if the controller's "
        "range (seen) ends below the host's versions, lift its cap (MaxProtocol in the file "
        "OPENSSL_CONF names) or run Ansible under a Python built with a current OpenSSL",
    ),
    "controller_tls_too_old": Wording(
        Layer.TLS,
        "the controller cannot speak TLS 1.2: {controller}",
        "run Ansible under a Python built with OpenSSL 1.0.1 or newer (a current "
        "distribution's python3, or an execution environment); enabling TLS 1.2 on the host "
        "does not help a controller that cannot speak it",
    ),
    "certificate_tls13_urllib3": Wording(
        Layer.TLS,
        "certificate authentication over TLS 1.3 needs post-handshake authentication, which "
        "urllib3 {urllib3} does not announce here",
        "install urllib3>=2.0.7,!=2.1.* on the controller (the collection's requirements.txt) "
        "and validate the server certificate ({v.cert_validation}), or leave TLS 1.3 off on "
        "the host (tls12_enable_tls13: false of the winops.remoting.tls12 role)",
    ),
    # TLS alert 40, handshake_failure: the sender could not agree on a set of security
    # parameters (RFC 8446 6.2). From Windows it is what SCHANNEL sends when no cipher suite of
    # the client's is enabled on the host (Schannel event 36888 with alert 40 in
    # requests-credssp#18; "none of the cipher suites supported by the client application are
    # supported by the server" in rundeck-plugins/py-winrm-plugin#84; docs/tls.md).
    "tls_no_shared_cipher": Wording(
        Layer.TLS,
        "the host ended the TLS handshake (handshake_failure): most likely the host and the "
        "controller share no cipher suite",
        "compare the host's cipher suite order (tls12_cipher_suites or "
        "tls12_hardened_cipher_suites of the winops.remoting.tls12 role) with what this "
        "controller offers: the winops.remoting.controller_cipher_suites filter returns the "
        "suites of a list that the controller can negotiate; ECDSA suites also need an ECDSA "
        "listener certificate",
    ),
    "tls_handshake_failed": Wording(
        Layer.TLS,
        "the TLS handshake failed",
        "check {v.scheme} and ansible_port against the host's listeners "
        "(winops.remoting.winrm_listener role), and {v.cert_validation}",
    ),
    "certificate_expired": Wording(
        Layer.TLS,
        "the listener's certificate has expired",
        "renew the listener certificate with the winops.remoting.winrm_https_cert role "
        "(winrm_https_cert_renew_days_before_expiry) and bind it with the "
        "winops.remoting.winrm_listener role",
    ),
    "certificate_not_yet_valid": Wording(
        Layer.TLS,
        "the listener's certificate is not valid yet",
        "correct the clock of the host or the controller, or reissue the certificate with the "
        "winops.remoting.winrm_https_cert role",
    ),
    "certificate_wrong_name": Wording(
        Layer.TLS,
        "the listener's certificate is not issued for {host!r}",
        "set ansible_host to a name the certificate lists (its subject alternative names), "
        "or reissue it for {host} with the winops.remoting.winrm_https_cert role "
        "(winrm_https_cert_dns_names, winrm_https_cert_ip_addresses)",
    ),
    "certificate_untrusted": Wording(
        Layer.TLS,
        "the listener's certificate is not trusted",
        "set {v.ca} to the CA bundle that issued the listener certificate (the "
        "winops.remoting.winrm_https_cert role exports it), or {v.cert_validation}: ignore on "
        "a lab host",
    ),
    # -- HTTP authentication and message encryption ------------------------------------------
    # The host named the logon itself as failed (a CredSSP error status): the password or user.
    "credentials_rejected": Wording(Layer.HTTP_AUTH, "the credentials were rejected", _CREDENTIALS),
    # A plain 401. Windows gives it for a wrong password and also for a right one whose account
    # may not use WinRM (tests/winhost/winhost/access.py, "Service level"): a non-administrator
    # not granted by RootSDDL or any session configuration (pywinrm#114), a local administrator
    # other than the built-in one while LocalAccountTokenFilterPolicy is 0, whose network token
    # is filtered (pywinrm#188, #347; docs/authentication.md), or NTLM refused by the policy
    # "Network security: Restrict NTLM: Incoming NTLM traffic" (learn.microsoft.com/previous-
    # versions/windows/it-pro/windows-10/security/threat-protection/security-policy-settings/
    # network-security-restrict-ntlm-incoming-ntlm-traffic). Remote Management Users is only
    # granted by the PowerShell endpoint, so it lets a user into psrp, not into winrm's cmd shell.
    "logon_refused": Wording(
        Layer.HTTP_AUTH,
        "the credentials were rejected, or the account may not use WinRM (Windows answers both "
        "with HTTP 401)",
        _CREDENTIALS + _IF_RIGHT + _GRANT_ROOT_SDDL + _OTHER_401_CAUSES,
        fix_by_plugin={"psrp": _CREDENTIALS + _IF_RIGHT + _GRANT_ENDPOINT + _OTHER_401_CAUSES},
    ),
    # requests-credssp raises "did not response with a CredSSP token after step TLS
    # Handshake" when the host answers the TLS ClientHello inside CredSSP without a token: the
    # host's CredSSP could not speak the TLS version asked for. requests-credssp asks for TLS
    # 1.2, which Server 2008 R2 and Windows 7 speak inside CredSSP only with TLS 1.2 enabled
    # and the update of KB3080079 (Ansible's WinRM guide, "CredSSP and TLS 1.2";
    # requests-credssp#18, #20).
    "credssp_tls_refused": Wording(
        Layer.HTTP_AUTH,
        "the host ended the TLS handshake inside CredSSP: its CredSSP does not speak the TLS "
        "version the controller asked for (TLS 1.2)",
        "enable TLS 1.2 on the host with the winops.remoting.tls12 role (a reboot applies it) "
        "and, on Server 2008 R2 and Windows 7, install the update of KB3080079 for CredSSP; "
        "only where neither is possible (Server 2008), {v.credssp_tls_1_0}: true makes "
        "CredSSP use TLS 1.0, which protects the delegated credentials less",
    ),
    "client_certificate_refused": Wording(
        Layer.HTTP_AUTH,
        "the client certificate was refused (not trusted, not mapped, or stale mapping)",
        "make the host trust and map the client certificate with the winops.remoting.winrm_auth "
        "role: its issuer in LocalMachine\\Root (an intermediate CA in LocalMachine\\CA, its "
        "root in Root) and the certificate in TrustedPeople "
        "(winrm_auth_trusted_certificates), a mapping of its UPN and issuer thumbprint to a "
        "local account with that account's current password, whose uri covers this "
        "connection's resource URI (the default '*' covers all) "
        "(winrm_auth_certificate_mappings)",
    ),
    "security_context_failed": Wording(
        Layer.HTTP_AUTH,
        "the {transport} security context could not be created",
        "check ansible_user and ansible_password",
    ),
    "auth_not_offered": Wording(
        Layer.HTTP_AUTH,
        "the listener does not offer {method} authentication",
        "{choice}enable {method} on the host ({enabling})",
    ),
    "unencrypted_refused": Wording(
        Layer.MESSAGE_ENCRYPTION,
        "the host refused an unencrypted message over http (its AllowUnencrypted is false)",
        "{change}; enabling AllowUnencrypted on the host (winrm_auth_allow_unencrypted of the "
        "winops.remoting.winrm_auth role) exposes every message",
    ),
    "encryption_impossible": Wording(
        Layer.MESSAGE_ENCRYPTION,
        "message encryption is not possible with {transport} here",
        "set {v.encryption}: auto and use ntlm, kerberos or credssp over http, or use https "
        "({v.scheme})",
    ),
    "undecryptable_message": Wording(
        Layer.MESSAGE_ENCRYPTION,
        "the host could not decrypt a message (an empty HTTP 400): most likely it went out on "
        "a new connection with the keys of one that had been closed",
        "rerun the task (repeating it at once meets the same keys, so {v.retries} cannot help); "
        "if it recurs, look for what closes connections between the controller and the host "
        "(a proxy, load balancer or firewall idle timeout), or use https ({v.scheme}: https, "
        "ansible_port: 5986), where each new connection brings its own keys",
        fix_by_plugin={
            "ansible.builtin.winrm": "rerun the task; if it recurs, look for what closes "
            "connections between the controller and the host (a proxy, load balancer or "
            "firewall idle timeout), or use https ({v.scheme}: https, ansible_port: 5986), "
            "where each new connection brings its own keys",
        },
    ),
    # -- WS-Management -----------------------------------------------------------------------
    "wsman_not_found": Wording(
        Layer.WSMAN,
        "the listener answered 404: no WS-Management service at this path",
        "set {v.path} to the listener's URL prefix (default wsman)",
    ),
    "http_status": Wording(
        Layer.WSMAN,
        "the listener answered HTTP {status}",
        "check the WinRM service on the host; 502/503/504 usually pass, so raise {v.retries}",
        fix_by_plugin={
            "ansible.builtin.winrm": "check the WinRM service on the host; 502/503/504 usually "
            "pass, so rerun the task: ansible.builtin.winrm does not repeat them, the "
            "collection's plugin does (" + _SWITCH + ", option reconnection_retries)",
            # pypsrp's urllib3 Retry repeats a request only on 425, 429 and 503
            # (status_forcelist in pypsrp 0.9 wsman.py).
            "ansible.builtin.psrp": "check the WinRM service on the host; a 503 usually "
            "passes, so raise {v.retries} (pypsrp repeats on 503, not on 502 or 504, which the "
            "collection's plugin also repeats: " + _SWITCH + ")",
        },
    ),
    "identify_not_wsman": Wording(
        Layer.WSMAN,
        "the listener's answer to Identify is not WS-Management XML",
        "check ansible_port and {v.path}: another service answers there",
    ),
    "operation_timeout": Wording(
        Layer.WSMAN,
        "the host did not finish the operation within the operation timeout",
        _TIMEOUTS,
        fix_by_plugin={"ansible.builtin.winrm": _BUILTIN_WINRM_TIMEOUTS},
    ),
    # ansible.builtin.winrm sends files in fixed 250000-byte chunks, base64 in the envelope:
    # more than an older host's default of 150 KB (docs/porting-winrm.md, item 14).
    "envelope_too_large": Wording(
        Layer.WSMAN,
        "a request was larger than the host's MaxEnvelopeSize",
        "lower {v.max_envelope} to the host's MaxEnvelopeSizekb * 1024",
        fix_by_plugin={
            "ansible.builtin.winrm": "raise the host's MaxEnvelopeSizekb to 500 or more "
            "with max_envelope_size_kb of winops.remoting.win_winrm_service (500 is Windows' "
            "default since WinRM 3.0): ansible.builtin.winrm cannot make its requests smaller; "
            "the collection's plugin sizes them to the host (" + _SWITCH + ", option "
            "max_envelope_size)",
        },
    ),
    # WSManFault 5: the account passed the service's check but the resource refused it. The
    # cmd shell (winrm) is granted by RootSDDL, which by default lets in Administrators only:
    # members of Remote Management Users get this fault there and not over PowerShell remoting
    # (pywinrm#275, #338; tests/winhost/winhost/access.py, "Resource level"). A PowerShell
    # session configuration (psrp) is granted by its own descriptor, Microsoft.PowerShell's
    # including Remote Management Users (docs/hardening.md, "Non-administrator accounts").
    "access_denied": Wording(
        Layer.WSMAN,
        "the host denied ansible_user access to the WinRM cmd shell",
        "grant ansible_user read and execute in the WinRM service's RootSDDL, which the cmd shell "
        "checks (winops.remoting.win_psremoting_access with access: read_execute, mode: add and "
        "root_sddl: true), or make it an administrator; Remote Management Users is not enough "
        "for the cmd shell, though the winops.remoting.psrp connection admits its members",
        fix_by_plugin={
            "psrp": "grant ansible_user the session configuration ({v.configuration}, default "
            "Microsoft.PowerShell) with winops.remoting.win_psremoting_access (access: "
            "read_execute, mode: add, restart_winrm: true), or add it to Remote Management "
            "Users or Administrators",
        },
        summary_by_plugin={
            "psrp": "the host denied ansible_user access to the PowerShell session configuration",
        },
    ),
    "no_configuration": Wording(
        Layer.WSMAN,
        "the requested session configuration or resource does not exist",
        "check {v.path} (the listener's URL prefix, default wsman) and the WinRM service "
        "configuration on the host",
        fix_by_plugin={
            "psrp": "set {v.configuration} to a session configuration the host has",
        },
    ),
    # Quotas and their defaults: Microsoft Learn, "Quotas for Windows Remote Management"
    # (https://learn.microsoft.com/en-us/windows/win32/winrm/quotas).
    "shells_quota_exhausted": Wording(
        Layer.WSMAN,
        "the host refused another shell: ansible_user has MaxShellsPerUser shells open",
        "close other sessions of ansible_user (shells a failed run left end at the host's "
        "Winrs IdleTimeout) or raise MaxShellsPerUser (winrm/config/winrs) on the host",
    ),
    "operations_quota_exhausted": Wording(
        Layer.WSMAN,
        "the host refused another operation: ansible_user is at MaxConcurrentOperationsPerUser",
        "raise MaxConcurrentOperationsPerUser (winrm/config/service) on the host, or close "
        "other sessions of ansible_user",
    ),
    # WSManFault 2150858843 (ERROR_WSMAN_SHELL_NOT_FOUND) to a request of a task's shell or
    # pool: a WinRM restart or a reboot ends every shell and pool (docs/winhost-behaviours.md),
    # as do the host's idle timeout and shell limits. Windows' own text ("create a new shell")
    # speaks to the program that made the shell, not to the user.
    "shell_gone": Wording(
        Layer.WSMAN,
        "the host no longer has the shell the task ran in",
        "the WinRM service restarted or the host rebooted while the task ran (or an idle timeout "
        "or shell limit ended the shell); whether its command finished is unknown, so it was not "
        "run again: check the host, then rerun the task (reboot with ansible.windows.win_reboot, "
        "which reconnects)",
        summary_by_plugin={
            "psrp": "the host no longer has the runspace pool the task ran in",
        },
    ),
    # A connection failure of a task whose session was working: the connect-time advice
    # (listener, port, firewall) would be wrong; {cause} is that diagnosis' summary.
    "broke_during_task": Wording(
        Layer.TCP,
        "the connection broke while the task ran: {cause}",
        "the WinRM service may have restarted or the host rebooted (reboot with "
        "ansible.windows.win_reboot, which reconnects), or a network device dropped the "
        "connection; whether the host ran what the task sent is unknown, so it was not sent "
        "again: check the host, then rerun the task",
    ),
    # An error of no known kind during a task: not necessarily the connection's; {cause} is
    # the unexpected diagnosis' summary.
    "unexpected_during_task": Wording(
        Layer.WSMAN,
        "{cause} while the task ran",
        "rerun with -vvvvv for the details; whether the host ran what the task sent is "
        "unknown, so it was not sent again: check the host before you rerun the task",
    ),
    "quota_exhausted": Wording(
        Layer.WSMAN,
        "the host refused the request: a WinRM quota is exhausted",
        "read the fault reason for the quota it names; WinRM's quotas are set under "
        "winrm/config/service and winrm/config/winrs on the host",
    ),
    "wsman_fault": Wording(
        Layer.WSMAN,
        "the host answered with a WS-Management fault",
        "read the fault reason; the WinRM service configuration is set by the winops.remoting "
        "roles",
    ),
    "transfer_failed": Wording(
        Layer.TRANSFER,
        "a file transfer failed",
        "check the remote path and free space; {v.max_envelope} sizes the chunks",
        fix_by_plugin={"ansible.builtin.winrm": "check the remote path and free space"},
    ),
    "unexpected": Wording(
        Layer.WSMAN,
        "unexpected {error_type}",
        "check ansible_host, ansible_port and {v.auth}; rerun with -vvvvv for details",
    ),
    # -- Kerberos: the service ticket and the host ------------------------------------------
    "kerberos_no_ticket": Wording(
        Layer.KERBEROS,
        "no Kerberos ticket could be obtained",
        "check ansible_user (user@REALM, realm in uppercase) and ansible_password, the realm in "
        "/etc/krb5.conf, or set {v.kinit_cmd}",
        fix_by_plugin={
            "ansible.builtin.psrp": "check ansible_user (user@REALM, realm in uppercase) and "
            "ansible_password, and the realm in /etc/krb5.conf",
        },
    ),
    "kerberos_no_context": Wording(
        Layer.KERBEROS,
        "the Kerberos security context could not be created",
        "check that the host name in ansible_host has an SPN ({v.spn_service}/<fqdn>) in the "
        "realm and that a ticket exists (klist), or set {v.hostname_override}",
    ),
    "kerberos_by_address": Wording(
        Layer.KERBEROS,
        "Kerberos needs the host's name, but ansible_host is the IP address {host}",
        "set ansible_host to the host's fully qualified name (Kerberos service principals are "
        "named after it, such as {v.spn_service}/<fqdn>), or set {v.hostname_override} to "
        "that name",
    ),
    "kerberos_unknown_service": Wording(
        Layer.KERBEROS,
        "the KDC has no service principal {spn}",
        "use the name the computer is registered under in the domain (its FQDN, not an alias or "
        "CNAME) as ansible_host or {v.hostname_override}; `setspn -L <computer>` on Windows "
        "lists its SPNs",
    ),
    "kerberos_clock_skew": Wording(
        Layer.KERBEROS,
        "the clocks of the host and the controller differ by more than Kerberos allows",
        "synchronise both clocks with the domain's time source (NTP on the controller, "
        "w32time on the host)",
    ),
    # KRB5KRB_AP_ERR_TKT_EXPIRED: the ticket-granting ticket the service ticket was asked with
    # has expired; in managed mode the plugins renew theirs, so it is the user's own cache.
    "kerberos_ticket_expired": Wording(
        Layer.KERBEROS,
        "the Kerberos ticket in use has expired",
        "run kinit user@REALM again (klist shows when the ticket ends; manual mode uses the "
        "default cache), or give ansible_password so the plugin gets and renews its tickets "
        "itself (managed mode)",
    ),
    "kerberos_no_realm": Wording(
        Layer.KERBEROS,
        "no Kerberos realm is known for the user",
        "set ansible_user to user@REALM (the realm in uppercase)",
    ),
    "kerberos_realm_not_configured": Wording(
        Layer.KERBEROS,
        "the Kerberos configuration does not know realm {realm}",
        "add {realm} = {{ kdc = <domain controller> }} under [realms] in {config} (or point "
        "KRB5_CONFIG at a file that has it)",
    ),
    "kerberos_kdc_unreachable": Wording(
        Layer.KERBEROS,
        "no KDC of realm {realm} can be reached",
        "check the kdc entries of {realm} in {config} and that TCP port 88 of the domain "
        "controllers is open to the controller",
    ),
    "kerberos_no_manual_ticket": Wording(
        Layer.KERBEROS,
        "no valid Kerberos ticket for manual mode",
        "run kinit user@REALM before the play, or give ansible_password so the plugin gets the "
        "ticket itself (managed mode)",
    ),
    "kerberos_cache_other_principal": Wording(
        Layer.KERBEROS,
        "the ticket cache holds a ticket for {cached}, not for {wanted}",
        "kdestroy, then kinit {wanted} (manual mode uses the default cache klist shows); if "
        "kinit -C {wanted} also ends in a ticket of another realm (klist), krb5.conf names the "
        "domain by an alias: write the realm klist shows in [realms], [domain_realm] and "
        "ansible_user",
    ),
    "kerberos_tgt_not_forwardable": Wording(
        Layer.KERBEROS,
        "Kerberos delegation is requested, but the ticket of {principal} is not forwardable",
        "kdestroy, then kinit -f {principal} (or forwardable = true under [libdefaults] in "
        "krb5.conf), or give ansible_password so the plugin gets a forwardable ticket itself",
    ),
    # -- Kerberos: getting the ticket-granting ticket (kinit or the krb5 library) -------------
    "kinit_unknown_principal": Wording(
        Layer.KERBEROS,
        "the KDC does not know the principal {principal}",
        "check the user name (ansible_user / remote_user) and its realm: the part after @ must "
        "be the Kerberos realm (the AD domain in upper case)",
    ),
    "kinit_bad_password": Wording(
        Layer.KERBEROS,
        "the KDC refused the password for {principal}",
        "check ansible_password (remote_password) for this user; watch for a vault or variable "
        "that supplies a stale password",
    ),
    "kinit_clock_skew": Wording(
        Layer.KERBEROS,
        "the controller's clock and the KDC's clock differ by more than the allowed skew "
        "(5 minutes by default)",
        "synchronise the controller's clock with the domain (chrony/ntpd against the domain "
        "controllers); Kerberos refuses tickets across a larger difference",
    ),
    "kinit_no_kdc_for_realm": Wording(
        Layer.KERBEROS,
        "the Kerberos configuration has no KDC for realm {realm}",
        "add the realm to krb5.conf ([realms] {realm} = {{ kdc = <domain controller> }} and "
        "[domain_realm]) in the file KRB5_CONFIG names ({config}), or enable dns_lookup_kdc; "
        "realms are case-sensitive and an AD realm is upper case",
    ),
    "kinit_kdc_silent": Wording(
        Layer.KERBEROS,
        "no KDC of realm {realm} answered",
        "check the kdc entries of realm {realm} in {config}, that the domain controller is up, "
        "and that the controller reaches it on port 88 (TCP and UDP)",
    ),
    "kinit_account_revoked": Wording(
        Layer.KERBEROS,
        "the account {principal} is disabled or locked out",
        "unlock or enable the account in the domain",
    ),
    "kinit_password_expired": Wording(
        Layer.KERBEROS,
        "the password of {principal} has expired",
        "change the account's password in the domain and update ansible_password",
    ),
    "kinit_failed": Wording(
        Layer.KERBEROS,
        "the KDC or kinit refused the request",
        "check ansible_user (user@REALM) and ansible_password",
    ),
    "kinit_not_runnable": Wording(
        Layer.KERBEROS,
        "could not run kinit_cmd {kinit_cmd!r} for principal {principal}",
        "install the Kerberos client tools (krb5-user / krb5-workstation) or set the kinit_cmd "
        "option to its path",
    ),
    "kinit_timed_out": Wording(
        Layer.KERBEROS,
        "kinit for principal {principal} did not finish within {timeout:g} seconds",
        "check that the KDC answers",
    ),
    "ticket_store_unsafe": Wording(
        Layer.KERBEROS,
        "refusing to keep tickets in {path}: it must be a directory owned by uid {uid} with "
        "mode 0700",
        "remove it, or set TMPDIR to a private directory",
    ),
}


BUILTIN_PLUGINS = ("ansible.builtin.winrm", "ansible.builtin.psrp")


def _kind(plugin: str) -> str:
    return "psrp" if "psrp" in plugin.lower() else "winrm"


def _plugin_key(plugin: str) -> str:
    """The row of _PLUGIN_VARS: a builtin plugin's own when it is named, else our plugin's."""
    builtin = f"ansible.builtin.{_kind(plugin)}"
    return builtin if plugin.lower() == builtin else _kind(plugin)


def _for_plugin(by_plugin: t.Mapping[str, str], plugin_key: str, default: str) -> str:
    return by_plugin.get(plugin_key, by_plugin.get(_kind(plugin_key), default))


def variable_names(plugin: str) -> PluginVars:
    """The inventory variables of ``plugin`` that fixes name: winrm or psrp (ours, under any
    name), or ansible.builtin.winrm or ansible.builtin.psrp."""
    return _PLUGIN_VARS[_plugin_key(plugin)]


def describe(key: str, plugin: str, evidence: str, **values: t.Any) -> Diagnosis:
    """The diagnosis ``key`` of WORDING for ``plugin``, with ``values`` in its templates."""
    plugin_key = _plugin_key(plugin)
    wording = WORDING[key]
    names = _PLUGIN_VARS[plugin_key]
    summary = _for_plugin(wording.summary_by_plugin, plugin_key, wording.summary)
    fix = _for_plugin(wording.fix_by_plugin, plugin_key, wording.fix)
    collection_plugin = f"winops.remoting.{_kind(plugin_key)}"
    return Diagnosis(
        wording.layer,
        summary.format(v=names, collection_plugin=collection_plugin, **values),
        evidence,
        fix.format(v=names, collection_plugin=collection_plugin, **values),
        key,
    )


# Windows lists certificate authentication in WWW-Authenticate by its WS-Management security
# profile, while Service\Auth\Certificate is true (MS-WSMV 3.1.4.1.29.2; a real header in
# requests-credssp#29: "Negotiate, Kerberos, http://schemas.dmtf.org/wbem/wsman/1/wsman/
# secprofile/https/mutual, Basic realm="WSMAN", CredSSP").
CERTIFICATE_SCHEME = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
# Which WWW-Authenticate scheme (lower case) each authentication method needs from the listener.
_TRANSPORT_SCHEMES = {
    "basic": ("basic",),
    "certificate": (CERTIFICATE_SCHEME,),
    "ntlm": ("negotiate", "ntlm"),
    "negotiate": ("negotiate",),
    "kerberos": ("kerberos", "negotiate"),
    "credssp": ("credssp",),
}
# How MIT, Heimdal and Windows say that the KDC has no principal for the service asked for.
UNKNOWN_SERVICE = re.compile(r"not found in Kerberos database|S_PRINCIPAL_UNKNOWN", re.I)
# The message patterns of MIT and Heimdal Kerberos, from kinit, the krb5 library or GSSAPI, and
# the wording row each one selects. The same words reach pywinrm's KerberosExchangeError
# ("authGSSClientStep() failed: ... ('Clock skew too great', -1765328347)") and pyspnego's
# GSSError when a service ticket is asked for.
_KERBEROS_MESSAGES = (
    (re.compile(r"Client .* not found in Kerberos database|CLIENT_NOT_FOUND", re.I),
     "kinit_unknown_principal"),
    (re.compile(r"Password incorrect|Preauthentication failed|Integrity check", re.I),
     "kinit_bad_password"),
    (re.compile(r"Clock skew too great", re.I), "kinit_clock_skew"),
    (re.compile(r"Cannot find KDC for realm|Cannot resolve network address for KDC", re.I),
     "kinit_no_kdc_for_realm"),
    (re.compile(r"Cannot contact any KDC", re.I), "kinit_kdc_silent"),
    (re.compile(r"credentials have been revoked|Clients credentials have been revoked", re.I),
     "kinit_account_revoked"),
    (re.compile(r"Password has expired", re.I), "kinit_password_expired"),
    (re.compile(r"Ticket expired", re.I), "kerberos_ticket_expired"),
)  # fmt: skip
# The rows of those that also explain a failed service ticket request: they name no
# principal, realm or configuration file, which a connection's error does not carry.
SERVICE_TICKET_KEYS = frozenset(("kinit_clock_skew", "kerberos_ticket_expired"))


def kerberos_message_key(message: str) -> str | None:
    """The wording row for a Kerberos library's or kinit's message, None when none fits."""
    return next((key for pattern, key in _KERBEROS_MESSAGES if pattern.search(message)), None)


# Transports whose security context encrypts WinRM messages over plain HTTP.
ENCRYPTING_TRANSPORTS = frozenset(("ntlm", "negotiate", "kerberos", "credssp"))
# How each method is switched on: its name in winrm_auth_methods of the winrm_auth role (NTLM
# rides on Negotiate), or CredSSP's own role, which also sets up the delegation it is for.
_ENABLING = {
    "basic": "add basic to winrm_auth_methods of the winops.remoting.winrm_auth role",
    "certificate": "add certificate to winrm_auth_methods of the winops.remoting.winrm_auth role",
    "ntlm": "add negotiate to winrm_auth_methods of the winops.remoting.winrm_auth role",
    "negotiate": "add negotiate to winrm_auth_methods of the winops.remoting.winrm_auth role",
    "kerberos": "add kerberos to winrm_auth_methods of the winops.remoting.winrm_auth role",
    "credssp": "credssp_delegation_server: true of the winops.remoting.credssp_delegation role",
}
# Over plain http Basic sends the password readable, so the service takes it only with
# AllowUnencrypted, which the winrm_auth role refuses together with Basic: https comes first.
_BASIC_OVER_HTTP = (
    "over https only: Basic over http would need AllowUnencrypted, which the winrm_auth role "
    "refuses with it; move to https with the winops.remoting.setup playbook, then add basic "
    "to winrm_auth_methods of the winops.remoting.winrm_auth role"
)
# And the transports a scheme the listener offers makes possible, for the fix hint.
_SCHEME_TRANSPORTS = {
    "basic": "basic",
    CERTIFICATE_SCHEME: "certificate",
    "negotiate": "negotiate or ntlm",
    "kerberos": "kerberos",
    "credssp": "credssp",
}
# pywinrm has no negotiate transport (winrm.FEATURE_SUPPORTED_AUTHTYPES), so
# ansible.builtin.winrm refuses ansible_winrm_transport: negotiate; NTLM rides on Negotiate.
_BUILTIN_WINRM_SCHEME_TRANSPORTS = {**_SCHEME_TRANSPORTS, "negotiate": "ntlm"}


def closed_connection(endpoint: Endpoint, plugin: str, evidence: str) -> Diagnosis:
    """The host accepted the TCP connection and closed it without answering."""
    return describe("closed_connection", plugin, evidence, port=endpoint.port)


def certificate_problem(verify_message: str, endpoint: Endpoint, plugin: str) -> Diagnosis:
    """Why certificate validation failed, from OpenSSL's verify message."""
    evidence = f"certificate verify failed: {verify_message}"
    lowered = verify_message.lower()
    if "expired" in lowered:
        key = "certificate_expired"
    elif "not yet valid" in lowered:
        key = "certificate_not_yet_valid"
    elif "mismatch" in lowered or "not valid for" in lowered:
        key = "certificate_wrong_name"
    else:
        key = "certificate_untrusted"
    return describe(key, plugin, evidence, host=endpoint.host)


def auth_not_offered(
    transport: str,
    offered: t.Sequence[str],
    plugin: str,
    evidence: str,
    *,
    over_http: bool = False,
) -> Diagnosis | None:
    """The diagnosis when the listener offers none of the schemes ``transport`` needs.

    ``transport`` is the method the host sees (``ConnectionSettings.auth_method``: basic or
    certificate, never pywinrm's legacy ssl or plaintext). None when the listener offers one
    of its schemes, or when nothing is known (no schemes, or a method not listed above).
    ``over_http``: the connection uses plain http, where Basic would also need the host's
    AllowUnencrypted, which the winrm_auth role refuses together with Basic.
    """
    names = variable_names(plugin)
    needed = _TRANSPORT_SCHEMES.get(transport, ())
    offered_lower = [scheme.lower() for scheme in offered]
    if not offered or not needed or any(scheme in offered_lower for scheme in needed):
        return None
    transports = (
        _BUILTIN_WINRM_SCHEME_TRANSPORTS
        if _plugin_key(plugin) == "ansible.builtin.winrm"
        else _SCHEME_TRANSPORTS
    )
    usable = [transports[s] for s in offered_lower if s in transports]
    choice = f"set {names.auth} to {' or '.join(usable)}, or " if usable else ""
    return describe(
        "auth_not_offered",
        plugin,
        evidence,
        method=transport,
        choice=choice,
        enabling=_BASIC_OVER_HTTP if over_http and transport == "basic" else _ENABLING[transport],
    )


def kerberos_by_address(endpoint: Endpoint, plugin: str, evidence: str) -> Diagnosis:
    """Kerberos asked for a service principal named after an IP address, which no KDC holds."""
    return describe("kerberos_by_address", plugin, evidence, host=endpoint.host)


def kerberos_unknown_service(spn: str, plugin: str, evidence: str) -> Diagnosis:
    """The KDC holds no service principal for the host name Kerberos asked for (an alias,
    a CNAME, a name the computer is not registered under)."""
    return describe("kerberos_unknown_service", plugin, evidence, spn=spn)


def unencrypted_refused(transport: str, plugin: str, evidence: str) -> Diagnosis:
    """The host refused a plain (unencrypted) message over HTTP: AllowUnencrypted is off."""
    names = variable_names(plugin)
    if transport in ENCRYPTING_TRANSPORTS:
        change = (
            f"set {names.encryption}: auto ({transport} encrypts messages over http), or use "
            f"https ({names.scheme}: https, ansible_port: 5986)"
        )
    else:
        change = (
            f"use https ({names.scheme}: https, ansible_port: 5986), or set {names.auth} to "
            "ntlm, kerberos or credssp, which encrypt messages over http"
        )
    return describe("unencrypted_refused", plugin, evidence, change=change)


# MIT, Heimdal and Windows accept Kerberos messages whose times differ from theirs by this much.
MAX_KERBEROS_CLOCK_SKEW = datetime.timedelta(minutes=5)


def host_clock_evidence(host_date: datetime.datetime, skew: datetime.timedelta) -> str:
    """What the host's HTTP Date says about its clock."""
    return (
        f"the host's HTTP Date is {host_date:%Y-%m-%d %H:%M:%S} UTC, "
        f"{skew.total_seconds():+.0f} s from the controller"
    )


def kerberos_clock_skew(
    host_date: datetime.datetime, skew: datetime.timedelta, plugin: str = "winrm"
) -> Diagnosis:
    """The host's clock (its HTTP Date) is further from the controller's than Kerberos allows."""
    evidence = (
        f"{host_clock_evidence(host_date, skew)} "
        f"(allowed: {MAX_KERBEROS_CLOCK_SKEW.total_seconds():.0f} s)"
    )
    return describe("kerberos_clock_skew", plugin, evidence)
