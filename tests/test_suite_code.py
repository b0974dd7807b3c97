"""The code check run as a user runs it: grep inside the running image, no pull, no daemon."""

from __future__ import annotations

import shutil
import textwrap

from deploycheck.sandbox.manager import SandboxInfo
from deploycheck.sandbox.scenario import BUILTIN_DIR

from conftest import findings_for, registry_requests

PHASE2 = "nba-phase2-raw-processors"
HEARTBEAT = "/app/shared/monitoring/processor_heartbeat.py"


def test_incident_phase2_code_is_red_quoting_the_file_and_the_missing_fix(suite):
    suite.reuse_sandbox("incident")
    result = suite.run(
        "-m", "postdeploy", "-k", "code", "--service", PHASE2, "--target", "sandbox:incident", "--report-dir", "out"
    )
    assert result.ret == 1
    [finding] = findings_for(suite.report(), "code", PHASE2)
    assert finding["outcome"] == "fail"
    assert f"{HEARTBEAT} does not contain /return self\\.processor_name/" in finding["summary"]
    assert (
        f'{HEARTBEAT}:20: `return f"{{self.processor_name}}_{{self.data_date}}_{{self.run_id}}"`' in finding["summary"]
    )
    # :latest has the fix (seed 001): deploying it is the fix, pinned to the digest.
    assert finding["remediation"].startswith(f"gcloud run deploy {PHASE2} --image us-west2-docker.pkg.dev/")
    assert "@sha256:" in finding["remediation"]
    assert finding["evidence"]["layers_opened"] == 1 and finding["evidence"]["layers_total"] == 2


def test_healthy_phase2_code_passes_not_skipped_and_reads_kilobytes(suite, tmp_path):
    info = suite.reuse_sandbox("healthy")
    args = (
        "-m",
        "postdeploy",
        "-k",
        "code",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--report-dir",
        "out",
        "--cache-dir",
        str(tmp_path / "cache"),
        "-v",
    )
    cold = suite.run(*args)
    assert cold.ret == 0, cold.stdout.str()
    cold.assert_outcomes(passed=1)
    [finding] = findings_for(suite.report(), "code", PHASE2)
    assert finding["outcome"] == "pass" and "line 21 `return self.processor_name`" in finding["summary"]
    evidence = finding["evidence"]
    assert 0 < evidence["bytes_read"] < evidence["image_compressed_size"] / 100  # the 100 MB base layer stays unread

    blobs_before = _blob_gets(info)
    warm = suite.run(*args)
    assert warm.ret == 0
    [finding] = findings_for(suite.report(), "code", PHASE2)
    # The file comes from the verified listing the cold run cached: the registry served no blob.
    assert finding["outcome"] == "pass" and finding["evidence"]["bytes_read"] == 0
    assert _blob_gets(info) - blobs_before == 0


def test_backfill_job_on_an_old_gcr_image_is_red_with_the_jobs_update_command(suite):
    suite.reuse_sandbox("incident")
    job = "nbac-team-boxscore-processor-backfill"
    result = suite.run(
        "-m",
        "postdeploy",
        "--job",
        job,
        "--target",
        "sandbox:incident",
        "--report-dir",
        "out",
        "--pyargs",
        "deploycheck_pytest.checks.test_jobs",
    )
    assert result.ret == 1
    assert f"checks/test_jobs.py::test_code[{job}]" in result.stdout.str() or result.parseoutcomes()["failed"] == 1
    [finding] = findings_for(suite.report(), "code", job)
    assert finding["outcome"] == "fail" and "return self\\.processor_name" in finding["summary"]
    assert finding["evidence"]["image"].startswith(f"gcr.io/nba-props-platform/{job}@sha256:")
    assert finding["remediation"].startswith(
        f"gcloud run jobs update {job} --image us-west2-docker.pkg.dev/nba-props-platform/nba-props/{PHASE2}@sha256:"
    )


