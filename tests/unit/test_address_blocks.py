"""The registry of winhost address blocks (tests/integration/address_blocks.py): no two suites
share a 127.0.10.N address, every block fits 1..254, and no integration test picks an index of
its own outside the registry (a collision fails `make integration` only when both suites hold
their hosts at once, so it must be caught here, before it is run)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml
from integration_source import load_integration_module

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "tests" / "integration"
REGISTRY = INTEGRATION / "address_blocks.py"


address_blocks = load_integration_module("address_blocks.py", "winops_address_blocks")
BLOCKS = address_blocks.BLOCKS


def test_every_block_fits_the_addresses_winhost_can_use() -> None:
    for block in BLOCKS.values():
        assert block.size >= 1, block
        assert 1 <= block.default_first <= block.default_last <= 254, block


def test_no_two_blocks_overlap() -> None:
    for one, other in itertools.combinations(BLOCKS.values(), 2):
        shared = set(range(one.default_first, one.default_last + 1)) & set(
            range(other.default_first, other.default_last + 1)
        )
        assert not shared, (
            f"{one.name} ({one.default_first}-{one.default_last}) and {other.name} "
            f"({other.default_first}-{other.default_last}) share 127.0.10.{sorted(shared)}"
        )


def test_every_block_says_why_and_has_its_own_variable() -> None:
    for name, block in BLOCKS.items():
        assert block.name == name
        assert len(block.reason) > 20, f"{name}: say which suite or test holds the block"
    variables = [block.env for block in BLOCKS.values() if block.env]
    assert len(variables) == len(set(variables)), variables


def test_the_variable_moves_its_block_and_a_bad_value_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guards = address_blocks.block("guards")
    assert (guards.first, guards.address(7)) == (240, "127.0.10.247")
    monkeypatch.setenv("GUARDS_FIRST", "20")
    assert (guards.first, guards.index(0), guards.address(7)) == (20, 20, "127.0.10.27")
    for bad in ("246", "0", "two"):
        monkeypatch.setenv("GUARDS_FIRST", bad)
        with pytest.raises(ValueError, match=r"GUARDS_FIRST=.*allowed: 1\.\.245"):
            _ = guards.first
    monkeypatch.delenv("GUARDS_FIRST")
    with pytest.raises(ValueError, match=r"offset 10 is outside the guards block.*allowed: 0\.\.9"):
        guards.index(10)
    with pytest.raises(KeyError, match="no address block 'nowhere'"):
        address_blocks.block("nowhere")


def test_the_winhost_fixture_defaults_are_its_block() -> None:
    from winhost import pytest_plugin

    fixture = BLOCKS["winhost_fixture"]
    assert (pytest_plugin.DEFAULT_FIRST, pytest_plugin.DEFAULT_HOSTS) == (
        fixture.default_first,
        fixture.size,
    )


def test_the_molecule_scenarios_stay_in_their_block() -> None:
    molecule = BLOCKS["molecule"]
    scenarios = sorted((REPO / "extensions" / "molecule").glob("*/winhost.yml"))
    assert scenarios
    for path in scenarios:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
        first, hosts = settings["winhost_first"], settings.get("winhost_hosts", 1)
        assert molecule.default_first <= first <= first + hosts - 1 <= molecule.default_last, path


# What picking an index by hand looks like: an environment default (`"GUARDS_FIRST", "240"`), a
# literal first= (`first=110`, `"--first", "210"`), a module constant (`LATENCY_INDEX = 232`) or
# a literal index where start_session and build_host take it positionally.
OWN_INDEX = re.compile(
    r"""_FIRST["']\s*,\s*["']\d+"""
    r"""|\bfirst\s*=\s*\d+"""
    r"""|["']--first["']\s*,\s*["']\d+"""
    r"""|^\s*[A-Z0-9_]*(?:FIRST|INDEX)[A-Z0-9_]*\s*(?::\s*int\s*)?=\s*\d+"""
    r"""|\bstart_session\((?:[^,]*,){3}\s*\d+"""
    r"""|\bbuild_host\([^,]*,\s*\d+""",
    re.MULTILINE,
)


def test_no_integration_test_picks_an_index_outside_the_registry() -> None:
    own_picks = [
        f"{path.relative_to(REPO)}: {match.group(0).strip()}"
        for path in sorted(INTEGRATION.rglob("*.py"))
        if path != REGISTRY
        for match in OWN_INDEX.finditer(path.read_text(encoding="utf-8"))
    ]
    assert own_picks == [], "take the first index from address_blocks.py:\n" + "\n".join(own_picks)


def test_the_check_sees_an_index_picked_by_hand() -> None:
    for line in (
        'FIRST = int(os.environ.get("GUARDS_FIRST", "240"))',
        "LATENCY_INDEX = 232  # its own address",
        "E2E_FIRST_HOST = 21",
        'session = start_session(state_dir, 1, "default", first=230)',
        '"start", "--state-dir", str(state_dir), "--first", "210"',
        'start_session(tmp_path_factory.mktemp("winhost-open"), 1, "open", 200)',
        'profiles.build_host(\n        state_dir, 220, "stock", ca, secrets\n    )',
    ):
        assert OWN_INDEX.search(line), line
    assert not OWN_INDEX.search('FIRST = block("guards").first')


@pytest.mark.parametrize("suite", ["e2e", "kerberos"])
def test_the_persistence_off_pass_has_room_for_the_whole_suite(suite: str) -> None:
    # `make integration` moves the suite onto `<suite>_persist_off` through its environment
    # variable; a smaller block would put its last hosts on another suite's addresses.
    moved = BLOCKS[f"{suite}_persist_off"]
    assert moved.size == BLOCKS[suite].size, moved
    assert BLOCKS[suite].env is not None, BLOCKS[suite]
