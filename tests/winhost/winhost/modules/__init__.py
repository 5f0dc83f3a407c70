"""Python emulations of the Windows modules Ansible runs, selected from the exec manifest.

A module is identified by the `Script` parameter of the manifest's module_wrapper.ps1 action:
"ansible_collections.<ns>.<coll>.plugins.modules.<name>.ps1" (collection modules) or the
manifest script's path. Only fully qualified names registered here run; any other module fails
loudly with a message naming it and the modules winhost emulates.

Emulations follow the module's own conventions: Ansible.Basic modules validate their options
(unsupported parameters, choices, required) and return `invocation`; legacy modules
(Parse-Args/Exit-Json) do not. Results are written as one JSON line, exit code 0 on success and
1 on failure, as the module wrapper does.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import ntpath
import pkgutil
import typing as t

from winhost.execution.context import ExecContext
from winhost.execution.errors import WrapperFailure
from winhost.execution.process import ProgramIO


class ModuleFailure(Exception):
    """Fail-Json / $module.FailJson: msg plus extra result keys."""

    def __init__(self, msg: str, **extra: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


class UnhandledException(Exception):
    """An exception escaping the module script (e.g. win_ping's `throw "boom"`)."""


@dataclasses.dataclass
class Option:
    type: str = "str"  # str, bool, int, path, list, dict, raw
    default: t.Any = None
    required: bool = False
    choices: tuple[t.Any, ...] | None = None
    aliases: tuple[str, ...] = ()
    no_log: bool = False
    elements: str | None = None  # the type of a list's items
    options: dict[str, Option] | None = None  # a dict's sub-options (checked by the emulation)


@dataclasses.dataclass
class ModuleRun:
    """What an emulation gets: the context, validated params and the module's settings."""

    ctx: ExecContext
    params: dict[str, t.Any]
    check_mode: bool
    diff: bool
    tmpdir: str | None
    module_name: str
    environment: dict[str, str]
    warnings: list[str] = dataclasses.field(default_factory=list)

    def path(self, value: str) -> str:
        """`type = 'path'` conversion: environment variables expanded."""
        return self.ctx.expand(value)


ModuleFunc = t.Callable[[ModuleRun], dict[str, t.Any]]


@dataclasses.dataclass
class ModuleDef:
    name: str
    func: ModuleFunc
    options: dict[str, Option] | None  # None: a legacy (Parse-Args) module without validation
    supports_check_mode: bool = True
    accepts_extra: bool = False  # unknown options are accepted as raw values (setup does this)


_REGISTRY: dict[str, ModuleDef] = {}


def register(
    name: str,
    options: dict[str, Option] | None,
    *,
    supports_check_mode: bool = True,
    accepts_extra: bool = False,
) -> t.Callable[[ModuleFunc], ModuleFunc]:
    def decorator(func: ModuleFunc) -> ModuleFunc:
        _REGISTRY[name] = ModuleDef(name, func, options, supports_check_mode, accepts_extra)
        return func

    return decorator


def emulated_modules() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def module_definition(name: str) -> ModuleDef:
    """The emulation registered under a fully qualified module name (KeyError if none)."""
    _load()
    return _REGISTRY[name]


def _load() -> None:
    # Importing a module of this package registers its emulations; every module is one.
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def identify(script_name: str, scripts: dict[str, t.Any]) -> tuple[str, str]:
    """(collection, module name) from the module_wrapper Script parameter."""
    base = script_name[:-4] if script_name.lower().endswith(".ps1") else script_name
    if base.startswith("ansible_collections.") and ".plugins.modules." in base:
        prefix, name = base.split(".plugins.modules.", 1)
        return prefix[len("ansible_collections.") :], name
    info = scripts.get(script_name) or {}
    path = str(info.get("path") or script_name) if isinstance(info, dict) else script_name
    stem = ntpath.basename(path.replace("/", "\\"))
    stem = stem[:-4] if stem.lower().endswith(".ps1") else stem
    # ansible-core's own PowerShell modules (ansible.builtin) have no collection prefix.
    return "ansible.builtin", stem


def run_module_action(
    ctx: ExecContext,
    io: ProgramIO,
    params: dict[str, t.Any],
    scripts: dict[str, t.Any],
    temp_path: str | None,
) -> None:
    _load()
    script_name = str(params.get("Script") or "")
    if not params.get("ForModule"):
        raise WrapperFailure(
            f"winhost does not model running the PowerShell script '{script_name}' (the script "
            "action plugin / non-module scripts are not emulated)"
        )
    collection, name = identify(script_name, scripts)
    definition = _REGISTRY.get(f"{collection}.{name}")
    if definition is None:
        result = {
            "failed": True,
            "msg": (
                f"winhost does not emulate the module {collection}.{name}; emulated modules: "
                + ", ".join(emulated_modules())
            ),
        }
        io.write(json.dumps(result))
        io.exit(1)
    complex_args: dict[str, t.Any] = {}
    for variable in params.get("Variables") or []:
        if isinstance(variable, dict) and variable.get("Name") == "complex_args":
            complex_args = dict(variable.get("Value") or {})
    environment = {str(k): str(v) for k, v in (params.get("Environment") or {}).items()}
    if environment:
        ctx.env.update(environment)
    result, rc = _invoke(definition, ctx, complex_args, temp_path, environment)
    io.write(json.dumps(result, ensure_ascii=False))
    io.exit(rc)


def _invoke(
    definition: ModuleDef,
    ctx: ExecContext,
    complex_args: dict[str, t.Any],
    temp_path: str | None,
    environment: dict[str, str],
) -> tuple[dict[str, t.Any], int]:
    module_name = str(complex_args.get("_ansible_module_name") or definition.name)
    check_mode = _to_bool(complex_args.get("_ansible_check_mode", False))
    diff = _to_bool(complex_args.get("_ansible_diff", False))
    ignore_unknown = _to_bool(complex_args.get("_ansible_ignore_unknown_opts", False))
    tmpdir = complex_args.get("_ansible_tmpdir") or temp_path
    user_args = {k: v for k, v in complex_args.items() if not k.startswith("_ansible_")}
    is_basic = definition.options is not None
    secrets = _no_log_values(definition.options or {}, user_args)
    try:
        if is_basic:
            assert definition.options is not None
            options = dict(definition.options)
            if definition.accepts_extra:
                options.update({k: Option(type="raw") for k in user_args if k not in options})
            params = validate(options, user_args, module_name, ignore_unknown)
        else:
            params = dict(complex_args)
        if check_mode and not definition.supports_check_mode:
            result: dict[str, t.Any] = {
                "changed": False,
                "skipped": True,
                "msg": f"remote module ({module_name}) does not support check mode",
            }
            return _finish(result, params if is_basic else None, secrets), 0
        run = ModuleRun(
            ctx=ctx,
            params=params,
            check_mode=check_mode,
            diff=diff,
            tmpdir=str(tmpdir) if tmpdir else None,
            module_name=module_name,
            environment=environment,
        )
        result = definition.func(run)
        result.setdefault("changed", False)
        if run.warnings:
            result["warnings"] = run.warnings
        return _finish(result, params if is_basic else None, secrets), 0
    except ModuleFailure as failure:
        result = {"changed": False, **failure.extra, "failed": True, "msg": failure.msg}
        return _finish(result, user_args if is_basic else None, secrets), 1
    except UnhandledException as err:
        return {
            "failed": True,
            "msg": f"Unhandled exception while executing module: {err}",
            "exception": f"{err}\r\nAt {definition.name} (emulated by winhost)",
        }, 1


def _no_log_values(options: dict[str, Option], args: dict[str, t.Any]) -> set[str]:
    """The values given for no_log options (aliases included), as Ansible.Basic collects them."""
    names = {name for name, opt in options.items() if opt.no_log}
    names |= {alias for name in names for alias in options[name].aliases}
    return {str(args[n]) for n in names if args.get(n) not in (None, "")}


def _scrub(value: t.Any, secrets: t.AbstractSet[str]) -> t.Any:
    """Ansible.Basic's RemoveNoLogValues: a value that is (or, for a number or bool, contains)
    a secret becomes VALUE_SPECIFIED_IN_NO_LOG_PARAMETER; a string containing one has it
    replaced by ********."""
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if value is None or not secrets:
        return value
    text = str(value)  # True/False for a bool, as .NET prints it
    if text in secrets or (not isinstance(value, str) and any(s in text for s in secrets)):
        return "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "********")
    return value


def _finish(
    result: dict[str, t.Any],
    invocation_params: dict[str, t.Any] | None,
    secrets: t.AbstractSet[str] = frozenset(),
) -> dict[str, t.Any]:
    if invocation_params is not None and "invocation" not in result:
        result["invocation"] = {"module_args": _scrub(invocation_params, secrets)}
    if "msg" in result:
        result["msg"] = _scrub(result["msg"], secrets)
    return result


def _to_bool(value: t.Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "on", "1", "true", "y", "t"):
        return True
    if text in ("no", "off", "0", "false", "n", "f", ""):
        return False
    raise ValueError(text)


def validate(
    options: dict[str, Option], args: dict[str, t.Any], module_name: str, ignore_unknown: bool
) -> dict[str, t.Any]:
    """Ansible.Basic's option checks: aliases, unsupported parameters, required, types,
    choices and defaults. Messages follow Ansible.Basic's."""
    alias_to_name = {alias: name for name, opt in options.items() for alias in opt.aliases}
    params: dict[str, t.Any] = {}
    unsupported: list[str] = []
    for key, value in args.items():
        name = key if key in options else alias_to_name.get(key)
        if name is None:
            unsupported.append(key)
            continue
        params[name] = value
    if unsupported and not ignore_unknown:
        legal = sorted([*options, *alias_to_name])
        raise ModuleFailure(
            f"Unsupported parameters for ({module_name}) module: {', '.join(unsupported)}. "
            f"Supported parameters include: {', '.join(legal)}"
        )
    missing = [n for n, o in options.items() if o.required and params.get(n) is None]
    if missing:
        raise ModuleFailure(f"missing required arguments: {', '.join(missing)}")
    for name, opt in options.items():
        if params.get(name) is None:
            params[name] = opt.default
            continue
        params[name] = _convert(name, opt, params[name])
        if opt.choices is None:
            continue
        # Each item of a list is checked; strings match in any case (winops_common.check_choice).
        values = params[name] if opt.type == "list" else [params[name]]
        for value in values:
            if not _is_choice(value, opt.choices):
                how_many = "one or more of" if opt.type == "list" else "one of"
                raise ModuleFailure(
                    f"value of {name} must be {how_many}: {', '.join(map(str, opt.choices))}. "
                    f"Got no match for: {value}"
                )
    return params


def _is_choice(value: t.Any, choices: tuple[t.Any, ...]) -> bool:
    if isinstance(value, str):
        return value.lower() in (str(c).lower() for c in choices)
    return value in choices


def _convert(name: str, opt: Option, value: t.Any) -> t.Any:
    try:
        if opt.type == "bool":
            return _to_bool(value)
        if opt.type == "int":
            return int(value)
        if opt.type in ("str", "path"):
            if isinstance(value, dict | list):
                raise ValueError(type(value).__name__)
            return str(value)
        if opt.type == "list":
            if isinstance(value, list):
                return value
            return [v.strip() for v in str(value).split(",")]
    except ValueError as err:
        raise ModuleFailure(
            f"argument for {name} is of type {type(value).__name__} and we were unable to "
            f"convert to {opt.type}: {err}"
        ) from err
    return value
