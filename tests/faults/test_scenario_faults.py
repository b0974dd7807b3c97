"""A scenario's `faults:` section puts a proxy in front of the backend; tests reconfigure it live."""

from __future__ import annotations

import pytest

from deploycheck.errors import InputError
from deploycheck.sandbox.faultproxy import FaultControl
from deploycheck.sandbox.manager import SandboxInfo
from deploycheck.sandbox.scenario import load_scenario

from conftest import findings_for, phase2_scenario

pytestmark = pytest.mark.faults

PHASE2 = "nba-phase2-raw-processors"
FAULTS = """
faults:
  api:
    - {fault: status, status: 503, path: "/services/nba-phase2-raw-processors$"}
"""


def test_scenario_fault_reaches_the_suite_and_is_cleared_live(suite, tmp_path):
    scenario = phase2_scenario(tmp_path / "faulty", service="    revisions: [{suffix: 00001-abc, image: app}]")
    with open(scenario / "scenario.yaml", "a") as handle:
        handle.write(FAULTS)
    info: SandboxInfo = suite.reuse_sandbox(str(scenario))
    assert set(info.fault_controls) == {"api"} and info.api_url != info.upstreams["api"]

    result = suite.run(
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
        "-k",
        "traffic",
        "--deadline",
        "2",
        "--report-dir",
        "out",
    )
    [finding] = findings_for(suite.report(), "traffic", PHASE2)
    assert finding["outcome"] == "error" and "currently unavailable" in finding["summary"], finding
    assert result.ret == 1

    FaultControl(info.fault_controls["api"]).clear()
    assert (
        suite.run(
            "--service",
            PHASE2,
            "--target",
            f"sandbox:{scenario}",
            "--pyargs",
            "deploycheck_pytest.checks.test_cloudrun",
            "-k",
            "traffic",
        ).ret
        == 0
    )


def test_a_bad_fault_rule_names_the_scenario_file(tmp_path):
    scenario = phase2_scenario(tmp_path / "bad", service="    revisions: [{suffix: 00001-abc, image: app}]")
    with open(scenario / "scenario.yaml", "a") as handle:
        handle.write("faults:\n  api:\n    - {fault: explode}\n")
    with pytest.raises(InputError, match=r"scenario.yaml: faults.api\[0\]: fault 'explode' is not one of"):
        load_scenario(str(scenario), project="p", region="r")