def test_healthy_jobs_pass(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "--job",
        "nbac-schedule-processor-backfill",
        "--job",
        "odds-game-lines-processor-backfill",
        "--target",
        "sandbox:healthy",
        "--pyargs",
        "deploycheck_pytest.checks.test_jobs",
    )
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def _scenario(tmp_path, body: str):
    """A scenario directory beside a copy of the built-in _common/ files it refers to."""
    directory = tmp_path / "scenario"
    directory.mkdir()
    shutil.copytree(BUILTIN_DIR / "_common", tmp_path / "_common")
    (directory / "scenario.yaml").write_text(textwrap.dedent(body))
    return directory


def test_tag_without_the_fix_says_rebuild(suite, tmp_path):
    scenario = _scenario(
        tmp_path,
        """\
        images:
          old:
            repository: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors
            tags: [latest]
            files:
              /app/shared/monitoring/processor_heartbeat.py: {file: ../_common/processor_heartbeat_old.py}
        services:
          nba-phase2-raw-processors:
            image: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors:latest
            revisions: [{suffix: 00001-aaa, image: old}]
        """,
    )
    result = suite.run(
        "-m", "postdeploy", "-k", "code", "--service", PHASE2, "--target", f"sandbox:{scenario}", "--report-dir", "out"
    )
    assert result.ret == 1
    [finding] = findings_for(suite.report(), "code", PHASE2)
    assert finding["remediation"].startswith(
        "rebuild us-west2-docker.pkg.dev/nba-props-platform/nba-props/nba-phase2-raw-processors:latest from a commit with the fix"
    )
    assert finding["evidence"]["fix_note"] == "the image the tag points to lacks it too"


def test_file_missing_or_only_in_the_base_layer(suite, tmp_path):
    scenario = _scenario(
        tmp_path,
        """\
        images:
          base-only:
            repository: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors
            tags: [latest]
            base_files:
              /app/shared/monitoring/processor_heartbeat.py: {file: ../_common/processor_heartbeat_fixed.py}
              /usr/lib/python3/big.bin: {text: "%s"}
            files:
              /app/main.py: {text: "print('hi')"}
          missing:
            repository: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase3-analytics-processors
            tags: [latest]
            files:
              /app/main.py: {text: "print('hi')"}
        services:
          nba-phase2-raw-processors:
            image: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors:latest
            revisions: [{suffix: 00001-aaa, image: base-only}]
          nba-phase3-analytics-processors:
            image: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase3-analytics-processors:latest
            revisions: [{suffix: 00001-bbb, image: missing}]
        """
        % ("x" * 200_000),
    )
    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "code",
        "--service",
        PHASE2,
        "--service",
        "nba-phase3-analytics-processors",
        "--target",
        f"sandbox:{scenario}",
        "--report-dir",
        "out",
    )
    assert result.ret == 1
    report = suite.report()
    [base] = findings_for(report, "code", PHASE2)
    assert base["outcome"] == "pass" and "layer 0" in base["summary"] and "byte" in base["summary"]
    assert base["evidence"]["layers_opened"] == 2
    [missing] = findings_for(report, "code", "nba-phase3-analytics-processors")
    assert missing["outcome"] == "fail" and f"{HEARTBEAT} is not in the running image" in missing["summary"]


def test_docker_reader_without_a_daemon_is_an_error_not_a_pass(suite, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m", "postdeploy", "-k", "code", "--service", PHASE2, "--target", "sandbox:healthy", "--image-source", "docker"
    )
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    assert "docker daemon not reachable" in result.stdout.str()


def test_docker_reader_gives_the_same_outcomes_as_the_registry_reader(suite, monkeypatch):
    from dockerd import dockerd_engine

    with dockerd_engine() as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        for scenario, expected in (("incident", 1), ("healthy", 0)):
            suite.reuse_sandbox(scenario)
            outcomes = {}
            for source in ("registry", "docker"):
                result = suite.run(
                    "-m",
                    "postdeploy",
                    "-k",
                    "code",
                    "--service",
                    PHASE2,
                    "--target",
                    f"sandbox:{scenario}",
                    "--image-source",
                    source,
                    "--report-dir",
                    f"out-{source}",
                )
                assert result.ret == expected, result.stdout.str()
                [finding] = findings_for(suite.report(f"out-{source}"), "code", PHASE2)
                outcomes[source] = (finding["outcome"], finding["summary"].split(";")[0])
            assert outcomes["docker"] == outcomes["registry"]
        assert not engine.client.containers.list(all=True)  # created for the copy, never left behind


