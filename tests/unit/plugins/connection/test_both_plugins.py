"""The same mistake through both connection plugins gets the same answer.

The winrm and psrp plugins share one option source, one failure path and one wording table;
these tests feed each the same input and compare what users see.
"""

from __future__ import annotations

import datetime
import re
import sys
import types
import typing as t

import pytest
from ansible.errors import AnsibleError, AnsibleFileNotFound
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError

PLUGINS = ("winops.remoting.winrm", "winops.remoting.psrp")
BASE = {
    "inventory_hostname": "win-01.example.com",
    "ansible_user": "admin",
    "ansible_password": "sëcret-pässword",
}


def load_connection(
    name: str, variables: dict[str, t.Any], task_keys: dict[str, t.Any] | None = None
) -> t.Any:
    """A connection plugin with its options set as a task sets them (variables and keywords)."""
    connection = connection_loader.get(name, PlayContext())
    assert connection is not None, f"plugin loader cannot find {name}"
    templar = Templar(loader=DataLoader(), variables=variables)
    var_options = connection._resolve_option_variables(variables, templar)
    connection.set_options(task_keys=task_keys, var_options=var_options)
    return connection


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize(
    ("variables", "task_keys", "label"),
    [
        pytest.param({"ansible_port": "not-a-port"}, None, "ansible_port", id="variable"),
        pytest.param({}, {"port": "not-a-port"}, "port (play keyword)", id="play-keyword"),
    ],
)
def test_bad_port_is_named_alike_by_both_plugins(
    plugin: str, variables: dict[str, t.Any], task_keys: dict[str, t.Any] | None, label: str
) -> None:
    connection = load_connection(plugin, {**BASE, **variables}, task_keys)
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value) == (
        f"Invalid value 'not-a-port' for {label}: expected a port number between 1 and 65535"
    )


# -- values that used to get past validation (issue 11, item 6) -------------------------------


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("host", ["10.0.0.1:5985", "win01.example.com:5986", "fe80::1::2"])
def test_a_host_with_a_port_or_a_broken_ipv6_literal_names_ansible_host(
    plugin: str, host: str
) -> None:
    # Before: "unexpected ValueError" for http://[10.0.0.1:5985]:5985/wsman, on the wire.
    connection = load_connection(plugin, {**BASE, "ansible_host": host, "ansible_port": 5985})
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value).startswith(f"Invalid value {host!r} for ansible_host: expected")
    assert "without a port (set the port with ansible_port)" in str(raised.value)


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("host", ["fe80::1", "[fe80::1]", "::ffff:10.0.0.1"])
def test_an_ipv6_literal_is_still_a_host(plugin: str, host: str) -> None:
    connection = load_connection(plugin, {**BASE, "ansible_host": host, "ansible_port": 5985})
    assert connection._read_settings().endpoint.host == host.strip("[]")


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize(
    ("proxy", "shown"),
    [
        ("http://proxy:port", "http://proxy:port"),
        ("http//proxy:3128", "http//proxy:3128"),
        ("proxy:3128", "proxy:3128"),
        ("http://", "http://"),
        ("http://[::1:3128", "http://[::1:3128"),
        ("http://proxy:99999", "http://proxy:99999"),
        ("ftp://proxy:21", "ftp://proxy:21"),
        # the credentials of a proxy URL are never repeated, with a scheme or without
        ("http://user:Pässwörd@proxy:port", "http://********@proxy:port"),
        ("user:Pässwörd@proxy:port", "********@proxy:port"),
        # a "/" in an unquoted password ends the authority to a URL parser, not the password
        ("http://user:Päss/wörd@proxy:port", "http://********@proxy:port"),
    ],
)
def test_a_malformed_proxy_url_names_the_proxy_variable(
    plugin: str, proxy: str, shown: str
) -> None:
    # Before: "unexpected InvalidURL ... check ansible_host" once the request was made.
    family = plugin.rsplit(".", 1)[1]
    variables = {**BASE, f"ansible_{family}_proxy": proxy}
    with pytest.raises(OptionError) as raised:
        load_connection(plugin, variables)._read_settings()
    assert str(raised.value) == (
        f"Invalid value {shown!r} for ansible_{family}_proxy: expected a proxy URL such as "
        "http://proxy:3128 (scheme http, https, socks4, socks4a, socks5, socks5h)"
    )


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize(
    "proxy",
    [
        "http://proxy:3128",
        "socks5h://[::1]:1080",
        "http://proxy",
        # requests puts http:// in front of these, for the builtin plugins too
        "10.0.0.1:3128",
        "proxy.corp.local:3128",
        # what `"{{ proxy | default('') }}"` gives, handed over as it is
        "",
    ],
)
def test_a_well_formed_proxy_url_is_passed_on(plugin: str, proxy: str) -> None:
    family = plugin.rsplit(".", 1)[1]
    settings = load_connection(plugin, {**BASE, f"ansible_{family}_proxy": proxy})._read_settings()
    arguments = settings.wsman_kwargs if family == "psrp" else settings.protocol_kwargs
    assert arguments["proxy"] == proxy


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("user", ["", "   "])
def test_an_empty_user_is_refused_by_both_plugins(plugin: str, user: str) -> None:
    # Before: psrp sent the request with an empty user name.
    family = plugin.rsplit(".", 1)[1]
    auth = {"winrm": "ansible_winrm_transport", "psrp": "ansible_psrp_auth"}[family]
    variables = {**BASE, "ansible_user": user, auth: "ntlm"}
    with pytest.raises(OptionError) as raised:
        load_connection(plugin, variables)._read_settings()
    assert str(raised.value).startswith(f"Invalid value {user!r} for ansible_user: expected")


