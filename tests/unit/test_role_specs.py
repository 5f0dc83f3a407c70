"""Static checks of the roles: argument specs are the single source of truth.

- every variable in defaults/main.yml is declared in meta/argument_specs.yml and vice versa, with
  the same default, a type, a description and the role's prefix;
- defaults satisfy their own spec (ansible's ArgumentSpecValidator);
- every README lists every variable and its example names only declared variables;
- task names are sentences and every action is named by its FQCN;
- bad values (an unknown auth method, a port out of range, 'IP:not-an-ip') stop the play in the
  role's validation before any task reaches the host (ansible-playbook, local connection).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
EXPECTED_ROLES = {
    "winrm_listener",
    "winrm_https_cert",
    "winrm_auth",
    "tls12",
    "credssp_delegation",
    "winrm_hardening",
}
# Keys of a task that are not its action.
TASK_KEYWORDS = {
    "name", "when", "loop", "loop_control", "register", "notify", "vars", "tags", "no_log",
    "delegate_to", "run_once", "changed_when", "failed_when", "ignore_errors", "async", "poll",
    "listen", "become", "become_user", "environment", "until", "retries", "delay", "check_mode",
    "block", "rescue", "always", "args", "ignore_unreachable",
}  # fmt: skip
_PREFIXES = "|".join(sorted(EXPECTED_ROLES))
ROLE_VARIABLE = re.compile(rf"\b(?P<name>(?:{_PREFIXES})_[a-z0-9_]+)\b")


def load_yaml(path: Path) -> t.Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def role_spec(role: str) -> dict[str, t.Any]:
    return load_yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]


def role_defaults(role: str) -> dict[str, t.Any]:
    return load_yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}


def all_declared() -> set[str]:
    return {name for role in ROLES for name in role_spec(role)["options"]}


def test_every_expected_role_exists() -> None:
    assert set(ROLES) == EXPECTED_ROLES


@pytest.mark.parametrize("role", ROLES)
def test_role_has_its_files(role: str) -> None:
    for relative in (
        "defaults/main.yml",
        "tasks/main.yml",
        "handlers/main.yml",
        "meta/main.yml",
        "README.md",
    ):
        assert (ROLES_DIR / role / relative).is_file(), f"{role}/{relative} is missing"
    assert load_yaml(ROLES_DIR / role / "meta" / "main.yml")["galaxy_info"]["role_name"] == role


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_spec_declare_the_same_variables(role: str) -> None:
    options = role_spec(role)["options"]
    defaults = role_defaults(role)
    assert set(defaults) - set(options) == set(), "in defaults but not in argument_specs"
    assert set(options) - set(defaults) == set(), "in argument_specs but not in defaults"
    for name, option in options.items():
        assert name.startswith(f"{role}_"), f"{name} lacks the prefix {role}_"
        assert option.get("type"), f"{name} has no type"
        assert option.get("description"), f"{name} has no description"
        assert "default" in option, f"{name} has no default in the spec"
        assert option["default"] == defaults[name], f"{name}: spec and defaults/main.yml differ"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_pass_their_own_spec(role: str) -> None:
    options = role_spec(role)["options"]
    result = ArgumentSpecValidator(options).validate(role_defaults(role))
    assert result.error_messages == []


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_variables_and_example_uses_declared_ones(role: str) -> None:
    readme = (ROLES_DIR / role / "README.md").read_text(encoding="utf-8")
    for name, option in role_spec(role)["options"].items():
        assert f"`{name}`" in readme, f"README does not list {name}"
        assert f"`{json.dumps(option['default'])}`" in readme, f"README lacks the default of {name}"
    examples = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert examples, "README has no yaml example"
    declared = all_declared()
    for example in examples:
        load_yaml_text = yaml.safe_load(example)
        assert load_yaml_text, "example is empty"
        used = {m["name"] for m in ROLE_VARIABLE.finditer(example)}
        assert used, "the example sets no role variable"
        # Facts the roles set for each other are documented in the READMEs too.
        undeclared = (
            used - declared - {"winrm_https_cert_issuer_path", "winrm_https_cert_active_thumbprint"}
        )
        assert undeclared == set(), f"example names undeclared variables {sorted(undeclared)}"
        # Structurally too: every key under a role entry's vars belongs to that role.
        for play in load_yaml_text:
            for entry in play.get("roles", []):
                name = entry["role"].removeprefix("winops.remoting.")
                extra = set(entry.get("vars", {})) - set(role_spec(name)["options"])
                assert extra == set(), (
                    f"example passes {sorted(extra)} to {name}, which does not declare them"
                )


def iter_tasks(tasks: list[dict[str, t.Any]]) -> t.Iterator[dict[str, t.Any]]:
    for task in tasks or []:
        yield task
        for section in ("block", "rescue", "always"):
            yield from iter_tasks(task.get(section, []))


@pytest.mark.parametrize(
    "path",
    sorted(p for p in ROLES_DIR.glob("*/*/*.yml") if p.parent.name in {"tasks", "handlers"}),
    ids=lambda p: p.relative_to(ROLES_DIR).as_posix(),
)
def test_tasks_have_sentence_names_and_fqcn(path: Path) -> None:
    for task in iter_tasks(load_yaml(path)):
        name = task.get("name", "")
        assert name and name[0].isupper(), f"task without a sentence name: {task}"
        actions = [k for k in task if k not in TASK_KEYWORDS]
        if "block" in task:
            continue
        assert len(actions) == 1, f"{name}: cannot tell the action from {sorted(task)}"
        assert actions[0].count(".") >= 2, f"{name}: action '{actions[0]}' is not an FQCN"


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("*", True),
        ("IP:192.0.2.10", True),
        ("IP:2001:db8::10", True),
        ("IP:::1", True),
        ("MAC:32-a3-58-90-be-cc", True),
        # MS-WSMV 2.2.4.19: 6 or 8 pairs (EUI-48 or EUI-64), nothing in between.
        ("MAC:32-a3-58-90-be-cc-00-11", True),
        ("MAC:32-a3-58-90-be-cc-00", False),
        ("IP:not-an-ip", False),
        ("IP:256.1.1.1", False),
        ("IP:10.1", False),
        ("MAC:32:a3:58:90:be:cc", False),
        ("192.0.2.10", False),
        ("", False),
    ],
)
def test_listener_address_pattern(address: str, valid: bool) -> None:
    pattern = load_yaml(ROLES_DIR / "winrm_listener" / "vars" / "main.yml")[
        "__winrm_listener_address_pattern"
    ]
    # The role uses Jinja's `match` test, which is Python's re.match.
    assert bool(re.match(pattern, address)) is valid


def run_role(tmp_path: Path, role: str, variables: dict[str, t.Any]) -> dict[str, t.Any]:
    """Run one role against a local host and return the json callback's record of the play."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "target",
                    "gather_facts": False,
                    "roles": [{"role": f"winops.remoting.{role}", "vars": variables}],
                }
            ]
        ),
        encoding="utf-8",
    )
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"target ansible_connection=local ansible_python_interpreter={sys.executable}\n",
        encoding="utf-8",
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "dev"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0, "the play was expected to stop"
    return json.loads(result.stdout)


