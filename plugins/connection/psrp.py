# Copyright (c) winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection plugin winops.remoting.psrp: Ansible glue around the PSRP session layer."""

from __future__ import annotations

DOCUMENTATION = r"""
name: psrp
author: winops.remoting contributors (@winops)
short_description: Run tasks on Windows hosts over PowerShell Remoting (PSRP)
description:
  - Runs commands and transfers files over the PowerShell Remoting Protocol on top of
    WS-Management, using the pypsrp library.
  - A drop-in replacement for P(ansible.builtin.psrp#connection) that reads the same
    C(ansible_psrp_*) variables. The differences (retry defaults, stricter validation,
    managed Kerberos, a command time limit) are listed in the collection's docs/porting-psrp.md.
  - Every option is checked before the first byte goes to the host; a bad value stops the
    task with a message naming the variable, its value and what is allowed.
version_added: 0.1.0
requirements:
  - pypsrp >= 0.9.0, < 1.0.0 (C(pypsrp[credssp]) for CredSSP, C(pypsrp[kerberos]) for Kerberos);
    the plugin uses the 0.x API
  - urllib3 >= 2.0.7 and not 2.1.x for certificate authentication over TLS 1.3
extends_documentation_fragment:
  - connection_pipelining
notes:
  - Integer, number, boolean and choice options accept the native value or its string form
    (V(20) or C("20"), V(true) or C(yes)), and choices in any case. The plugin checks them
    itself before Ansible converts them, so that a mistake such as C(maybe) for a boolean is
    refused, naming the variable, instead of being read as false.
  - Extra C(ansible_psrp_<name>) variables are passed to C(pypsrp.wsman.WSMan) as keyword
    C(<name>) when the installed pypsrp accepts such an argument and no option here sets it
    (with pypsrp 0.9 that is C(locale) and C(data_locale)); any other C(ansible_psrp_*)
    variable that is not an option draws a warning and is ignored.
options:
  # --- where to connect ---------------------------------------------------------------------
  remote_addr:
    description:
      - Host name or IP address of the Windows host. IPv6 addresses may be written with or
        without brackets.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_psrp_host
  port:
    description:
      - TCP port of the WinRM listener, an integer from 1 to 65535.
      - Without it the port follows O(protocol) (V(5986) for https, V(5985) for http), and
        without either the connection is https on 5986.
    type: int
    vars:
      - name: ansible_port
      - name: ansible_psrp_port
    keyword:
      - name: port
  protocol:
    description:
      - V(http) or V(https).
      - Without it the protocol is V(http) when O(port) is V(5985) and V(https) otherwise.
    type: str
    choices:
      - http
      - https
    vars:
      - name: ansible_psrp_protocol
  path:
    description:
      - URL path of the WinRM listener. A leading slash is ignored.
    type: str
    default: wsman
    vars:
      - name: ansible_psrp_path
  configuration_name:
    description:
      - PowerShell session configuration (endpoint) to open the runspace pool in, for example
        one registered with C(Register-PSSessionConfiguration) to run as a virtual account or to
        keep transcripts.
      - Modules run as PowerShell scripts inside that runspace, so the configuration must use
        the C(FullLanguage) mode. A Just Enough Administration (JEA) endpoint, or any
        configuration in C(NoLanguage) or C(RestrictedLanguage) mode, cannot run Ansible
        modules.
    type: str
    default: Microsoft.PowerShell
    vars:
      - name: ansible_psrp_configuration_name
  proxy:
    description:
      - URL of an HTTP proxy to reach the host through, for example V(http://proxy:3128).
    type: str
    vars:
      - name: ansible_psrp_proxy
  ignore_proxy:
    description:
      - Ignore the C(http_proxy)/C(https_proxy)/C(no_proxy) environment of the controller
        and connect directly. Has no effect when O(proxy) is set.
      - A boolean.
    type: bool
    default: false
    vars:
      - name: ansible_psrp_ignore_proxy

  # --- who connects and how -----------------------------------------------------------------
  remote_user:
    description:
      - The account to log on with. For Kerberos use the principal form C(user@REALM); with
        V(negotiate) a principal name makes Kerberos the first choice.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_psrp_user
    keyword:
      - name: remote_user
  remote_password:
    description:
      - Password of O(remote_user). Never written to any output, log, argv or environment.
    type: str
    vars:
      - name: ansible_password
      - name: ansible_winrm_pass
      - name: ansible_winrm_password
    aliases:
      - password
  auth:
    description:
      - Authentication protocol, one of V(basic), V(certificate), V(negotiate), V(kerberos),
        V(ntlm) or V(credssp).
      - V(negotiate) tries Kerberos and falls back to NTLM.
      - V(basic) works with local accounts only and, like V(certificate), cannot encrypt
        messages, so it needs https (or O(message_encryption=never) on a lab host).
    type: str
    choices:
      - basic
      - certificate
      - negotiate
      - kerberos
      - ntlm
      - credssp
    default: negotiate
    vars:
      - name: ansible_psrp_auth
  message_encryption:
    description:
      - Message-level encryption of the WSMan payload by the authentication protocol, apart
        from TLS. One of V(auto), V(always) or V(never).
      - V(auto) encrypts over http only; V(always) encrypts over https too; V(never) sends
        plain messages over http, which a default Windows host refuses.
      - Only V(negotiate), V(kerberos), V(ntlm) and V(credssp) can encrypt messages.
    type: str
    choices:
      - auto
      - always
      - never
    default: auto
    vars:
      - name: ansible_psrp_message_encryption
  cert_validation:
    description:
      - V(validate) checks the host's TLS certificate against O(ca_cert) or the default CA
        bundle; V(ignore) does not check it at all.
    type: str
    choices:
      - validate
      - ignore
    default: validate
    vars:
      - name: ansible_psrp_cert_validation
  ca_cert:
    description:
      - PEM file (or c_rehash'ed directory) of CA certificates to validate the host's TLS
        certificate with. Must exist when used over https; ignored with
        O(cert_validation=ignore).
    type: path
    aliases:
      - cert_trust_path
    vars:
      - name: ansible_psrp_cert_trust_path
      - name: ansible_psrp_ca_cert
  certificate_pem:
    description:
      - Client certificate (PEM) for O(auth=certificate). Required with that auth; the file
        must exist.
    type: path
    vars:
      - name: ansible_psrp_certificate_pem
  certificate_key_pem:
    description:
      - Private key (PEM) of O(certificate_pem). Required with O(auth=certificate); the file
        must exist.
    type: path
    vars:
      - name: ansible_psrp_certificate_key_pem
  certificate_key_password:
    description:
      - Password of an encrypted O(certificate_key_pem). Never displayed.
    type: str
    vars:
      - name: ansible_psrp_certificate_key_password
  credssp_auth_mechanism:
    description:
      - What CredSSP authenticates with inside its TLS channel, one of V(auto) (Kerberos, then
        NTLM), V(kerberos) or V(ntlm).
    type: str
    choices:
      - auto
      - kerberos
      - ntlm
    default: auto
    vars:
      - name: ansible_psrp_credssp_auth_mechanism
  credssp_disable_tlsv1_2:
    description:
      - Use TLS 1.0 instead of 1.2 for the CredSSP channel. Only for hosts that lack TLS 1.2.
      - A boolean.
    type: bool
    default: false
    vars:
      - name: ansible_psrp_credssp_disable_tlsv1_2
  credssp_minimum_version:
    description:
      - Lowest CredSSP protocol version the host may answer with; V(5) or more refuses hosts
        unpatched for CVE-2018-0886.
      - An integer, at least 1.
    type: int
    default: 2
    vars:
      - name: ansible_psrp_credssp_minimum_version
  negotiate_send_cbt:
    description:
      - Bind the authentication to the TLS channel (Channel Binding Token) over https, as
        Windows expects when CbtHardeningLevel is Strict.
      - A boolean.
    type: bool
    default: true
    vars:
      - name: ansible_psrp_negotiate_send_cbt
  negotiate_delegate:
    description:
      - Ask Kerberos for a forwardable ticket and delegate it, so the task can reach other
        hosts as the user (the double hop). No effect when NTLM is used.
      - A boolean. With managed Kerberos it also makes C(kinit) request a forwardable ticket.
    type: bool
    vars:
      - name: ansible_psrp_negotiate_delegate
  negotiate_hostname_override:
    description:
      - Host name to build the Kerberos service principal from, when connecting by IP address
        or by a name that is not the host's own.
    type: str
    vars:
      - name: ansible_psrp_negotiate_hostname_override
  negotiate_service:
    description:
      - Service part of the Kerberos service principal name.
    type: str
    default: WSMAN
    vars:
      - name: ansible_psrp_negotiate_service
  kinit_mode:
    description:
      - V(managed) gets a Kerberos ticket for O(remote_user) with O(remote_password),
        in-process with the C(krb5) Python library when it is installed and O(kinit_cmd) and
        O(kinit_args) are left unset, else with O(kinit_cmd) (the password on its standard
        input only); pypsrp gets no password and uses the ticket. The ticket is shared by every
        task and host of the run that asks for the same principal with the same delegation and
        kinit settings, kept in a private directory of the run until C(ansible-playbook) ends,
        and replaced shortly before it expires. While it is valid, a different password given
        for the same principal later in the run is not used.
      - V(manual) uses the tickets already in the controller's credential cache, or lets
        pypsrp use the password directly.
      - Without a value, V(managed) when O(auth=kerberos) and a password is set, else
        V(manual). V(managed) requires O(auth=kerberos) and a password.
    type: str
    choices:
      - managed
      - manual
    vars:
      - name: ansible_psrp_kinit_mode
    env:
      - name: ANSIBLE_PSRP_KINIT_MODE
    ini:
      - section: psrp
        key: kinit_mode
  kinit_cmd:
    description:
      - The C(kinit) program to run for O(kinit_mode=managed). Any other value than V(kinit)
        makes the plugin run it instead of getting the ticket with the C(krb5) Python library.
    type: str
    default: kinit
    vars:
      - name: ansible_psrp_kinit_cmd
    env:
      - name: ANSIBLE_PSRP_KINIT_CMD
    ini:
      - section: psrp
        key: kinit_cmd
  kinit_args:
    description:
      - Arguments for C(kinit), one string split like a shell would. When set they replace the
        default arguments, including the C(-f) that O(negotiate_delegate) adds.
    type: str
    vars:
      - name: ansible_psrp_kinit_args
    env:
      - name: ANSIBLE_PSRP_KINIT_ARGS
    ini:
      - section: psrp
        key: kinit_args
  kinit_env_vars:
    description:
      - Names of controller environment variables (such as C(KRB5_CONFIG)) that C(kinit) gets;
        it gets nothing else from the controller's environment but C(PATH).
    type: list
    elements: str
    default: []
    vars:
      - name: ansible_psrp_kinit_env_vars
    env:
      - name: ANSIBLE_PSRP_KINIT_ENV_VARS
    ini:
      - section: psrp
        key: kinit_env_vars

  # --- time limits and retries --------------------------------------------------------------
  connection_timeout:
    description:
      - Seconds to wait for the TCP connection to the host. An integer, at least 1.
    type: int
    default: 30
    vars:
      - name: ansible_psrp_connection_timeout
  read_timeout:
    description:
      - Seconds to wait for an HTTP response. An integer, at least 1, and greater than
        O(operation_timeout), because the host may hold a Receive that long before it answers.
    type: int
    default: 30
    vars:
      - name: ansible_psrp_read_timeout
  operation_timeout:
    description:
      - WSMan OperationTimeout in seconds, that is how long the host holds a request, such as a
        Receive waiting for output, before it answers. An integer, at least 1.
    type: int
    default: 20
    vars:
      - name: ansible_psrp_operation_timeout
  command_timeout:
    description:
      - Seconds a single command or file transfer may run on the host. When it is exceeded
        the pipeline is stopped on the host (PSRP stop signal) and the task fails.
      - It also bounds the wait for the host to open the runspace pool; the pool is then
        deleted and the task fails.
      - V(0) means no limit; fractions of a second are allowed. A task's C(timeout) keyword
        also stops the remote pipeline.
    type: float
    default: 0
    vars:
      - name: ansible_psrp_command_timeout
    env:
      - name: ANSIBLE_PSRP_COMMAND_TIMEOUT
    ini:
      - section: psrp
        key: command_timeout
  session_persist:
    description:
      - Keep the authenticated connection and the runspace pool open after a task, for the
        later tasks of the same C(ansible-playbook) run with the same host, user and
        connection options (like OpenSSH's ControlPersist). Later tasks neither log on again
        nor start another C(wsmprovhost) process. A local process of the same user keeps it,
        reached through a socket in a private (0700) directory, and ends it when the run
        ends, when O(session_idle_timeout) passes without a task, or on C(reset_connection)
        and C(win_reboot). V(false) opens and closes a pool in every task, as
        P(ansible.builtin.psrp#connection) does.
    default: true
    type: bool
    vars:
      - name: ansible_psrp_session_persist
    env:
      - name: WINOPS_REMOTING_SESSION_PERSIST
    ini:
      - section: winops_remoting
        key: session_persist
  session_idle_timeout:
    description:
      - Seconds a kept session (O(session_persist)) waits for the next task before it closes
        its runspace pool and ends.
    default: 60
    type: int
    vars:
      - name: ansible_psrp_session_idle_timeout
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
      - name: ansible_psrp_session_max_kept
    env:
      - name: WINOPS_REMOTING_SESSION_MAX_KEPT
    ini:
      - section: winops_remoting
        key: session_max_kept
  session_start_ahead:
    description:
      - With a kept session (O(session_persist)), create the next module task's pipeline
        ahead. When a task that ran a module ends, the session creates a pipeline for Ansible's
        module bootstrap that waits for its input, and the next module task only sends its
        input to it, one request fewer while the task waits.
      - Only Ansible's module bootstrap is created ahead. It runs no module code before it has
        read the module's code from its input (before that it only checks the PowerShell
        version and, with ansible-core 2.17, sets the code page with C(chcp.com)), so a pipeline
        that no task uses has run no module when the session ends and closing the pool ends it.
      - The kept pool is opened with two runspaces instead of one, so that a task that runs
        something else first (C(raw), a file transfer) runs beside the waiting pipeline (Windows
        would queue it behind that pipeline). The second runspace is created in the pool's
        C(wsmprovhost) process only when such a task comes. V(false) creates each pipeline when
        its task asks for it, in a pool of one runspace, as the builtin plugin does.
    default: true
    type: bool
    vars:
      - name: ansible_psrp_session_start_ahead
    env:
      - name: WINOPS_REMOTING_PSRP_START_AHEAD
    ini:
      - section: winops_remoting
        key: psrp_session_start_ahead
  reconnection_retries:
    description:
      - Extra attempts after a transient failure. pypsrp retries refused or timed-out TCP
        connections this often; the plugin retries opening and closing the runspace pool and
        receiving output after a reset connection, HTTP 502/503/504 or a WSMan
        OperationTimeout. A command is never started twice.
      - An integer, at least 0.
    type: int
    default: 3
    vars:
      - name: ansible_psrp_reconnection_retries
    env:
      - name: ANSIBLE_PSRP_RECONNECTION_RETRIES
    ini:
      - section: psrp
        key: reconnection_retries
  reconnection_backoff:
    description:
      - Seconds to wait before the first retry, doubled for each further retry.
      - A number, at least 0.
    type: float
    default: 1.0
    vars:
      - name: ansible_psrp_connection_backoff
      - name: ansible_psrp_reconnection_backoff
    env:
      - name: ANSIBLE_PSRP_RECONNECTION_BACKOFF
    ini:
      - section: psrp
        key: reconnection_backoff
  max_envelope_size:
    description:
      - Largest WSMan message in bytes the host accepts (its MaxEnvelopeSizekb times 1024).
        File transfers size their chunks from it.
      - The default suits every Windows version; pypsrp raises it to 500 KiB by itself when
        the host runs PowerShell 3 or later. An integer, at least 32768 (the smallest
        MaxEnvelopeSizekb Windows accepts is 32).
    type: int
    default: 153600
    vars:
      - name: ansible_psrp_max_envelope_size
"""