# -- an encrypted client key: a local mistake, named before any traffic (issue 11, item 5) -----

KEY_PASSWORD = "Schlüssel-Pässwort"


def client_certificate(directory: t.Any, key_password: str | None) -> tuple[str, str]:
    """A self-signed client certificate and its key, encrypted with ``key_password``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ansible")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if key_password is None
        else serialization.BestAvailableEncryption(key_password.encode())
    )
    cert_path, key_path = directory / "client.pem", directory / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return str(cert_path), str(key_path)


def psrp_certificate_vars(cert: str, key: str) -> dict[str, t.Any]:
    return {
        **BASE,
        "ansible_psrp_auth": "certificate",
        "ansible_psrp_protocol": "https",
        "ansible_psrp_certificate_pem": cert,
        "ansible_psrp_certificate_key_pem": key,
    }


def test_a_wrong_key_password_names_its_variable_before_any_traffic(tmp_path: t.Any) -> None:
    # Before: "TLS handshake failed", after urllib3 had retried the handshake.
    cert, key = client_certificate(tmp_path, KEY_PASSWORD)
    variables = psrp_certificate_vars(cert, key) | {
        "ansible_psrp_certificate_key_password": "nicht-das-Pässwort"
    }
    with pytest.raises(OptionError) as raised:
        load_connection("winops.remoting.psrp", variables)._read_settings()
    message = str(raised.value)
    assert message.startswith(
        "Invalid value '(hidden)' for ansible_psrp_certificate_key_password: expected the "
        f"password that decrypts the private key {key} (ansible_psrp_certificate_key_pem)"
    )
    assert "nicht-das-Pässwort" not in message


def test_an_encrypted_key_without_its_password_is_refused(tmp_path: t.Any) -> None:
    cert, key = client_certificate(tmp_path, KEY_PASSWORD)
    with pytest.raises(OptionError) as raised:
        load_connection("winops.remoting.psrp", psrp_certificate_vars(cert, key))._read_settings()
    assert str(raised.value) == (
        "Invalid value None for ansible_psrp_certificate_key_password: expected the password "
        f"of the encrypted private key {key} (ansible_psrp_certificate_key_pem)"
    )


def test_the_right_key_password_is_passed_on(tmp_path: t.Any) -> None:
    cert, key = client_certificate(tmp_path, KEY_PASSWORD)
    variables = psrp_certificate_vars(cert, key) | {
        "ansible_psrp_certificate_key_password": KEY_PASSWORD
    }
    settings = load_connection("winops.remoting.psrp", variables)._read_settings()
    assert settings.wsman_kwargs["certificate_key_password"] == KEY_PASSWORD


def test_a_key_of_another_certificate_names_the_key_variable(tmp_path: t.Any) -> None:
    cert, _key = client_certificate(tmp_path, None)
    (tmp_path / "other").mkdir()
    _other_cert, other_key = client_certificate(tmp_path / "other", KEY_PASSWORD)
    variables = psrp_certificate_vars(cert, other_key) | {
        "ansible_psrp_certificate_key_password": KEY_PASSWORD
    }
    with pytest.raises(OptionError) as raised:
        load_connection("winops.remoting.psrp", variables)._read_settings()
    assert str(raised.value) == (
        f"Invalid value {other_key!r} for ansible_psrp_certificate_key_pem: expected the private "
        f"key of the certificate in ansible_psrp_certificate_pem ({cert})"
    )


def test_winrm_refuses_an_encrypted_key_it_cannot_open(tmp_path: t.Any) -> None:
    # pywinrm takes no key password: OpenSSL would prompt for it on a terminal, or fail.
    cert, key = client_certificate(tmp_path, KEY_PASSWORD)
    variables = {
        **BASE,
        "ansible_winrm_transport": "certificate",
        "ansible_winrm_scheme": "https",
        "ansible_winrm_cert_pem": cert,
        "ansible_winrm_cert_key_pem": key,
    }
    with pytest.raises(OptionError) as raised:
        load_connection("winops.remoting.winrm", variables)._read_settings()
    assert str(raised.value).startswith(
        f"Invalid value {key!r} for ansible_winrm_cert_key_pem: expected an unencrypted PEM "
        "private key"
    )


# -- one failure path: nothing shown or chained carries the password ---------------------------

PASSWORD = "Sécret-Pässwörd!42"
SECRET_VARIABLES = {
    **BASE,
    "ansible_password": PASSWORD,
    "ansible_winrm_transport": "ntlm",
    "ansible_winrm_reconnection_retries": 0,
    "ansible_psrp_auth": "ntlm",
    "ansible_psrp_reconnection_retries": 0,
}
STEPS = ("open", "command", "put", "fetch")


def library_errors(plugin: str) -> dict[str, BaseException]:
    """Errors as the libraries raise them, each quoting the password somewhere in its chain."""
    import requests

    if plugin.endswith("winrm"):
        from winrm.exceptions import InvalidCredentialsError as AuthError
        from winrm.exceptions import WinRMError as FaultError

        fault: BaseException = FaultError(f"the service said: bad request for {PASSWORD}")
    else:
        from pypsrp.exceptions import AuthenticationError as AuthError
        from pypsrp.exceptions import WSManFaultError

        fault = WSManFaultError(500, "win-01", f"bad request for {PASSWORD}", None, None, None)
    cut = requests.exceptions.ConnectionError("('Connection aborted.')")
    cut.__cause__ = ConnectionResetError(104, f"reset while sending password={PASSWORD}")
    return {
        "transport": requests.exceptions.ConnectionError(f"POST failed: body had {PASSWORD}"),
        "auth": AuthError(f"the server refused user admin with password {PASSWORD}"),
        "fault": fault,
        "chained-cause": cut,
    }


class FailingWinRMProtocol:
    """pywinrm's Protocol, failing at one step with ``error``."""

    def __init__(self, step: str, error: BaseException) -> None:
        self.step, self.error = step, error
        self.operation_timeout_sec = 20
        self.transport = types.SimpleNamespace(close_session=lambda: None)

    def _fail_at(self, step: str) -> None:
        if self.step == step:
            raise self.error

    def open_shell(self, **kwargs: t.Any) -> str:
        self._fail_at("open")
        return "SHELL-1"

    def run_command(self, shell_id: str, command: str, args: t.Any, **kwargs: t.Any) -> str:
        self._fail_at("command")
        return "COMMAND-1"

    def stdin_message(self, *args: t.Any) -> str:
        return "<Send/>"

    def send_message(self, message: str) -> None:
        self._fail_at("put")

    def get_command_output_raw(self, *args: t.Any) -> tuple[bytes, bytes, int, bool]:
        self._fail_at("fetch")
        return b"", b"", 0, True

    def cleanup_command(self, *args: t.Any) -> None:
        pass

    def close_shell(self, *args: t.Any) -> None:
        pass