def first_failure(record: dict[str, t.Any]) -> tuple[str, str]:
    for task in record["plays"][0]["tasks"]:
        outcome = task["hosts"]["target"]
        if outcome.get("failed"):
            return task["task"]["name"], str(outcome.get("msg", ""))
    raise AssertionError("no task failed")


@pytest.mark.parametrize(
    ("role", "variables", "failing_task", "words"),
    [
        pytest.param(
            "winrm_auth",
            {"winrm_auth_methods": ["kerberos", "telepathy"]},
            "Validating arguments against arg spec 'main'",
            ["winrm_auth_methods", "telepathy"],
            id="unknown-auth-method",
        ),
        pytest.param(
            "winrm_listener",
            {"winrm_listener_https_port": 70000},
            "Check the listener ports before changing anything",
            ["winrm_listener_https_port (70000)", "between 1 and 65535"],
            id="port-out-of-range",
        ),
        pytest.param(
            "winrm_listener",
            {"winrm_listener_https_addresses": ["IP:not-an-ip"]},
            "Check the listener addresses before changing anything",
            ["winrm_listener_https_addresses", "IP:not-an-ip"],
            id="address-not-an-ip",
        ),
        pytest.param(
            "winrm_listener",
            {"winrm_listener_firewall_local_addresses": ["192.0.2.10/33", "LocalSubnet"]},
            "Check the firewall's local addresses before changing anything",
            ["winrm_listener_firewall_local_addresses", "192.0.2.10/33", "LocalSubnet"],
            id="local-address-not-an-address",
        ),
        pytest.param(
            "winrm_listener",
            {"winrm_listener_firewall_local_addresses": ["Any", "192.0.2.10"]},
            "Check the firewall's local addresses before changing anything",
            ["winrm_listener_firewall_local_addresses", "'Any' alone"],
            id="local-address-any-not-alone",
        ),
        # The cut-off guards ask the play's own WinRM connection (a local one cannot be cut
        # off): tests/integration/guards runs them against winhost.
        pytest.param(
            "winrm_auth",
            {"winrm_auth_methods": ["negotiate", "credssp"], "credssp_delegation_server": False},
            "Check that CredSSP is asked for consistently by this role and credssp_delegation",
            ["winrm_auth_methods", "credssp_delegation_server"],
            id="auth-credssp-contradiction",
        ),
        pytest.param(
            "winrm_hardening",
            {},
            "Check that the remoting accounts are known before restricting remoting",
            ["winrm_hardening_remoting_accounts", "no ansible_user"],
            id="hardening-without-ansible-user",
        ),
        pytest.param(
            "tls12",
            {"tls12_legacy_protocols": ["TLS 1.2"]},
            "Validating arguments against arg spec 'main'",
            ["tls12_legacy_protocols", "TLS 1.2"],
            id="tls12-cannot-be-legacy",
        ),
        # Values as `-e name=value` gives them: strings, which the argument spec accepts but
        # does not convert. Compared as text, "90" > "100"; a string is no condition in 2.19.
        pytest.param(
            "winrm_https_cert",
            {
                "winrm_https_cert_validity_days": "90",
                "winrm_https_cert_renew_days_before_expiry": "100",
            },
            "Check that the certificate source has what it needs",
            ["winrm_https_cert_validity_days (90) must exceed"],
            id="extra-vars-numbers-compare-as-numbers",
        ),
    ],
)
def test_bad_variable_stops_before_the_host_is_touched(
    tmp_path: Path, role: str, variables: dict[str, t.Any], failing_task: str, words: list[str]
) -> None:
    name, message = first_failure(run_role(tmp_path, role, variables))
    assert failing_task in name, (name, message)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_valid_variables_pass_the_validation(tmp_path: Path) -> None:
    record = run_role(
        tmp_path, "winrm_listener", {"winrm_listener_https_addresses": ["IP:192.0.2.10", "*"]}
    )
    name, _ = first_failure(record)
    # The checks pass; the play only stops at the first task that needs a Windows host.
    assert not name.endswith("Check the listener addresses and ports before changing anything")
    assert not name.endswith("Validating arguments against arg spec 'main'")