EXAMPLES = r"""
# Inventory: HTTPS with NTLM or Kerberos through negotiate, the certificate checked by a CA file.
# [windows:vars]
# ansible_connection=winops.remoting.psrp
# ansible_user=ansible@EXAMPLE.COM
# ansible_password={{ vault_ansible_password }}
# ansible_psrp_ca_cert=/etc/pki/winrm-ca.pem

# Ansible.Admin: a FullLanguage configuration registered on the host beforehand, for example
# Register-PSSessionConfiguration -Name Ansible.Admin -Path .\ansible-admin.pssc
# (a file with SessionType Default and TranscriptDirectory set). A JEA endpoint would not do.
- name: Run modules in a session configuration of your own, with a time limit
  hosts: windows
  vars:
    ansible_connection: winops.remoting.psrp
    ansible_psrp_configuration_name: Ansible.Admin
    ansible_psrp_command_timeout: 600
  tasks:
    - name: Show the WinRM service
      ansible.windows.win_service_info:
        name: WinRM
"""

import base64
import logging
import re
import shlex
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
    PSRP_EXTRAS_PREFIX,
    OptionSource,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._typed_options import (
    TypedOptions,
)

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
        PsrpSettings,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
        PsrpSession,
    )

display = Display()
# Spares every task's worker Ansible's own parse of DOCUMENTATION (options/_definitions.py).
register_option_definitions(
    "connection", __name__, __file__, DOCUMENTATION, remember=_run_cache.remembered
)