class FailingPsrp:
    """pypsrp's WSMan, RunspacePool and PowerShell, failing at one step with ``error``."""

    def __init__(self, step: str, error: BaseException) -> None:
        self.step, self.error = step, error

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from pypsrp.complex_objects import PSInvocationState

        from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
            _psrp_session,
            _psrp_stream,
        )

        remote = self

        def send_receive(pipeline: t.Any, timeout: int) -> t.NoReturn:
            raise remote.error  # a fetch's Receives go out without poll_invoke

        class WSMan:
            def __init__(self, **kwargs: t.Any) -> None:
                self.max_envelope_size = kwargs["max_envelope_size"]

            def close(self) -> None:
                pass

        class RunspacePool:
            def __init__(self, wsman: WSMan, **kwargs: t.Any) -> None:
                self.connection = wsman
                self.shell = types.SimpleNamespace(
                    open=lambda *a, **k: None,
                    receive=None,
                    send=lambda *a, **k: None,
                    signal=lambda *a: None,
                )
                self.pipelines: dict[t.Any, t.Any] = {}

            def open(self) -> None:
                if remote.step == "open":
                    raise remote.error

            def close(self) -> None:
                pass

        class PowerShell:
            def __init__(self, pool: RunspacePool) -> None:
                self.id = "PIPELINE-1"
                self.state = PSInvocationState.NOT_STARTED

            def add_script(self, *args: t.Any, **kwargs: t.Any) -> None:
                pass

            def add_argument(self, *args: t.Any) -> None:
                pass

            def begin_invoke(self, pipeline_input: t.Any) -> None:
                if remote.step in ("command", "put"):
                    raise remote.error
                self.state = PSInvocationState.RUNNING

            def poll_invoke(self, timeout: int) -> None:
                raise remote.error

            def stop(self) -> None:
                self.state = PSInvocationState.STOPPED

        monkeypatch.setattr(_psrp_session, "WSMan", WSMan)
        monkeypatch.setattr(_psrp_session, "RunspacePool", RunspacePool)
        monkeypatch.setattr(_psrp_session, "PowerShell", PowerShell)
        monkeypatch.setattr(_psrp_stream, "send_receive", send_receive)


