"""sandbox:auto: the stand-in generated from an inventory holds what that inventory asks for, says
what it cannot make green, and the NBA platform's whole inventory passes every built-in check on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploycheck import re2
from deploycheck.errors import InputError
from deploycheck.inventory import load_inventory
from deploycheck.sandbox.auto import DIGEST_NOTE, fingerprint, write_auto_scenario
from deploycheck.sandbox.regex_example import NoExample, example
from deploycheck.sandbox.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "pattern",
    [
        r"return self\.processor_name",
        r"(?:Started|Stopped) heartbeat for p2_nba_raw\.\w+",
        r"^from google\.cloud import x$",
        r"[A-Z]\w*Processor_None_[0-9a-f]+",
        r"heartbeat for \S+",
        r"[^a-z0-9]{2}\d{3,}",
        r"(?i)Hello|world",
        r"a{2}b?c*",
    ],
)
def test_examples_are_short_plain_and_matched_by_re2(pattern):
    text = example(pattern)
    assert re2.compile(pattern).search(text)
    assert text.isascii() and "\n" not in text


def test_no_example_for_what_re2_cannot_run():
    with pytest.raises(NoExample, match="lookaround or backreference"):
        example(r"(?<=_)None")


def _scenario(tmp_path: Path, inventory_text: str):
    path = tmp_path / "services.yaml"
    path.write_text(inventory_text)
    inventory = load_inventory(path)
    generated = write_auto_scenario(inventory, tmp_path / "auto", expect_commit="ce269d67")
    return (
        inventory,
        generated,
        yaml.safe_load(
            (generated.directory / "scenario.yaml").read_text().replace("{% raw %}", "").replace("{% endraw %}", "")
        ),
    )


def test_the_nba_inventory_becomes_images_with_the_pattern_files_grants_documents_and_log_lines(tmp_path):
    inventory, generated, data = _scenario(tmp_path, (REPO / "services.yaml").read_text())
    assert generated.warnings == []
    worker = inventory.service("prediction-worker")
    [image] = [spec for spec in data["images"].values() if spec["repository"] == worker.image.repository]
    assert image["tags"] == ["latest"] and image["labels"]["org.opencontainers.image.revision"] == "ce269d67"
    for pattern in worker.code:
        text = (generated.directory / image["files"][pattern.path]["file"]).read_text()
        assert all(re2.compile(regex).search(text) for regex in pattern.must_contain)
        assert not any(re2.compile(regex).search(text) for regex in pattern.must_not_contain)
    assert data["services"]["prediction-worker"]["service_account"] == worker.service_account
    assert {(b["role"], m) for b in data["iam_policy"]["bindings"] for m in b["members"]} >= {
        ("roles/datastore.user", f"serviceAccount:{worker.service_account}")
    }
    documents = data["firestore"]["processor_heartbeats"]
    assert {d["id"] for d in documents} == {p for s in inventory.services for p in s.processors}
    heartbeat_lines = [
        line["text"]
        for line in data["logs"]
        if line["service"] == "nba-phase2-raw-processors" and "heartbeat" in line.get("text", "")
    ]
    assert heartbeat_lines and re2.compile(
        inventory.service("nba-phase2-raw-processors").heartbeat_log.expected
    ).search(heartbeat_lines[0])
    assert all(
        job["image"] == str(inventory.service("nba-phase2-raw-processors").image) for job in data["jobs"].values()
    )
    # It is an ordinary scenario: the sandbox loads it as any other.
    scenario = load_scenario(str(generated.directory), project=inventory.project, region=inventory.region)
    assert len(scenario.services) == 6 and len(scenario.jobs) == 21
    assert (generated.directory / DIGEST_NOTE).read_text().strip() == fingerprint(inventory, "ce269d67")


MINIMAL = """\
project: acme-shop-prod
region: europe-west1
registry: europe-west1-docker.pkg.dev/acme-shop-prod/apps
patterns:
  flag:
    path: /app/flags.py
    must_contain: ['ENABLED = True']
    must_not_contain: ['ENABLED']
services:
  - name: checkout
    code: [flag]
"""


def test_patterns_no_file_can_satisfy_are_refused_with_the_reason(tmp_path):
    with pytest.raises(
        InputError,
        match=r"cannot write /app/flags.py: the text that satisfies its must_contain also "
        r"matches patterns.flag.must_not_contain /ENABLED/",
    ):
        _scenario(tmp_path, MINIMAL)


def test_what_the_stand_in_cannot_make_green_is_said(tmp_path):
    text = MINIMAL.replace("    must_not_contain: ['ENABLED']\n", "").replace(
        "    code: [flag]\n",
        "    code: [flag]\n    service_account: c@acme-shop-prod.iam.gserviceaccount.com\n"
        "    roles: [roles/pubsub.publisher, projects/acme-shop-prod/roles/exporter]\n",
    )
    _, generated, data = _scenario(tmp_path, text)
    assert any("roles/pubsub.publisher: the stand-in knows no permissions" in w for w in generated.warnings)
    assert data["custom_roles"] == [
        {"name": "projects/acme-shop-prod/roles/exporter", "permissions": ["deploycheck.auto.exporter"]}
    ]


def test_the_nba_inventory_passes_every_builtin_check_on_its_own_stand_in(suite):
    result = suite.run(
        "--target",
        "sandbox:auto",
        "--expect-commit",
        "ce269d67",
        "--report-dir",
        "out",
        "-k",
        "not deployed_by_script",
        "-n",
        "2",
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    report = suite.report()
    assert {f["outcome"] for f in report["findings"]} == {"pass"}
    checks = {f["check"] for f in report["findings"]}
    assert checks == {
        "traffic",
        "rollout",
        "digest",
        "commit",
        "code",
        "boot",
        "heartbeat-log",
        "log-visibility",
        "iam",
        "heartbeat-docs",
        "stale-jobs",
        "orphans",
    }
    assert {(e["check"], e["resource"]) for e in report["not_configured"]} == {
        ("heartbeat-log", "nba-scrapers"),
        ("heartbeat-log", "prediction-coordinator"),
    }