# How ansible's powershell shell plugin starts PowerShell; we run what follows in the runspace.
_POWERSHELL_PREFIX = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted "
_ENCODED_COMMAND = f"{_POWERSHELL_PREFIX}-EncodedCommand "
_FILE_COMMAND = f"{_POWERSHELL_PREFIX}-File "
# Runs a script file with its arguments inside the runspace instead of a new powershell.exe.
_RUN_SCRIPT_FILE = (
    "$scriptPath = $args[0]\n"
    "[object[]]$scriptArgs = @($args | Select-Object -Skip 1)\n"
    "& $scriptPath @scriptArgs"
)
# Libraries whose debug logging would show message contents (module arguments included).
_QUIET_LOGGERS = ("pypsrp", "requests_credssp", "spnego", "urllib3")


class _Invocation(t.NamedTuple):
    script: str
    input_lines: list[str] | None
    arguments: list[str]
    description: str | None  # what to show at -vvv; None for the module bootstrap


def _unquote(path: str) -> str:
    """Drop one pair of quotes the shell plugin may have put around a remote path."""
    match = re.fullmatch(r"\s*(['\"])(.*)\1\s*", path, flags=re.DOTALL)
    return match.group(2) if match else path


def _split_lines(text: str) -> list[str]:
    """Input objects for the pipeline: one per line, split at \\n or \\r\\n only.

    str.splitlines() would also split at characters such as U+2028 that JSON may carry
    unescaped inside a string, breaking the module payload apart.
    """
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class Connection(TypedOptions, KeptSessionConnection):
    """PowerShell Remoting connection; the session layer lives in plugin_utils.session._psrp_session.

    pypsrp and the session layer are imported only when this task opens a runspace pool: a
    task whose pool is kept by an earlier task's holder process (kept._slot) never loads them.
    """

    session_operations = ("execute", "put_file", "fetch_file", "start_ahead")
    transport = "winops.remoting.psrp"
    module_implementation_preferences = (".ps1", ".exe", "")
    allow_executable = False
    has_pipelining = True
    allow_extras = True

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.always_pipeline_modules = True
        self.has_native_async = True
        self._shell_type = "powershell"
        super().__init__(*args, **kwargs)
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    # -- options -----------------------------------------------------------------------------

    def _option_source(self) -> OptionSource:
        return OptionSource(
            self.get_option,
            self.option_definitions,
            extras_prefix=PSRP_EXTRAS_PREFIX,
            var_options=self._var_options,
            task_keys=self._task_keys,
            extras=self.get_option("_extras") if self.has_option("_extras") else {},
        )

    def _read_settings(self) -> PsrpSettings:
        from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
            read_settings,
        )

        return read_settings(self._option_source(), warn=display.warning)

    # -- connection lifecycle ----------------------------------------------------------------

    def _session_log(self, message: str) -> None:
        if display.verbosity >= 3:
            display.vvv(self._redact(message), host=self._remote_host)

    def _open_own_session(self) -> PsrpSession:
        from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
            PsrpSession,
            require_pypsrp,
        )

        require_pypsrp()
        settings = self._read_settings()
        endpoint = settings.endpoint
        display.vvv(
            f"ESTABLISH PSRP CONNECTION FOR USER: {settings.user} TO {endpoint.url} "
            f"(auth {settings.auth}, configuration {settings.configuration_name})",
            host=endpoint.host,
        )
        session = PsrpSession(
            settings,
            log=self._log_vvvvv,
            include_stacktrace=display.verbosity >= 3,
            warn=self._warn,
            pipeline_ahead=settings.start_ahead and self._slot is not None and self._slot.may_keep,
            host_idle_timeout=self._host_idle_timeout,
        )
        session.open()
        return session

    # -- commands and files ------------------------------------------------------------------

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = True
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        invocation = self._invocation_for(cmd, in_data)
        if invocation.description is None:
            display.vvv("PSRP EXEC (pipelined module bootstrap)", host=self._remote_host)
            if invocation.input_lines:
                self._next_module_ahead = (invocation.script, tuple(invocation.arguments))
        elif self._play_context.no_log:
            display.vvv("PSRP EXEC <hidden by no_log>", host=self._remote_host)
        else:
            display.vvv(f"PSRP EXEC {self._redact(invocation.description)}", host=self._remote_host)
        rc, stdout, stderr = self._call(
            "execute", invocation.script, invocation.input_lines, invocation.arguments
        )
        if display.verbosity >= 5:  # redacting a module's whole output costs every task
            display.vvvvv(f"PSRP RC: {rc}", host=self._remote_host)
            if self._play_context.no_log:
                display.vvvvv("PSRP STDOUT/STDERR: <hidden by no_log>", host=self._remote_host)
            else:
                for name, output in (("STDOUT", stdout), ("STDERR", stderr)):
                    text = output.decode("utf-8", errors="surrogateescape")
                    display.vvvvv(f"PSRP {name}: {self._redact(text)}", host=self._remote_host)
        return rc, stdout, stderr

    def _invocation_for(self, cmd: str, in_data: bytes | None) -> _Invocation:
        """Decide what to run in the runspace for a command line from the shell plugin."""
        input_text = None if in_data is None else in_data.decode("utf-8", errors="surrogateescape")
        input_lines = _split_lines(input_text) if input_text else None

        if cmd.startswith(_ENCODED_COMMAND):
            # A script the shell plugin encoded for powershell.exe: run it in the runspace
            # itself instead of starting another process.
            encoded = cmd[len(_ENCODED_COMMAND) :].strip()
            script = base64.b64decode(encoded).decode("utf-16-le")
            if input_text and input_text.startswith("#!"):
                interpreter = input_text.splitlines()[0][2:]
                raise AnsibleError(
                    f"{self.transport} cannot run a module with the interpreter "
                    f"'{interpreter}'; only PowerShell modules and binaries run over PSRP"
                )
            bootstrap = self._shell.build_module_command("", "", "")
            description = None if cmd == bootstrap else script
            return _Invocation(script, input_lines, [], description)

        if cmd.startswith(_FILE_COMMAND):
            arguments = shlex.split(cmd[len(_FILE_COMMAND) :])
            return _Invocation(_RUN_SCRIPT_FILE, input_lines, arguments, " ".join(arguments))

        # Anything else is PowerShell text; pass the exit code of a native program on.
        return _Invocation(f"{cmd}\nexit $LASTEXITCODE", input_lines, [], cmd)

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        out_path = _unquote(out_path)
        self._check_put_source(in_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._remote_host)
        size = self._call("put_file", in_path, out_path)
        self._log_vvvvv(f"PSRP PUT {in_path} done: {size} bytes, SHA-1 verified")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        in_path = _unquote(in_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._remote_host)
        size = self._call("fetch_file", in_path, out_path)
        self._log_vvvvv(f"PSRP FETCH {in_path} done: {size} bytes, SHA-1 verified")

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _remote_host(self) -> str | None:
        return t.cast("str | None", self.get_option("remote_addr"))

    def _redact(self, text: str) -> str:
        return redact(text, self._option_source().secrets())

    def _warn(self, message: str) -> None:
        display.warning(self._redact(message))

    def _log_vvvvv(self, message: str) -> None:
        if display.verbosity >= 5:
            display.vvvvv(self._redact(message), host=self._remote_host)