def chained_errors(error: BaseException) -> t.Iterator[BaseException]:
    """``error`` and everything Python or Ansible can show behind it (causes and contexts)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kind", ["transport", "auth", "fault", "chained-cause"])
def test_a_password_in_a_library_error_is_never_shown_or_chained(
    plugin: str, step: str, kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
        _winrm_session,
    )

    error = library_errors(plugin)[kind]
    if plugin.endswith("winrm"):
        protocol = FailingWinRMProtocol(step, error)
        monkeypatch.setattr(_winrm_session, "Protocol", lambda **kwargs: protocol)
    else:
        FailingPsrp(step, error).install(monkeypatch)
    connection = load_connection(plugin, SECRET_VARIABLES)
    local = tmp_path / "local.txt"
    local.write_text("payload")
    actions = {
        "open": connection._connect,
        "command": lambda: connection.exec_command("Write-Output hi"),
        "put": lambda: connection.put_file(str(local), "C:\\Temp\\remote.txt"),
        "fetch": lambda: connection.fetch_file("C:\\Temp\\remote.txt", str(tmp_path / "out")),
    }
    with pytest.raises(AnsibleError) as raised:
        actions[step]()
    shown = [f"{type(e).__name__}: {e!s} {e!r}" for e in chained_errors(raised.value)]
    assert all(PASSWORD not in text for text in shown), shown
    # Still a diagnosis users can act on, not a bare library message.
    assert "fix:" in str(raised.value)


PROXY_PASSWORD = "Prøxy-pw"


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("scheme", ["http://", ""], ids=["with-scheme", "without-scheme"])
def test_a_password_in_the_proxy_url_is_a_secret_and_never_shown(
    plugin: str, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the proxy URL's password was not in settings.secrets, so nothing masked it; and
    # without a scheme (requests reads http:// in front) it was not found there either.
    from urllib.parse import quote

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # pywinrm warns about it

    family = plugin.rsplit(".", 1)[1]
    # "_proxyuser:" cannot be a scheme to requests (a scheme starts with a letter)
    proxy = f"{scheme}_proxyuser:{quote(PROXY_PASSWORD)}@127.0.0.1:{_closed_port()}"
    variables = {
        **BASE,
        "ansible_host": "192.0.2.10",
        "ansible_port": 5985,
        f"ansible_{family}_proxy": proxy,
        f"ansible_{family}_reconnection_retries": 0,
        f"ansible_{family}_session_persist": False,
        f"ansible_{family}_message_encryption": "never",
        "ansible_winrm_transport": "basic",
        "ansible_psrp_auth": "basic",
        "ansible_psrp_protocol": "http",
        "ansible_winrm_scheme": "http",
    }
    connection = load_connection(plugin, variables)
    settings = connection._read_settings()
    assert PROXY_PASSWORD in settings.secrets
    assert quote(PROXY_PASSWORD) in settings.secrets
    # Everything the plugin displays at -vvvvv (winrm showed its protocol arguments, the proxy
    # URL among them, unmasked).
    display = sys.modules[type(connection).__module__].display
    logged: list[str] = []
    monkeypatch.setattr(display, "verbosity", 5)
    # On the class: an instance attribute left behind would hide other tests' class patches.
    for name in ("display", "warning"):
        monkeypatch.setattr(type(display), name, lambda _, message, *a, **k: logged.append(message))
    with pytest.raises(AnsibleError) as raised:
        connection._connect()
    shown = [f"{type(e).__name__}: {e!s} {e!r}" for e in chained_errors(raised.value)]
    assert logged, "nothing was displayed: the test would prove nothing"
    assert all(
        PROXY_PASSWORD not in text and quote(PROXY_PASSWORD) not in text for text in shown + logged
    ), shown + logged


# -- one wording table: each plugin's users are told about their own variables ----------------

TEMPLATE_VALUES: dict[str, t.Any] = {
    "host": "win-01.example.com",
    "port": 5986,
    "transport": "ntlm",
    "status": 500,
    "error_type": "ValueError",
    "method": "basic",
    "choice": "",
    "enabling": "add basic to winrm_auth_methods of the winops.remoting.winrm_auth role",
    "change": "use https",
    "spn": "HTTP/win-01.example.com",
    "realm": "EXAMPLE.COM",
    "config": "/etc/krb5.conf",
    "principal": "admin@EXAMPLE.COM",
    "kinit_cmd": "kinit",
    "timeout": 60.0,
    "path": "/tmp/store",
    "uid": 1000,
    "controller": "the controller's OpenSSL 0.9.8 offers TLS 1.0 to TLS 1.0",
    "urllib3": "2.1.0",
    "cached": "other@EXAMPLE.COM",
    "wanted": "admin@EXAMPLE.COM",
    "cause": "nothing accepted the connection on port 5986",
}


def documented_variables(plugin: str) -> set[str]:
    """Every variable the plugin's DOCUMENTATION declares."""
    import sys

    import yaml

    module = sys.modules[connection_loader.get(plugin, class_only=True).__module__]
    options = yaml.safe_load(module.DOCUMENTATION)["options"]
    return {entry["name"] for option in options.values() for entry in option.get("vars", [])}