def test_scenario_can_push_an_oci_layout_written_by_skopeo(suite, sandboxes, tmp_path):
    """An image exported as an OCI layout (skopeo/umoci) is served by the sandbox as it is."""
    import subprocess

    info = sandboxes.info("healthy")
    digest = info.images[PHASE2]
    layout = tmp_path / "scenario" / "phase2-layout"
    layout.parent.mkdir()
    source = (
        f"docker://{info.registry_url.split('://', 1)[1]}/us-west2-docker.pkg.dev/nba-props-platform/"
        f"nba-props/{PHASE2}@{digest}"
    )
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", source, f"oci:{layout}:exported"],
        check=True,
        timeout=300,
    )
    (tmp_path / "scenario" / "scenario.yaml").write_text(
        textwrap.dedent("""\
        images:
          exported:
            repository: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors
            tags: [latest]
            oci_layout: phase2-layout
        services:
          nba-phase2-raw-processors:
            image: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors:latest
            revisions: [{suffix: 00001-oci, image: exported}]
        """)
    )
    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "code or digest",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{tmp_path / 'scenario'}",
        "--report-dir",
        "out",
    )
    assert result.ret == 0, result.stdout.str()
    report = suite.report()
    assert {f["check"]: f["outcome"] for f in report["findings"]} == {"code": "pass", "digest": "pass"}
    [digest_finding] = findings_for(report, "digest", PHASE2)
    assert digest_finding["evidence"]["tag_digest"] == digest  # the same bytes, so the same digest


def test_file_over_the_size_limit_is_an_error_naming_the_flag_not_a_pass(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "code",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--max-file-bytes",
        "64",
        "--report-dir",
        "out",
    )
    assert result.ret == 1
    [finding] = findings_for(suite.report(), "code", PHASE2)
    assert finding["outcome"] == "error"
    assert finding["summary"].startswith(
        "absence not proven: /app/shared/monitoring/processor_heartbeat.py read only to 64 bytes of "
    )
    assert "; presence not proven: cannot tell whether it contains /return self\\.processor_name/" in finding["summary"]
    assert finding["summary"].endswith("(raise --max-file-bytes)")


def test_forbidden_text_in_a_file_read_only_in_part_is_an_error_not_a_pass(suite):
    """lazy-monitoring-import only forbids text: its absence from the first 64 bytes proves nothing."""
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "code",
        "--service",
        "prediction-worker",
        "--target",
        "sandbox:healthy",
        "--max-file-bytes",
        "64",
        "--report-dir",
        "out",
    )
    assert result.ret == 1
    findings = {f["evidence"]["pattern"]: f for f in findings_for(suite.report(), "code", "prediction-worker")}
    lazy = findings["lazy-monitoring-import"]
    assert lazy["outcome"] == "error"
    assert lazy["summary"].startswith(
        "absence not proven: /app/shared/utils/metrics_utils.py read only to 64 bytes of "
    )
    assert lazy["summary"].endswith("may be in the rest (raise --max-file-bytes)")
    assert {f["outcome"] for f in findings.values()} == {"error"}
    full = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "code",
        "--service",
        "prediction-worker",
        "--target",
        "sandbox:healthy",
        "--report-dir",
        "full",
    )
    assert full.ret == 0  # read whole, the same image passes


def test_decompression_limit_is_an_error_naming_the_flag(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "code",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--max-decompressed-bytes",
        "1000",
        "--report-dir",
        "out",
    )
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    [finding] = findings_for(suite.report(), "code", PHASE2)
    assert finding["outcome"] == "error" and "--max-decompressed-bytes" in finding["summary"]