@pytest.mark.parametrize(
    ("role", "variables", "check"),
    [
        # "false" from -e is a non-empty string: true to Jinja's `and`, so the check refused it.
        (
            "winrm_auth",
            {"winrm_auth_methods": ["basic"], "winrm_auth_allow_unencrypted": "false"},
            "Check that Basic is only asked for together with encryption",
        ),
        (
            "credssp_delegation",
            {"credssp_delegation_client": "false", "credssp_delegation_delegate_computers": []},
            "Check that the client role has computers to delegate to",
        ),
    ],
)
def test_booleans_given_as_extra_vars_strings_pass_the_checks(
    tmp_path: Path, role: str, variables: dict[str, t.Any], check: str
) -> None:
    name, message = first_failure(run_role(tmp_path, role, variables))
    assert not name.endswith(check), (name, message)
    assert not name.endswith("Validating arguments against arg spec 'main'"), (name, message)


PLAYBOOKS = sorted(p.stem for p in (REPO / "playbooks").glob("*.yml"))


def test_shipped_playbooks() -> None:
    assert set(PLAYBOOKS) >= {"setup", "harden", "tls12"}


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_passes_syntax_check(tmp_path: Path, playbook: str) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[windows]\nhost1 ansible_host=127.0.10.1\n", encoding="utf-8")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "dev"),
        ANSIBLE_HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            "--syntax-check",
            f"winops.remoting.{playbook}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


FIRST_HOST_QUESTION = {
    "setup": "winops.remoting.winrm_https_cert : Provide the HTTPS certificate",
    "harden": "winops.remoting.winrm_hardening : Ask which account the play connects as",
}