# The winrm_doctor words its fixes for a host on a builtin plugin as that plugin's (the
# variables it reads through ours are the builtin's, and the builtin ignores some of ours).
BUILTIN_PLUGINS = ("ansible.builtin.winrm", "ansible.builtin.psrp")


def honoured_variables(plugin: str) -> set[str]:
    """Every variable the plugin acts on: its DOCUMENTATION's, and for ansible.builtin.winrm
    also ansible_winrm_<name> for every argument <name> of pywinrm's Protocol, which it hands
    on as its DOCUMENTATION's description says."""
    import inspect
    import sys

    import yaml

    honoured = documented_variables(plugin)
    if plugin == "ansible.builtin.winrm":
        module = sys.modules[connection_loader.get(plugin, class_only=True).__module__]
        description = " ".join(yaml.safe_load(module.DOCUMENTATION)["description"])
        assert "C(ansible_winrm_<option>)" in description, "the builtin no longer hands extras on"
        from winrm.protocol import Protocol

        arguments = set(inspect.signature(Protocol.__init__).parameters) - {"self"}
        honoured |= {f"ansible_winrm_{name}" for name in arguments}
    return honoured


def every_diagnosis(plugin: str) -> t.Iterator[tuple[str, t.Any]]:
    """Each row of the table as ``plugin``'s users read it, and the fixes built in code."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis import _wording

    for key in _wording.WORDING:
        yield key, _wording.describe(key, plugin, "seen", **TEMPLATE_VALUES)
    schemes = ["Basic", "Negotiate", "Kerberos", "CredSSP", MUTUAL]
    for method in ("basic", "certificate", "ntlm", "negotiate", "kerberos", "credssp"):
        for scheme in schemes:
            diagnosis = _wording.auth_not_offered(method, [scheme], plugin, "seen")
            if diagnosis is not None:
                yield f"auth_not_offered {method} {scheme}", diagnosis
        unencrypted = _wording.unencrypted_refused(method, plugin, "seen")
        yield f"unencrypted_refused {method}", unencrypted


@pytest.mark.parametrize("plugin", PLUGINS + BUILTIN_PLUGINS)
def test_every_diagnosis_names_only_variables_the_plugin_honours(plugin: str) -> None:
    honoured = honoured_variables(plugin)
    for key, diagnosis in every_diagnosis(plugin):
        text = f"{diagnosis.summary} {diagnosis.fix}"
        named = set(re.findall(r"\bansible_\w+", text)) - {"ansible_connection"}
        assert named <= honoured, (key, named - honoured)
        assert "None" not in text, (key, text)  # a variable the plugin does not have


@pytest.mark.parametrize(
    ("key", "plugin", "option"),
    [
        ("answer_cut", "ansible.builtin.winrm", "reconnection_retries"),
        ("http_status", "ansible.builtin.winrm", "reconnection_retries"),
        ("envelope_too_large", "ansible.builtin.winrm", "max_envelope_size"),
    ],
)
def test_an_option_only_ours_has_is_reached_by_switching(
    key: str, plugin: str, option: str
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        describe,
    )

    ours = describe(key, plugin.rsplit(".", 1)[1], "seen", **TEMPLATE_VALUES).fix
    builtin = describe(key, plugin, "seen", **TEMPLATE_VALUES).fix
    assert f"ansible_{plugin.rsplit('.', 1)[1]}_{option}" in ours
    assert f"ansible_connection: winops.remoting.{plugin.rsplit('.', 1)[1]}" in builtin
    assert f"option {option}" in builtin


def test_builtin_psrp_is_not_told_to_set_a_kinit_command() -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        describe,
    )

    assert "ansible_psrp_kinit_cmd" in describe("kerberos_no_ticket", "psrp", "seen").fix
    fix = describe("kerberos_no_ticket", "ansible.builtin.psrp", "seen").fix
    assert "kinit" not in fix and "ansible_password" in fix


def test_builtin_winrm_is_offered_ntlm_not_negotiate() -> None:
    """pywinrm has no negotiate transport, so the builtin plugin refuses it."""
    import winrm

    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        auth_not_offered,
    )

    assert "negotiate" not in winrm.FEATURE_SUPPORTED_AUTHTYPES
    ours = auth_not_offered("basic", ["Negotiate"], "winrm", "seen")
    builtin = auth_not_offered("basic", ["Negotiate"], "ansible.builtin.winrm", "seen")
    assert ours is not None and builtin is not None
    assert ours.fix.startswith("set ansible_winrm_transport to negotiate or ntlm, or enable")
    assert builtin.fix.startswith("set ansible_winrm_transport to ntlm, or enable")


def test_builtin_winrm_timeouts_name_the_variable_that_decides_them() -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        describe,
    )

    for key in ("read_timeout", "operation_timeout"):
        fix = describe(key, "ansible.builtin.winrm", "seen").fix
        assert fix.startswith("raise ansible_winrm_connection_timeout: ansible.builtin.winrm"), fix


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_missing_session_configuration_is_fixed_with_the_plugins_variable(plugin: str) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
        resolve_endpoint,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import (
        diagnose,
    )

    if plugin.endswith("winrm"):
        from winrm.exceptions import WSManFaultError

        fault: BaseException = WSManFaultError(
            500,
            "fault",
            None,
            "The WS-Management service cannot process the request. The resource URI "
            "(http://schemas.microsoft.com/powershell/Other) was not found",
            wsman_fault_code=2150858752,
        )
    else:
        from pypsrp.exceptions import WSManFaultError

        fault = WSManFaultError(
            2150858752, "win-01", "The resource URI was not found", None, None, None
        )
    endpoint = resolve_endpoint("win-01.example.com", None, None, None)
    diagnosis = diagnose(fault, endpoint, "ntlm", plugin)
    assert diagnosis.summary == "the requested session configuration or resource does not exist"
    other = "ansible_psrp_" if plugin.endswith("winrm") else "ansible_winrm_"
    assert other not in diagnosis.fix
    assert set(re.findall(r"\bansible_\w+", diagnosis.fix)) <= documented_variables(plugin)


# pywinrm's ssl transport is certificate authentication with a client certificate, else Basic
# (pywinrm 0.5.0 winrm/transport.py). Any existing files do for the paths: nothing reads them.
CLIENT_CERTIFICATE = {"ansible_winrm_cert_pem": __file__, "ansible_winrm_cert_key_pem": __file__}
MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"


def _refused_with(www_authenticate: str) -> BaseException:
    """pywinrm's InvalidCredentialsError raised while handling the host's 401."""
    import requests
    from winrm.exceptions import InvalidCredentialsError

    response = requests.Response()
    response.status_code = 401
    response.headers["WWW-Authenticate"] = www_authenticate
    try:
        try:
            raise requests.HTTPError("401 Client Error", response=response)
        except requests.HTTPError:
            raise InvalidCredentialsError(  # noqa: B904 - pywinrm chains it implicitly
                "the specified credentials were rejected by the server"
            )
    except InvalidCredentialsError as err:
        return err


@pytest.mark.parametrize(
    ("client_certificate", "method"), [(True, "certificate"), (False, "basic")]
)
def test_pywinrm_ssl_is_diagnosed_as_the_method_the_host_sees(
    client_certificate: bool, method: str
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._failure import (
        connection_failure,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor_targets import (
        winrm_target,
    )

    variables = {**BASE, "ansible_winrm_transport": "ssl"}
    if client_certificate:
        variables.update(CLIENT_CERTIFICATE)
    settings = load_connection("winops.remoting.winrm", variables)._read_settings()
    assert winrm_target(settings).transport == method

    # The host lists neither Basic nor certificate authentication.
    failure = connection_failure(_refused_with("Negotiate, Kerberos"), settings, "ssl")
    diagnosis = failure.diagnosis  # type: ignore[attr-defined]
    assert diagnosis.summary == f"the listener does not offer {method} authentication"
    assert f"add {method} to winrm_auth_methods" in diagnosis.fix
    if client_certificate:
        assert "basic" not in diagnosis.fix
        # Offered and still refused: the certificate's trust or mapping.
        failure = connection_failure(
            _refused_with(f"Negotiate, Kerberos, {MUTUAL}"), settings, "ssl"
        )
        refused = failure.diagnosis  # type: ignore[attr-defined]
        assert refused.summary.startswith("the client certificate was refused")


def test_a_kerberos_ticket_failure_names_no_plugin_specific_variable() -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_errors import (
        describe_failure,
    )

    error = describe_failure(
        "admin@EXAMPLE.COM", "Client 'admin@EXAMPLE.COM' not found in Kerberos database"
    )
    assert not re.search(r"ansible_(winrm|psrp)_", str(error))


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("value", [0, "many"])
def test_a_bad_session_max_kept_names_its_variable(plugin: str, value: t.Any) -> None:
    variable = f"ansible_{plugin.rsplit('.', 1)[1]}_session_max_kept"
    connection = load_connection(plugin, {**BASE, variable: value})
    with pytest.raises(OptionError) as raised:
        connection._new_slot()
    assert str(raised.value).startswith(f"Invalid value {value!r} for {variable}: expected")


# -- one concept, one rule: the options both plugins have under their own names -----------------

# The same concept's variable in each plugin.
SAME_CONCEPT = {
    "ca": {"winrm": "ansible_winrm_ca_trust_path", "psrp": "ansible_psrp_ca_cert"},
    "validation": {
        "winrm": "ansible_winrm_server_cert_validation",
        "psrp": "ansible_psrp_cert_validation",
    },
    "service": {"winrm": "ansible_winrm_service", "psrp": "ansible_psrp_negotiate_service"},
    "kinit_cmd": {"winrm": "ansible_winrm_kinit_cmd", "psrp": "ansible_psrp_kinit_cmd"},
}


def family(plugin: str) -> str:
    return plugin.rsplit(".", 1)[1]


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("value", [1.5, "0.25", 600])
def test_a_command_timeout_may_be_a_fraction_in_both_plugins(plugin: str, value: t.Any) -> None:
    # Before: the winrm plugin took 1.5, the psrp plugin refused it as not an integer.
    variable = f"ansible_{family(plugin)}_command_timeout"
    settings = load_connection(plugin, {**BASE, variable: value})._read_settings()
    assert settings.command_timeout == float(value)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_an_envelope_smaller_than_windows_allows_is_refused_by_both(plugin: str) -> None:
    # Before: the winrm plugin took anything from 16384, the psrp plugin from 32768.
    variable = f"ansible_{family(plugin)}_max_envelope_size"
    connection = load_connection(plugin, {**BASE, variable: 20000})
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value) == f"Invalid value 20000 for {variable}: expected an integer >= 32768"
    settings = load_connection(plugin, {**BASE, variable: 32768})._read_settings()
    assert settings.max_envelope_size == 32768


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize(
    ("port", "validation", "refused"),
    [(5986, "validate", True), (5986, "ignore", False), (5985, "validate", False)],
)
def test_a_missing_ca_bundle_is_refused_where_it_is_used(
    plugin: str, port: int, validation: str, refused: bool
) -> None:
    # Before: the winrm plugin refused it over http and with validation off too.
    variables = {
        **BASE,
        "ansible_port": port,
        SAME_CONCEPT["ca"][family(plugin)]: "/nonexistent/winops/ca.pem",
        SAME_CONCEPT["validation"][family(plugin)]: validation,
    }
    connection = load_connection(plugin, variables)
    if not refused:
        connection._read_settings()
        return
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value) == (
        f"Invalid value '/nonexistent/winops/ca.pem' for {SAME_CONCEPT['ca'][family(plugin)]}: "
        "expected the path of an existing CA bundle file or certificate directory"
    )


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("concept", ["service", "kinit_cmd"])
@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_service_or_kinit_command_is_refused_by_both(
    plugin: str, concept: str, value: str
) -> None:
    # Before: the winrm plugin ran "   " as kinit and asked for the SPN "   /host".
    variable = SAME_CONCEPT[concept][family(plugin)]
    connection = load_connection(plugin, {**BASE, variable: value})
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value).startswith(f"Invalid value {value!r} for {variable}: expected")


@pytest.mark.parametrize("plugin", PLUGINS)
def test_bad_kinit_arguments_are_refused_by_both_without_managed_kerberos(plugin: str) -> None:
    # Before: the psrp plugin looked at them only with kinit_mode managed.
    variable = f"ansible_{family(plugin)}_kinit_args"
    connection = load_connection(plugin, {**BASE, variable: "-f 'unterminated"})
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    assert str(raised.value).startswith(f'Invalid value "-f \'unterminated" for {variable}')


@pytest.mark.parametrize("plugin", PLUGINS)
def test_reset_connection_with_a_bad_session_option_leaves_the_run_alone(plugin: str) -> None:
    """`meta: reset_connection` calls reset() in ansible-playbook itself, where an exception
    ends the whole run (every host, no recap). No session can be kept for options that do not
    validate, so there is nothing to end; the task that uses them fails on them instead."""
    family = plugin.rsplit(".", 1)[1]
    connection = load_connection(plugin, {**BASE, f"ansible_{family}_session_idle_timeout": "abc"})
    connection.reset()
    assert not connection._connected
    with pytest.raises(OptionError, match="session_idle_timeout"):
        connection._connect()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_missing_put_source_is_refused_alike_before_any_traffic(
    plugin: str, tmp_path: t.Any
) -> None:
    connection = load_connection(plugin, BASE)
    calls: list[tuple[t.Any, ...]] = []
    connection._call = lambda *args: calls.append(args)
    connection._connected = True  # put_file's ensure_connect does not connect
    missing = str(tmp_path / "gone.txt")
    with pytest.raises(AnsibleFileNotFound) as raised:
        connection.put_file(missing, "C:\\Windows\\Temp\\gone.txt")
    # The builtin plugins' words (both quote the path with double quotes).
    assert str(raised.value).splitlines()[0] == f'file or module does not exist: "{missing}"'
    assert calls == []
    # What exists is handed on, as the builtin plugins do: a named pipe, a device, a directory
    # fail where they are read, not as a missing file.
    connection.put_file(str(tmp_path), "C:\\Windows\\Temp\\dir")
    assert [call[0] for call in calls] == ["put_file"]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_options_an_action_changed_get_a_session_for_their_task_alone(plugin: str) -> None:
    # win_reboot sets connection_timeout while it waits for the host and, when the inventory
    # left it unset, never sets it back: a session kept for that value serves no later task.
    connection = load_connection(plugin, {**BASE, "ansible_host": "192.0.2.10"})
    assert "the task's action changed" not in connection._new_slot().describe()
    original = connection.get_option("connection_timeout")
    connection.set_option("connection_timeout", 17)
    described = connection._new_slot().describe()
    assert described.startswith("not kept (the task's action changed connection_timeout)")
    connection.set_option("connection_timeout", original)
    assert "the task's action changed" not in connection._new_slot().describe()


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ansible_password", {"a": "MappedS3cret-value"}),
        ("ansible_password", ["MappedS3cret-value"]),
        # an unquoted YAML date and !!binary: Ansible refuses them with the value too
        ("ansible_password", datetime.date(2024, 1, 31)),
        ("ansible_password", b"MappedS3cret-value"),
        ("ansible_{family}_proxy", {"url": "http://u:MappedS3cret-value@proxy:3128"}),
    ],
)
def test_a_secret_of_the_wrong_type_is_refused_by_name_without_its_value(
    plugin: str, variable: str, value: t.Any
) -> None:
    # Ansible's own conversion to text refuses a mapping or a list with the value in its
    # message (and ansible-core 2.19 chains it into the task's error): held back, our readers
    # refuse it and name the variable.
    name = variable.format(family=plugin.rsplit(".", 1)[1])
    connection = load_connection(plugin, {**BASE, name: value})
    with pytest.raises(OptionError) as raised:
        connection._read_settings()
    message = str(raised.value)
    assert message.startswith(f"Invalid value '********' for {name}: expected"), message
    assert "MappedS3cret" not in message and "2024" not in message


@pytest.mark.parametrize("plugin", PLUGINS)
@pytest.mark.parametrize("value", [1234, 12.5, True, "pässwörd"])
def test_a_password_ansible_turns_into_text_is_still_taken(plugin: str, value: t.Any) -> None:
    connection = load_connection(plugin, {**BASE, "ansible_password": value})
    assert connection.get_option("remote_password") == str(value)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_vaulted_password_is_taken_as_its_text(
    plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Vaulted values are no str (AnsibleVaultEncryptedUnicode up to 2.18); Ansible turns them
    # into text, and the check for secret strings of a wrong type must let them through.
    import textwrap

    from ansible.parsing.vault import VaultLib, VaultSecret

    secrets = [("default", VaultSecret(b"vault-password"))]
    import ansible.parsing.vault as vault_module

    if hasattr(vault_module, "VaultSecretsContext"):  # ansible-core 2.19: decrypts through it
        context = vault_module.VaultSecretsContext
        monkeypatch.setattr(context, "_current", context(secrets))
    blob = VaultLib(secrets).encrypt("S3cr3t-Vaulted").decode()
    loader = DataLoader()
    loader.set_vault_secrets(secrets)
    document = "ansible_password: !vault |\n" + textwrap.indent(blob, "  ")
    vaulted = loader.load(document)["ansible_password"]
    assert not isinstance(vaulted, str) or type(vaulted) is not str  # a vault object, not text
    connection = load_connection(plugin, {**BASE, "ansible_password": vaulted})
    connection._read_settings()
    assert connection.get_option("remote_password") == "S3cr3t-Vaulted"