def test_nightly_checks_every_job_and_reads_each_distinct_image_once(suite, tmp_path):
    suite.reuse_sandbox("incident")
    result = suite.run(
        "-m",
        "nightly",
        "--target",
        "sandbox:incident",
        "--report-dir",
        "out",
        "-n",
        "2",
        "--pyargs",
        "deploycheck_pytest.checks.test_jobs",
        "-k",
        "test_code",
    )
    assert result.ret == 1
    jobs = [f for f in suite.report()["findings"] if f["check"] == "code"]
    assert len(jobs) == 21 and {f["outcome"] for f in jobs} == {"fail"}

    info = suite.reuse_sandbox("healthy")
    before = _blob_gets(info)
    result = suite.run(
        "-m",
        "nightly",
        "--target",
        "sandbox:healthy",
        "--report-dir",
        "out",
        "--cache-dir",
        str(tmp_path / "empty-cache"),
        "--pyargs",
        "deploycheck_pytest.checks.test_jobs",
        "-k",
        "test_code",
    )
    assert result.ret == 0
    result.assert_outcomes(passed=21)
    images = {f["evidence"]["image"] for f in suite.report()["findings"]}
    assert len(images) == 1  # all 21 run the phase2 image
    # ...so it is read once for all of them: its config and its app layer, nothing more.
    assert _blob_gets(info) - before == 2


def _blob_gets(info: SandboxInfo) -> int:
    """Blob downloads the real registry logged."""
    return registry_requests(info, ("GET",), "/blobs/sha256:")


def test_a_file_half_way_into_a_big_app_layer_reads_half_of_it_and_says_so(suite, tmp_path):
    """The evidence says the layer was read in part and not verified; --verify-layers reads it whole."""
    import os

    from deploycheck.sandbox.oci_builder import build_image, layer_from_files, write_oci_layout

    fixed = (BUILTIN_DIR / "_common" / "processor_heartbeat_fixed.py").read_bytes()
    app = layer_from_files(
        {"/app/assets/a.bin": os.urandom(1_000_000), HEARTBEAT: fixed, "/app/static/z.bin": os.urandom(1_000_000)},
        compresslevel=1,
    )
    scenario = tmp_path / "scenario"
    write_oci_layout(build_image([app]), scenario / "layout")
    (scenario / "scenario.yaml").write_text(
        textwrap.dedent("""\
        images:
          big-app:
            repository: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors
            tags: [latest]
            oci_layout: layout
        services:
          nba-phase2-raw-processors:
            image: us-west2-docker.pkg.dev/{{ project }}/nba-props/nba-phase2-raw-processors:latest
            revisions: [{suffix: 00001-big, image: big-app}]
        """)
    )
    suite.reuse_sandbox(str(scenario))
    evidence = {}
    for mode, extra in (("default", ()), ("verify", ("--verify-layers",))):
        result = suite.run(
            "-m",
            "postdeploy",
            "-k",
            "code",
            "--service",
            PHASE2,
            "--target",
            f"sandbox:{scenario}",
            "--report-dir",
            mode,
            "--cache-dir",
            str(tmp_path / f"cache-{mode}"),
            *extra,
        )
        assert result.ret == 0, result.stdout.str()
        [finding] = findings_for(suite.report(mode), "code", PHASE2)
        evidence[mode] = finding["evidence"]
    assert 1_000_000 < evidence["default"]["bytes_read"] < 0.6 * app.size
    assert "layer 0 read in part (" in evidence["default"]["note"] and evidence["default"]["integrity"] == "partial"
    assert f"of {app.size:,} bytes), blob digest not verified" in evidence["default"]["note"]
    # The whole layer, its sha256 checked (the config may already be held by the session, read ahead).
    assert evidence["verify"]["bytes_read"] >= app.size and evidence["verify"]["note"] == ""
    assert evidence["verify"]["integrity"] == "sha256"