@pytest.mark.parametrize("playbook", sorted(FIRST_HOST_QUESTION))
def test_playbook_role_variables_pass_validation(tmp_path: Path, playbook: str) -> None:
    """The role variables the playbooks template (names for an IP target) satisfy the specs."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[windows]\nhost1 ansible_host=127.0.10.1 ansible_user=ansible ansible_connection=local ansible_python_interpreter={sys.executable}\n",
        encoding="utf-8",
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "dev"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            f"winops.remoting.{playbook}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    record = json.loads(result.stdout)
    tasks = record["plays"][0]["tasks"]
    validation = [task for task in tasks if "Validating arguments" in task["task"]["name"]]
    assert validation and not any(task["hosts"]["host1"].get("failed") for task in validation)
    # With no Windows host behind the local connection, the first PowerShell module the play
    # does not ignore is where it stops: harden's validation asks the host who connects.
    failed = [
        task["task"]["name"]
        for task in tasks
        if task["hosts"]["host1"].get("failed") and not task["hosts"]["host1"].get("ignore_errors")
    ]
    assert failed == [FIRST_HOST_QUESTION[playbook]]


DISRUPTIVE_ACTIONS = {"ansible.windows.win_reboot", "ansible.windows.win_service"}


# Reboots that are tasks, each run only when its own change fact says so: tls12's reboot ends
# the role (roles after it must meet the new SCHANNEL settings, and a handler flushed there would
# run other roles' handlers early); its block's `always` also reboots after a later failure.
CHANGE_GATED_REBOOTS = {
    ("tls12", "Reboot to apply the SCHANNEL settings"): "__tls12_schannel_changed | bool",
}


@pytest.mark.parametrize("role", ROLES)
def test_reboots_and_restarts_only_happen_after_a_change(role: str) -> None:
    """A reboot or a WinRM restart comes from a handler, or from a task gated on a change."""
    for path in (ROLES_DIR / role / "tasks").glob("*.yml"):
        for task in iter_tasks(load_yaml(path)):
            if not DISRUPTIVE_ACTIONS & set(task):
                continue
            gate = CHANGE_GATED_REBOOTS.get((role, task.get("name")))
            when = task.get("when", [])
            assert gate is not None and gate in ([when] if isinstance(when, str) else when), (
                f"{path.name}: '{task.get('name')}' reboots or restarts without a change gate"
            )
    handlers = load_yaml(ROLES_DIR / role / "handlers" / "main.yml") or []
    notified = set()
    for path in (ROLES_DIR / role / "tasks").glob("*.yml"):
        for task in iter_tasks(load_yaml(path)):
            notify = task.get("notify", [])
            notified.update([notify] if isinstance(notify, str) else notify)
    for handler in handlers:
        topics = {handler["name"], handler.get("listen", handler["name"])}
        assert topics & notified, f"handler '{handler['name']}' is never notified"


def facts_and_registers() -> set[str]:
    """Names the roles' own tasks create (set_fact keys and register names)."""
    created: set[str] = set()
    for path in ROLES_DIR.glob("*/tasks/*.yml"):
        for task in iter_tasks(load_yaml(path)):
            created.update(task.get("ansible.builtin.set_fact", {}) or {})
            if "register" in task:
                created.add(task["register"])
    return created


@pytest.mark.parametrize("role", ROLES)
def test_role_files_use_only_known_role_variables(role: str) -> None:
    """A misspelt variable in a task would be undefined at run time; catch it here."""
    known = all_declared() | facts_and_registers()
    for path in sorted((ROLES_DIR / role).glob("*/*.yml")):
        if path.parent.name == "meta":
            continue
        used = {m["name"] for m in ROLE_VARIABLE.finditer(path.read_text(encoding="utf-8"))}
        unknown = used - known
        assert unknown == set(), f"{path.relative_to(ROLES_DIR)} uses {sorted(unknown)}"


CONDITION_KEYS = ("when", "that", "changed_when", "failed_when")


def expressions(node: t.Any, key: str = "") -> t.Iterator[str]:
    """The Jinja expressions of a role file: conditions, and templated strings other than
    messages, and a bare `{{ name }}` handed to a module, which converts it itself."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            if child_key not in ("msg", "fail_msg", "success_msg"):
                yield from expressions(child, str(child_key))
    elif isinstance(node, list):
        for child in node:
            yield from expressions(child, key)
    elif isinstance(node, str):
        if key in CONDITION_KEYS:
            yield node
        elif "{{" in node and not re.fullmatch(r"\s*\{\{\s*[a-z0-9_]+\s*\}\}\s*", node):
            yield node


@pytest.mark.parametrize("role", ROLES)
def test_bool_and_int_variables_are_converted_where_they_decide(role: str) -> None:
    """-e name=value gives strings, which the argument spec accepts without converting them:
    a condition or expression must convert bool and int variables itself (| bool, | int)."""
    options = role_spec(role)["options"]
    typed = {
        name: spec["type"] for name, spec in options.items() if spec.get("type") in ("bool", "int")
    }
    unconverted = []
    for path in sorted((ROLES_DIR / role).glob("*/*.yml")):
        if path.parent.name not in ("tasks", "handlers", "vars"):
            continue
        for text in expressions(load_yaml(path)):
            for name, kind in typed.items():
                for found in re.finditer(rf"\b{name}\b", text):
                    if not re.match(rf"\s*\|\s*{kind}\b", text[found.end() :]):
                        unconverted.append(f"{path.relative_to(ROLES_DIR)}: {name} in {text!r}")
    assert not unconverted, "\n".join(unconverted)
