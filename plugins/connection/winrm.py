# Copyright (c) winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The winops.remoting.winrm connection plugin: Ansible glue over the WinRM session layer."""

from __future__ import annotations

DOCUMENTATION = r"""
name: winrm
short_description: Run tasks on Windows hosts over WinRM (WinRS shells through pywinrm)
description:
  - Runs commands and transfers files on a Windows host through the WinRM service, using a
    WinRS command shell and the C(pywinrm) library.
  - A drop-in replacement for P(ansible.builtin.winrm#connection); it reads the same
    C(ansible_winrm_*) variables. The differences are listed in the collection's
    C(docs/porting-winrm.md).
  - Any other variable named C(ansible_winrm_<argument>), where C(<argument>) is an argument of
    C(winrm.protocol.Protocol) in the installed pywinrm (for example C(ansible_winrm_keytab)),
    is handed to pywinrm unchanged, as P(ansible.builtin.winrm#connection) does. Other
    C(ansible_winrm_*) names are reported with a warning and ignored.
  - Every value is checked before the first request; a bad one fails the task with a message
    naming the variable, the value and what is accepted.
author: winops.remoting contributors (@winops)
version_added: 0.1.0
requirements:
  - pywinrm >= 0.5.0 (python library), with pyspnego; pykerberos (pywinrm[kerberos]) for Kerberos;
    requests-credssp for CredSSP
  - urllib3 >= 2.0.7 and not 2.1.x for certificate authentication over TLS 1.3
extends_documentation_fragment:
  - connection_pipelining
options:
  # -- where to connect ---------------------------------------------------------------------
  remote_addr:
    description:
      - Address of the Windows host, a name or an IP address. IPv6 addresses are accepted
        with or without brackets.
    default: inventory_hostname
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_winrm_host
  port:
    description:
      - TCP port of the WinRM listener.
      - Defaults to V(5985) when O(scheme=http) and to V(5986) otherwise.
      - An integer between 1 and 65535.
    type: int
    vars:
      - name: ansible_port
      - name: ansible_winrm_port
    keyword:
      - name: port
  scheme:
    description:
      - URI scheme of the listener, V(http) or V(https).
      - When unset, V(http) if O(port) is V(5985) and V(https) otherwise.
    type: str
    choices:
      - http
      - https
    vars:
      - name: ansible_winrm_scheme
  path:
    description:
      - URI path of the WinRM endpoint.
    default: /wsman
    type: str
    vars:
      - name: ansible_winrm_path

  # -- who to be ----------------------------------------------------------------------------
  remote_user:
    description:
      - The user to log in as.
      - A user principal name (V(user@REALM)) selects Kerberos when O(transport) is not set and
        Kerberos is available on the controller (pykerberos installed, which pywinrm's Kerberos transport needs); otherwise Basic is
        used.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_winrm_user
    keyword:
      - name: remote_user
  remote_password:
    description:
      - Password of O(remote_user); also what managed Kerberos gives to C(kinit).
      - Can be supplied with C(--ask-pass). Never shown in output at any verbosity.
    type: str
    aliases:
      - password
    vars:
      - name: ansible_password
      - name: ansible_winrm_pass
      - name: ansible_winrm_password
  transport:
    description:
      - Authentication protocol, or a comma separated list of them tried in order until one
        opens a shell.
      - One or more of V(basic), V(certificate), V(credssp), V(kerberos), V(negotiate),
        V(ntlm), and the legacy pywinrm names V(plaintext) (Basic over http) and V(ssl) (Basic
        over https, or certificate authentication when O(cert_pem) is set).
      - V(negotiate) tries Kerberos and then NTLM, as Windows' Negotiate does (pywinrm itself
        has no such transport). Kerberos is tried when pykerberos is installed and
        O(remote_user) is a UPN, O(realm) is set or O(kerberos_mode=manual).
      - When unset, V(kerberos) for a UPN O(remote_user) if Kerberos is available, otherwise
        V(ssl) over https and V(plaintext) over http.
    type: list
    elements: str
    choices:
      - basic
      - certificate
      - credssp
      - kerberos
      - negotiate
      - ntlm
      - plaintext
      - ssl
    vars:
      - name: ansible_winrm_transport
  realm:
    description:
      - Kerberos realm. When O(remote_user) has no C(@REALM) part, managed Kerberos asks
        C(kinit) for a ticket for C(user@realm).
      - Also handed to pywinrm, which ignores it.
    type: str
    vars:
      - name: ansible_winrm_realm
  cert_pem:
    description:
      - Path of the client certificate (PEM) for O(transport=certificate). Required, and must
        exist, with that transport.
    type: path
    vars:
      - name: ansible_winrm_cert_pem
  cert_key_pem:
    description:
      - Path of the private key (PEM, unencrypted) of O(cert_pem). Required with
        O(transport=certificate).
    type: path
    vars:
      - name: ansible_winrm_cert_key_pem

  # -- TLS ----------------------------------------------------------------------------------
  server_cert_validation:
    description:
      - Whether to check the HTTPS listener's certificate, V(validate) or V(ignore).
      - Use V(ignore) only for a self-signed certificate in a lab; better trust its issuer with
        O(ca_trust_path).
    default: validate
    type: str
    choices:
      - validate
      - ignore
    vars:
      - name: ansible_winrm_server_cert_validation
    env:
      - name: ANSIBLE_WINRM_SERVER_CERT_VALIDATION
    ini:
      - section: winrm
        key: server_cert_validation
  ca_trust_path:
    description:
      - PEM bundle file (or OpenSSL-hashed certificate directory) of the certificate
        authorities to trust for the HTTPS listener, instead of the certifi bundle.
      - When unset, pywinrm falls back to the C(REQUESTS_CA_BUNDLE) and C(CURL_CA_BUNDLE)
        environment variables.
    type: str
    vars:
      - name: ansible_winrm_ca_trust_path
    env:
      - name: ANSIBLE_WINRM_CA_TRUST_PATH
    ini:
      - section: winrm
        key: ca_trust_path
  send_cbt:
    description:
      - Send channel binding tokens with NTLM and Kerberos over HTTPS (protects against
        man-in-the-middle relaying; hosts with C(CbtHardeningLevel=Strict) require them).
    default: true
    type: bool
    vars:
      - name: ansible_winrm_send_cbt
  message_encryption:
    description:
      - WinRM message encryption by the authentication protocol, on top of or instead of TLS.
      - V(auto) encrypts over http when O(transport) can (V(ntlm), V(kerberos), V(credssp)),
        V(always) encrypts even over https, V(never) never does (the host must then allow
        unencrypted traffic over http).
    default: auto
    type: str
    choices:
      - auto
      - always
      - never
    vars:
      - name: ansible_winrm_message_encryption
    env:
      - name: ANSIBLE_WINRM_MESSAGE_ENCRYPTION
    ini:
      - section: winrm
        key: message_encryption
  credssp_disable_tlsv1_2:
    description:
      - Do not use TLS 1.2 inside the CredSSP exchange, for hosts that lack it (Server 2008).
    default: false
    type: bool
    vars:
      - name: ansible_winrm_credssp_disable_tlsv1_2
  proxy:
    description:
      - URL of an HTTP proxy for the WinRM requests.
      - When unset, pywinrm uses the C(HTTP_PROXY)/C(HTTPS_PROXY)/C(NO_PROXY) environment
        variables.
    type: str
    vars:
      - name: ansible_winrm_proxy
  no_proxy:
    description:
      - Ignore every proxy, including those of the environment variables (pywinrm's
        C(proxy=None)).
    default: false
    type: bool
    vars:
      - name: ansible_winrm_no_proxy

  # -- Kerberos -----------------------------------------------------------------------------
  kerberos_mode:
    description:
      - V(managed) gets a ticket for O(remote_user) with O(remote_password), in-process with
        the C(krb5) Python library when it is installed and O(kerberos_command) and
        O(kinit_args) are left unset, else with O(kerberos_command). The ticket is shared by
        every task and host of the run that asks for the same principal with the same
        delegation and kinit settings, kept in a private directory of the run until
        C(ansible-playbook) ends, and replaced shortly before it expires. While it is valid, a
        different password given for the same principal later in the run is not used.
      - V(manual) uses the ticket cache the user already has (C(KRB5CCNAME) or the default
        one).
      - When unset, managed if O(transport) includes V(kerberos) and a password is set.
    type: str
    choices:
      - managed
      - manual
    vars:
      - name: ansible_winrm_kinit_mode
  kerberos_command:
    description:
      - The C(kinit) program used by managed Kerberos. Any other value than V(kinit) makes the
        plugin run it instead of getting the ticket with the C(krb5) Python library.
    default: kinit
    type: str
    vars:
      - name: ansible_winrm_kinit_cmd
    env:
      - name: ANSIBLE_WINRM_KINIT_CMD
    ini:
      - section: winrm
        key: kinit_cmd
  kinit_args:
    description:
      - Arguments for C(kinit), shell-quoted in one string. They replace the default
        arguments, including the C(-f) that O(kerberos_delegation) adds.
    type: str
    vars:
      - name: ansible_winrm_kinit_args
  kinit_env_vars:
    description:
      - Names of controller environment variables passed on to C(kinit) (for example
        C(KRB5_CONFIG)); by default it gets only C(PATH) and its private C(KRB5CCNAME), which
        cannot be named here.
    default: []
    type: list
    elements: str
    vars:
      - name: ansible_winrm_kinit_env_vars
    env:
      - name: ANSIBLE_WINRM_KINIT_ENV_VARS
    ini:
      - section: winrm
        key: kinit_env_vars
  kerberos_delegation:
    description:
      - Delegate the Kerberos ticket to the host so that it can reach other hosts (the
        double hop); managed Kerberos then asks C(kinit) for a forwardable ticket (C(-f)).
    default: false
    type: bool
    vars:
      - name: ansible_winrm_kerberos_delegation
  kerberos_hostname_override:
    description:
      - Host name to build the Kerberos service principal from instead of O(remote_addr), for
        example when connecting through an IP address or a CNAME.
    type: str
    vars:
      - name: ansible_winrm_kerberos_hostname_override
  service:
    description:
      - Service class of the Kerberos service principal (C(<service>/<host>)).
    default: HTTP
    type: str
    vars:
      - name: ansible_winrm_service

  # -- timeouts and robustness --------------------------------------------------------------
  operation_timeout_sec:
    description:
      - WSMan OperationTimeout in seconds, how long the host holds a request (most of all a
        Receive waiting for output) before answering with a timeout fault, which the plugin
        treats as "no output yet".
      - Must be lower than O(read_timeout_sec).
    default: 20
    type: int
    vars:
      - name: ansible_winrm_operation_timeout_sec
    env:
      - name: ANSIBLE_WINRM_OPERATION_TIMEOUT_SEC
    ini:
      - section: winrm
        key: operation_timeout_sec
  read_timeout_sec:
    description:
      - HTTP read timeout in seconds on the controller. Must be greater than
        O(operation_timeout_sec).
    default: 30
    type: int
    vars:
      - name: ansible_winrm_read_timeout_sec
    env:
      - name: ANSIBLE_WINRM_READ_TIMEOUT_SEC
    ini:
      - section: winrm
        key: read_timeout_sec
  connection_timeout:
    description:
      - Sets both timeouts at once, overriding them, O(operation_timeout_sec) to this value and
        O(read_timeout_sec) to this value plus 10.
      - Used by C(win_reboot) while it waits for a host to come back.
      - An integer of seconds; V(0) sets neither, as with P(ansible.builtin.winrm#connection).
    type: int
    vars:
      - name: ansible_winrm_connection_timeout
  command_timeout:
    description:
      - Longest time in seconds a single command may run. When it passes, the command is
        stopped on the host with a WinRS terminate signal and the task fails. V(0) means no
        limit; fractions of a second are allowed.
      - The task keyword C(timeout) also stops the remote command the same way.
    default: 0
    type: float
    vars:
      - name: ansible_winrm_command_timeout
    env:
      - name: ANSIBLE_WINRM_COMMAND_TIMEOUT
    ini:
      - section: winrm
        key: command_timeout
  session_persist:
    description:
      - Keep the authenticated connection and the WinRS shell open after a task, for the later
        tasks of the same C(ansible-playbook) run with the same host, user and connection
        options (like OpenSSH's ControlPersist). A local process of the same user keeps it,
        reached through a socket in a private (0700) directory, and ends it when the run
        ends, when O(session_idle_timeout) passes without a task, or on C(reset_connection)
        and C(win_reboot). V(false) opens and closes a session in every task, as
        P(ansible.builtin.winrm#connection) does.
    default: true
    type: bool
    vars:
      - name: ansible_winrm_session_persist
    env:
      - name: WINOPS_REMOTING_SESSION_PERSIST
    ini:
      - section: winops_remoting
        key: session_persist
  session_idle_timeout:
    description:
      - Seconds a kept session (O(session_persist)) waits for the next task before it deletes
        its shell and ends.
    default: 60
    type: int
    vars:
      - name: ansible_winrm_session_idle_timeout
    env:
      - name: WINOPS_REMOTING_SESSION_IDLE_TIMEOUT
    ini:
      - section: winops_remoting
        key: session_idle_timeout
  session_max_kept:
    description:
      - At most this many sessions (O(session_persist)) are kept at once in one
        C(ansible-playbook) run, one per host, user and set of connection options. Each is kept
        by a process on the controller that holds about 25 MB of memory of its own. A task
        that would keep one more uses a session of its own instead, as with
        O(session_persist=false).
    default: 100
    type: int
    vars:
      - name: ansible_winrm_session_max_kept
    env:
      - name: WINOPS_REMOTING_SESSION_MAX_KEPT
    ini:
      - section: winops_remoting
        key: session_max_kept
  session_start_ahead:
    description:
      - With a kept session (O(session_persist)), keep two module processes
        (C(powershell.exe)) started ahead on the host. When a task that ran a module ends, the
        session starts them until two wait, and the next module task only sends its input to
        the older one. Its start-up (about 0.2 seconds on a warm Windows Server, more on a busy
        one) then overlaps the task before and the controller's work between the tasks.
      - Only the command line of Ansible's module bootstrap is started ahead. It runs no module
        code before it has read the module's code from its input (before that it only checks
        the PowerShell version and, with ansible-core 2.17, sets its console's code page), so a
        process that no task uses has run no module when the session ends and deleting the
        shell ends it.
      - Costs two idle C(powershell.exe) (each with its C(cmd.exe)) per kept session on the
        host, counted in the shell's memory and process quotas (C(MaxMemoryPerShellMB),
        C(MaxProcessesPerShell)), and two more process starts per session in the host's
        process-creation and PowerShell logs. V(false) starts each command when its task asks
        for it, as the builtin plugin does.
    default: true
    type: bool
    vars:
      - name: ansible_winrm_session_start_ahead
    env:
      - name: WINOPS_REMOTING_WINRM_START_AHEAD
    ini:
      - section: winops_remoting
        key: winrm_session_start_ahead
  reconnection_retries:
    description:
      - How many times an operation that is safe to repeat (creating or deleting the shell,
        receiving output, signalling a command) is retried after a transient failure (a
        refused or reset connection, HTTP 502/503/504, or a WSMan OperationTimeout). The start
        of a command is never repeated.
    default: 3
    type: int
    vars:
      - name: ansible_winrm_reconnection_retries
    env:
      - name: ANSIBLE_WINRM_RECONNECTION_RETRIES
    ini:
      - section: winrm
        key: reconnection_retries
  reconnection_backoff:
    description:
      - Seconds to wait before the first retry; the wait doubles for each further retry (at
        most 30 seconds).
    default: 1.0
    type: float
    vars:
      - name: ansible_winrm_reconnection_backoff
    env:
      - name: ANSIBLE_WINRM_RECONNECTION_BACKOFF
    ini:
      - section: winrm
        key: reconnection_backoff
  max_envelope_size:
    description:
      - Largest WSMan message in bytes the host accepts (its C(MaxEnvelopeSizekb) times 1024).
        File chunks and stdin blocks are sized to fit it, and no answer larger is asked for.
      - When not set, requests are sized for 512000 (C(MaxEnvelopeSizekb) 500, Windows'
        default since WinRM 3.0) and answers for 153600. If the host refuses a request as too
        large (HTTP 413, as a WinRM 2.0 host with its 150 KB does), nothing was taken, and
        it and every later one are sent in 153600-byte pieces.
      - An integer, at least 32768 (the smallest C(MaxEnvelopeSizekb) Windows accepts is 32).
    type: int
    vars:
      - name: ansible_winrm_max_envelope_size
    env:
      - name: ANSIBLE_WINRM_MAX_ENVELOPE_SIZE
    ini:
      - section: winrm
        key: max_envelope_size
"""

