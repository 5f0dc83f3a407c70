"""ansible.windows.setup (gather_facts): a truthful subset of the facts, per gather_subset.

Facts come from the host's model (computer name, FQDN, host.facts(): OS, addresses, clock
offset, time zone) and from the running user. A fact winhost does not know is left out, never
made up. Subsets modelled: date_time, distribution, dns, env, platform, powershell_version, user,
all_ipv4_addresses, all_ipv6_addresses, interfaces, windows_domain, processor, memory.
"""

from __future__ import annotations

import datetime
import ipaddress
import typing as t

from winhost.modules import ModuleRun, Option, register

_GROUPS = {
    "min": {
        "date_time",
        "distribution",
        "dns",
        "env",
        "local",
        "platform",
        "powershell_version",
        "user",
    },
    "network": {
        "all_ipv4_addresses",
        "all_ipv6_addresses",
        "interfaces",
        "windows_domain",
        "winrm",
    },
    "hardware": {"bios", "memory", "processor", "uptime", "virtual"},
    "external": {"facter"},
}
_ALL = set().union(*_GROUPS.values())


def selected_subsets(gather_subset: list[str], warnings: list[str]) -> set[str]:
    """The subset arithmetic of setup.ps1: start from all, '!x' removes, 'x' adds back."""
    actual = set(_ALL)
    explicit: set[str] = set()
    exclude: set[str] = set()
    for item in gather_subset:
        if item.startswith("!"):
            name = item[1:]
            if name == "all":
                exclude |= _ALL - _GROUPS["min"]
            elif name in _GROUPS:
                exclude |= _GROUPS[name]
            elif name in _ALL:
                exclude.add(name)
        elif item == "all":
            explicit |= _ALL
        elif item in _GROUPS:
            explicit |= _GROUPS[item]
        elif item in _ALL:
            explicit.add(item)
        else:
            warnings.append(f"invalid value {item} specified in gather_subset")
    return (actual - exclude) | explicit


def _date_time(now: datetime.datetime, tz_name: str) -> dict[str, t.Any]:
    utc = now.astimezone(datetime.UTC)
    offset = now.strftime("%z")
    return {
        "date": now.strftime("%Y-%m-%d"),
        "day": now.strftime("%d"),
        "epoch": str(int(utc.timestamp())),
        "epoch_int": int(utc.timestamp()),
        "epoch_local": str(int(now.replace(tzinfo=datetime.UTC).timestamp())),
        "hour": now.strftime("%H"),
        "iso8601": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso8601_basic": now.strftime("%Y%m%dT%H%M%S%f"),
        "iso8601_basic_short": now.strftime("%Y%m%dT%H%M%S"),
        "iso8601_micro": utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "minute": now.strftime("%M"),
        "month": now.strftime("%m"),
        "second": now.strftime("%S"),
        "time": now.strftime("%H:%M:%S"),
        "tz": tz_name,
        "tz_offset": f"{offset[:3]}:{offset[3:]}" if offset else "+00:00",
        "weekday": now.strftime("%A"),
        "weekday_number": str(int(now.strftime("%w"))),
        "weeknumber": now.strftime("%W"),
        "year": now.strftime("%Y"),
    }


@register(
    "ansible.windows.setup",
    {
        "_measure_subset": Option(type="bool", default=False),
        "fact_path": Option(type="path"),
        "gather_subset": Option(type="list", elements="str", default=["all"]),
        "gather_timeout": Option(type="int", default=10),
    },
    accepts_extra=True,
)
def setup(run: ModuleRun) -> dict[str, t.Any]:
    host = run.ctx.host
    model = host.facts()
    gather_subset = [str(s) for s in run.params["gather_subset"]]
    subsets = selected_subsets(gather_subset, run.warnings)
    facts: dict[str, t.Any] = {"gather_subset": gather_subset, "module_setup": True}

    if "date_time" in subsets:
        offset = float(model.get("clock_offset_seconds", 0.0))
        tz_name = str(model.get("time_zone", model.get("timezone", "UTC")))
        now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset)
        facts["ansible_date_time"] = _date_time(now, tz_name)
    if "distribution" in subsets:
        version = str(model.get("os_version", "10.0.17763.0"))
        facts.update(
            ansible_distribution=str(
                model.get("os_name", "Microsoft Windows Server 2019 Datacenter")
            ),
            ansible_distribution_version=version,
            ansible_distribution_major_version=version.split(".", maxsplit=1)[0],
            ansible_os_family="Windows",
            ansible_os_name=str(model.get("os_name", "Microsoft Windows Server 2019 Datacenter")),
            ansible_os_product_type="server",
            ansible_os_installation_type="Server",
        )
    if "dns" in subsets or "platform" in subsets:
        fqdn = host.fqdn
        facts.update(
            ansible_hostname=host.computer_name,
            ansible_netbios_name=host.computer_name,
            ansible_fqdn=fqdn,
            ansible_nodename=fqdn,
            ansible_domain=fqdn.split(".", 1)[1] if "." in fqdn else "",
        )
    if "platform" in subsets:
        facts.update(
            ansible_system="Win32NT",
            ansible_kernel=str(model.get("os_version", "10.0.17763.0")),
            ansible_architecture="64-bit",
            ansible_architecture2="x86_64",
            ansible_owner_name="Windows User",
            ansible_reboot_pending=bool(model.get("reboot_pending", False)),
        )
    if "env" in subsets:
        facts["ansible_env"] = dict(run.ctx.env)
    if "powershell_version" in subsets:
        facts["ansible_powershell_version"] = 5
    if "user" in subsets:
        facts.update(
            ansible_user_dir=run.ctx.env["USERPROFILE"],
            ansible_user_gecos="",
            ansible_user_id=run.ctx.user_id,
            ansible_user_sid=run.ctx.sid,
        )
    addresses = [str(a) for a in model.get("ip_addresses", [])]
    if "all_ipv4_addresses" in subsets or "all_ipv6_addresses" in subsets:
        facts["ansible_ip_addresses"] = addresses
    if "all_ipv4_addresses" in subsets:
        facts["ansible_all_ipv4_addresses"] = [a for a in addresses if _version(a) == 4]
    if "all_ipv6_addresses" in subsets:
        facts["ansible_all_ipv6_addresses"] = [a for a in addresses if _version(a) == 6]
    if "interfaces" in subsets and "interfaces" in model:
        facts["ansible_interfaces"] = model["interfaces"]
    if "windows_domain" in subsets:
        facts.update(
            ansible_windows_domain=str(model.get("windows_domain", "WORKGROUP")),
            ansible_windows_domain_member=bool(model.get("windows_domain_member", False)),
            ansible_windows_domain_role=str(model.get("windows_domain_role", "Stand-alone server")),
        )
    if "processor" in subsets and "processor_vcpus" in model:
        facts["ansible_processor_vcpus"] = int(model["processor_vcpus"])
    if "memory" in subsets and "memtotal_mb" in model:
        facts["ansible_memtotal_mb"] = int(model["memtotal_mb"])
    return {"changed": False, "ansible_facts": facts}


def _version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None
