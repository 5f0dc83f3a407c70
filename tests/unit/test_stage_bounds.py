"""The stage bounds (tests/integration/e2e/stage_bounds.py) and the figures that
docs/troubleshooting.md ("How long each stage can take") gives for the defaults: one source, so a
change to either shows here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from integration_source import load_integration_module

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "troubleshooting.md"


stage_bounds = load_integration_module("e2e/stage_bounds.py", "winops_stage_bounds")


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## How long each stage can take")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _row(stage: str) -> str:
    for line in _section().splitlines():
        if line.startswith(f"| {stage} |"):
            return line
    raise AssertionError(f"no row for {stage!r} in the table of {DOC}")


@pytest.mark.parametrize(
    ("stage", "row"),
    [
        ("connect", "connect"),
        ("auth", "auth"),
        ("open", "shell or pool open"),
        ("command", "command start"),
        ("stop", "stop (after a failure or K)"),
        ("close", "close"),
    ],
)
def test_the_documented_default_figures_are_the_computed_ones(stage: str, row: str) -> None:
    winrm = stage_bounds.stage_bounds(stage_bounds.BoundOptions("winrm"))[stage]
    psrp = stage_bounds.stage_bounds(stage_bounds.BoundOptions("psrp"))[stage]
    assert _row(row).endswith(f"| {winrm:g} s / {psrp:g} s |"), (_row(row), winrm, psrp)


def test_receive_is_unbounded_without_command_timeout_and_documented_with_it() -> None:
    for family in ("winrm", "psrp"):
        bounds = stage_bounds.stage_bounds(stage_bounds.BoundOptions(family))
        assert math.isinf(bounds["receive"]) and math.isinf(bounds["transfer"])
    winrm, psrp = (
        stage_bounds.stage_bounds(stage_bounds.BoundOptions(family, command_timeout=60))["receive"]
        for family in ("winrm", "psrp")
    )
    assert f"unbounded without K ({winrm:g} s / {psrp:g} s with K = 60)" in _row("receive")


def test_a_retry_costs_every_attempt_and_every_capped_sleep() -> None:
    options = stage_bounds.BoundOptions("winrm", read_timeout=3, retries=6, backoff=8)
    # B, 2B, 4B, 8B (=64, capped at 30), ...: 8 + 16 + 30 * 4
    assert stage_bounds.our_backoff(options) == 8 + 16 + 30 * 4
    assert stage_bounds.retried(options, 10) == 7 * 10 + 144
    # urllib3 sleeps nothing before its first retry, then 2B, 4B... (psrp only).
    psrp = stage_bounds.BoundOptions("psrp", retries=3, backoff=1)
    assert stage_bounds.urllib3_backoff(psrp) == 2 + 4
    assert stage_bounds.urllib3_backoff(stage_bounds.BoundOptions("winrm")) == 0


def test_more_time_or_retries_never_lowers_a_bound() -> None:
    base = stage_bounds.BoundOptions("psrp", command_timeout=10)
    for change in (
        {"read_timeout": 60},
        {"connection_timeout": 60},
        {"retries": 5},
        {"backoff": 4.0},
        {"command_timeout": 20},
    ):
        wider = stage_bounds.BoundOptions("psrp", **{"command_timeout": 10, **change})
        before, after = stage_bounds.stage_bounds(base), stage_bounds.stage_bounds(wider)
        assert all(after[stage] >= before[stage] for stage in stage_bounds.STAGES), change


def test_bad_options_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="family must be winrm or psrp"):
        stage_bounds.BoundOptions("ssh")
    with pytest.raises(ValueError, match="auth must be one of certificate, basic"):
        stage_bounds.BoundOptions("winrm", auth="digest")