EXAMPLES = r"""
# Inventory (YAML): HTTPS with NTLM and a CA bundle that signed the listener's certificate
windows:
  hosts:
    win01.example.com:
  vars:
    ansible_connection: winops.remoting.winrm
    ansible_user: ansible
    ansible_password: "{{ vault_ansible_password }}"
    ansible_winrm_transport: ntlm
    ansible_winrm_ca_trust_path: /etc/pki/winrm-ca.pem

# Kerberos for a domain account, with delegation for the double hop
#   ansible_user: ansible@EXAMPLE.COM
#   ansible_winrm_kerberos_delegation: true
"""

import typing as t

from ansible.errors import AnsibleError
from ansible.utils.display import Display

# kept._run_cache comes before the rest of plugin_utils: their code then comes compiled (from
# the run's directory, else __pycache__), and from a run's second task on the options below
# come read, instead of being worked out again.
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._bytecode import (
    import_from_bytecode,
)

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _run_cache
else:  # from __pycache__: Ansible's loader would compile it from source (kept._bytecode)
    _run_cache = import_from_bytecode(
        "ansible_collections.winops.remoting.plugins.plugin_utils.kept._run_cache"
    )

# isort: split
from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._connection import (
    KeptSessionConnection,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._definitions import (
    register_option_definitions,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    WINRM_EXTRAS_PREFIX,
    OptionSource,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._typed_options import (
    TypedOptions,
)

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
        WinRMSettings,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_session import (
        WinRMSession,
    )

display = Display()
# Spares every task's worker Ansible's own parse of DOCUMENTATION (options/_definitions.py).
register_option_definitions(
    "connection", __name__, __file__, DOCUMENTATION, remember=_run_cache.remembered
)


class Connection(TypedOptions, KeptSessionConnection):
    """WinRM connection to a Windows host through a WinRS shell.

    pywinrm and the session layer are imported only when this task opens a session: a task
    whose session is kept by an earlier task's holder process (kept._slot) never loads them.
    """

    session_operations = ("execute", "put_file", "fetch_file", "start_ahead")
    transport = "winops.remoting.winrm"
    module_implementation_preferences = (".ps1", ".exe", "")
    allow_executable = False
    has_pipelining = True
    allow_extras = True
    always_pipeline_modules = True
    has_native_async = True
    _shell_type = "powershell"

    # -- options --------------------------------------------------------------------------

    def _option_source(self) -> OptionSource:
        return OptionSource(
            self.get_option,
            self.option_definitions,
            extras_prefix=WINRM_EXTRAS_PREFIX,
            var_options=self._var_options,
            task_keys=self._task_keys,
            extras=self.get_option("_extras"),
        )

    def _read_settings(self) -> WinRMSettings:
        """Validate the current options (read at connect time, so set_option() + reset works)."""
        from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
            is_upn,
        )
        from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
            build_settings,
        )
        from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
            _winrm_protocol,
        )

        settings = build_settings(
            self._option_source(),
            _winrm_protocol.protocol_parameters(),
            _winrm_protocol.kerberos_available(),
        )
        user = settings.protocol_kwargs.get("username")
        if (
            not self.get_option("transport")
            and is_upn(user)
            and "kerberos" not in settings.transports
        ):
            display.warning(
                f"{user} is a user principal name, which selects Kerberos, but pykerberos "
                "(pywinrm's Kerberos support) is not installed: using Basic authentication. "
                "Install pywinrm[kerberos] or set ansible_winrm_transport"
            )
        for name in settings.ignored_extras:
            display.warning(
                f"{name} is not an option of winops.remoting.winrm nor an argument of the "
                "installed pywinrm's Protocol; it is ignored"
            )
        return settings

    # -- output ---------------------------------------------------------------------------

    def _host(self) -> str | None:
        return self._play_context.remote_addr

    def _secrets(self) -> list[str]:
        return self._option_source().secrets()

    def _log(self, level: int, message: str) -> None:
        """Show ``message`` from -v<level> on, with every secret blanked out."""
        if display.verbosity >= level:
            display.verbose(redact(message, self._secrets()), host=self._host(), caplevel=level - 1)

    def _warn(self, message: str) -> None:
        display.warning(redact(message, self._secrets()))

    # -- connection lifecycle -------------------------------------------------------------

    def _session_log(self, message: str) -> None:
        self._log(3, message)

    def _open_own_session(self) -> WinRMSession:
        from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import (
            redacted_options,
        )
        from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
            _winrm_protocol,
            _winrm_session,
        )

        if not _winrm_protocol.HAS_WINRM:
            raise AnsibleError(
                "winops.remoting.winrm needs the pywinrm library, which failed to import: "
                f"{_winrm_protocol.WINRM_IMPORT_ERROR}"
            )
        settings = self._read_settings()
        endpoint = settings.endpoint
        self._log(
            3,
            f"ESTABLISH WINRM CONNECTION FOR USER: {settings.protocol_kwargs.get('username')}"
            f" on PORT {endpoint.port} TO {endpoint.host}",
        )
        self._log(5, f"WINRM PROTOCOL ARGUMENTS: {redacted_options(settings.protocol_kwargs)}")
        session = _winrm_session.WinRMSession(
            settings,
            log=self._log,
            warn=self._warn,
            host_idle_timeout=self._host_idle_timeout,
        )
        session.open()
        return session

    # -- commands and files ---------------------------------------------------------------

    def _command_line(self, cmd: str) -> str:
        """The WinRS command line for ``cmd``: as is when it already starts PowerShell."""
        encoded_prefix = self._shell._encode_script(
            "", as_list=False, strict_mode=False, preserve_rc=False
        )
        if cmd.startswith((encoded_prefix, "type ")):
            # Already a complete PowerShell (or pipe-into-PowerShell) command line.
            return cmd
        return self._shell._encode_script(cmd, as_list=False, strict_mode=False, preserve_rc=False)

    def _is_module_bootstrap(self, cmd: str) -> bool:
        """Whether ``cmd`` is the shell plugin's command line for a module whose code comes on
        stdin: the bootstrap runs no module code before it has read it (ansible-core's
        executor/powershell/bootstrap_wrapper.ps1: 2.19 reads up to a line of four NUL
        characters, 2.17 all of its input), so it is safe to start ahead."""
        try:
            bootstrap = self._shell.build_module_command("", "#!powershell", "")
        except Exception:
            return False
        return isinstance(bootstrap, str) and cmd == bootstrap.strip()

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = True
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        no_log = bool(self._play_context.no_log)
        self._log(3, "EXEC (via pipeline wrapper)" if in_data else "EXEC")
        if not no_log and display.verbosity >= 5:  # the repr of a whole command costs every task
            self._log(5, f"WINRM EXEC {cmd!r}")
        command_line = self._command_line(cmd)
        if in_data and self._is_module_bootstrap(cmd):
            self._next_module_ahead = (command_line,)
        rc, raw_stdout, raw_stderr = self._call("execute", command_line, in_data)
        stdout = raw_stdout.decode("utf-8", errors="surrogateescape")
        stderr = raw_stderr.decode("utf-8", errors="surrogateescape")
        if display.verbosity >= 5:  # a repr of the module's whole output costs every task
            shown = ("<censored due to no_log>", "<censored due to no_log>")
            if not no_log:
                shown = (stdout, stderr)
            self._log(5, f"WINRM RESULT rc={rc} stdout={shown[0]!r} stderr={shown[1]!r}")
        if not stderr:
            return rc, raw_stdout, raw_stderr
        from ansible_collections.winops.remoting.plugins.plugin_utils.core._clixml import (
            clean_stderr,
        )

        cleaned = clean_stderr(stderr)
        return rc, raw_stdout, cleaned.encode("utf-8", errors="surrogateescape")

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        out_path = self._shell._unquote(out_path)
        self._log(3, f'PUT "{in_path}" TO "{out_path}"')
        self._check_put_source(in_path)
        self._call("put_file", in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        in_path = self._shell._unquote(in_path)
        out_path = out_path.replace("\\", "/")
        self._log(3, f'FETCH "{in_path}" TO "{out_path}"')
        self._call("fetch_file", in_path, out_path)
