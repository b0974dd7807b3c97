"""Benchmark: the one-service postdeploy gate vs the same facts gathered by hand, same run, same image.

The image is a realistic Python service, built in Python and pushed by the sandbox from an OCI
layout: a base layer (~20 MB), a dependencies layer (~96 MB, 1,500 files) and an app layer
(~11.3 MB compressed), all of random bytes so compressed sizes are real sizes. The wanted file,
/app/shared/monitoring/processor_heartbeat.py, sits half-way into the app layer's tar.

Both procedures run against one sandbox whose fault proxies stand for the network: every Google
API exchange is delayed --latency-ms (a round trip to Google; scenario fault `{fault: delay, ms}`),
and the registry's responses share --mbit of bandwidth (a CI runner's pull rate; `{fault:
throttle, mbit}`).

  gate   `pytest -m postdeploy --service S --target sandbox:DIR` in a subprocess, as a user runs
         it, with an empty blob cache (a fresh CI runner); the package byte-compiled first, as
         `pip install` leaves a wheel (this checkout is an editable install)
  naive  the by-hand procedure of the seeds, one call per fact with the Google client libraries
         (13 calls: services.get, revisions.get (raw JSON, for the digest), revisions.list, seven
         entries.list queries (ImportError/ModuleNotFoundError, Traceback, worker boot failure,
         expected heartbeats, old-format heartbeat ids, INFO application lines, request logs),
         projects.getIamPolicy, projects.get, roles.get roles/datastore.user), then `skopeo copy`
         of the running image by digest and the file read out of the copied layers, in a
         subprocess too: timed like the gate, from its launch to its exit. Clients are built once
         and reused, which is kinder than a person running gcloud thirteen times.

Last stdout line, JSON:
  api_calls         Google API requests the API proxy forwarded during the gate
  registry_bytes    response body bytes the registry proxy sent during the gate (HEADs have none)
  floor_bytes       what no reader of this file can avoid: the image manifest, the config blob,
                    and the shortest prefix of the app layer's compressed blob from which a gzip
                    decoder (zlib, fed that prefix) has produced the tar up to and including the
                    last byte of the wanted file's content
  bytes_ratio       registry_bytes / floor_bytes
  client_bytes      the bytes the gate's image read says it received (code finding evidence): less than
                    registry_bytes by what sat in socket buffers when the read stopped, and by the
                    config blob when the commit check read it first
  gate_s, naive_s, speedup_vs_naive (naive_s / gate_s), gate_exit, naive_api_calls, image_bytes,
  naive_after_imports_s (the by-hand process's own time once its client libraries were imported:
  the baseline before 2026-12-02 afternoon, which left its imports out but not the gate's),
  latency_ms, mbit, delay_applied (false while the delay fault is missing from the sandbox), verify_layers

    .venv/bin/python bench/gate.py [--latency-ms 50] [--mbit 200] [--scale 1.0] [--verify-layers]
                                   [--runs 5] [--runs-by-hand 3]

Times are medians: of --runs gate runs (each cold: its own empty blob cache), and of
--runs-by-hand by-hand runs; every run's time is in gate_runs_s / naive_runs_s.

--scale shrinks every layer (the test runs a tiny configuration); --mbit 0 turns the cap off.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVICE = "nba-phase2-raw-processors"
COMMIT = "ce269d67a1b2c3d4e5f60718293a4b5c6d7e8f90"
REVISION = "00129-lf2"
ACCOUNT = "756957797294-compute@developer.gserviceaccount.com"
HEARTBEAT = "/app/shared/monitoring/processor_heartbeat.py"
MB = 1_000_000
BASE_BYTES, DEPENDENCY_BYTES, APP_BYTES = 20 * MB, 96 * MB, int(11.3 * MB)
DEPENDENCY_FILES, APP_FILES_EACH_SIDE = 1500, 60


def build_image(scale: float):
    """The realistic image: (BuiltImage, the app layer)."""
    from deploycheck.sandbox.oci_builder import FileEntry, build_image, layer_from_files, random_layer

    generator = random.Random(20261202)
    base = random_layer(max(4096, int(BASE_BYTES * scale)), seed=1)
    per_dependency = max(1024, int(DEPENDENCY_BYTES * scale) // DEPENDENCY_FILES)
    dependencies = layer_from_files(
        {
            f"/usr/local/lib/python3.11/site-packages/pkg{index // 50:02d}/module{index:04d}.so": generator.randbytes(
                per_dependency
            )
            for index in range(DEPENDENCY_FILES)
        },
        compresslevel=1,
    )
    per_app_file = max(1024, int(APP_BYTES * scale) // (2 * APP_FILES_EACH_SIDE))
    fixed = (REPO / "deploycheck/sandbox/scenarios/_common/processor_heartbeat_fixed.py").read_bytes()
    app_files: dict[str, bytes | FileEntry] = {HEARTBEAT: fixed}
    for index in range(APP_FILES_EACH_SIDE):  # "data" sorts before "shared", "static" after it
        app_files[f"/app/data/fixture{index:03d}.bin"] = generator.randbytes(per_app_file)
        app_files[f"/app/static/asset{index:03d}.bin"] = generator.randbytes(per_app_file)
    app = layer_from_files(app_files, compresslevel=1)
    image = build_image(
        [base, dependencies, app],
        created="2026-12-02T07:00:00Z",
        labels={"org.opencontainers.image.revision": COMMIT},
        env=["PYTHONUNBUFFERED=1", f"COMMIT_SHA={COMMIT}"],
    )
    return image, app


def floor_bytes(image, app) -> int:
    """Manifest + config + the shortest app-layer prefix that inflates past the wanted file's end."""
    tar_bytes = gzip.decompress(app.data)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        member = next(m for m in tar if "/" + m.name == HEARTBEAT)
        file_end = member.offset_data + member.size
    return len(image.manifest) + image.config.size + _gzip_prefix_for(app.data, file_end)


def _gzip_prefix_for(blob: bytes, produced_wanted: int) -> int:
    inflater, produced, position, step = zlib.decompressobj(wbits=31), 0, 0, 64 * 1024
    while True:
        before = inflater.copy()
        out = len(inflater.decompress(blob[position : position + step]))
        if produced + out >= produced_wanted:
            break
        produced, position = produced + out, position + step
    for extra in range(1, step + 1):  # byte by byte through the step that crossed it
        produced += len(before.decompress(blob[position + extra - 1 : position + extra]))
        if produced >= produced_wanted:
            return position + extra
    raise AssertionError("unreachable: the step crossed the end")


def write_scenario(directory: Path, image, latency_ms: float, mbit: float, delay_supported: bool) -> None:
    from deploycheck.sandbox.oci_builder import write_oci_layout

    write_oci_layout(image, directory / "layout")
    api_faults = [{"fault": "delay", "ms": latency_ms}] if latency_ms and delay_supported else []
    registry_faults = [{"fault": "throttle", "mbit": mbit}] if mbit else []
    repository = f"us-west2-docker.pkg.dev/{{{{ project }}}}/nba-props/{SERVICE}"
    scenario = f"""\
        # bench/gate.py: one realistic service, all green, behind the network the bench asks for.
        images:
          app:
            repository: {repository}
            tags: [latest, "{COMMIT[:8]}"]
            oci_layout: layout
        services:
          {SERVICE}:
            image: {repository}:latest
            service_account: {ACCOUNT}
            labels: {{commit-sha: "{COMMIT[:8]}", managed-by: deploy-service-sh}}
            revisions:
              - {{suffix: "{REVISION}", image: app, created: now-90m}}
        iam_policy:
          bindings:
            - role: roles/datastore.user
              members: ["serviceAccount:{ACCOUNT}"]
        logs:
          - {{service: {SERVICE}, revision: "{REVISION}", at: now-80m, severity: INFO, text: "Booting worker with pid: 7"}}
          - {{service: {SERVICE}, revision: "{REVISION}", at: now-79m, severity: INFO, json: {{message: "Application startup complete", severity: INFO}}}}
          - {{service: {SERVICE}, revision: "{REVISION}", at: now-31m, severity: INFO, text: "Started heartbeat for p2_nba_raw.nbac_team_boxscore"}}
          - {{service: {SERVICE}, revision: "{REVISION}", at: now-30m, log: requests, severity: INFO}}
          - {{service: {SERVICE}, revision: "{REVISION}", at: now-29m, severity: INFO, text: "Stopped heartbeat for p2_nba_raw.nbac_team_boxscore"}}
        faults:
          api: {json.dumps(api_faults)}
          registry: {json.dumps(registry_faults)}
        """
    (directory / "scenario.yaml").write_text(textwrap.dedent(scenario))


def run_gate(info, scenario_dir: Path, work: Path, extra: list[str]) -> tuple[float, int, str]:
    env = {
        **os.environ,
        "DEPLOYCHECK_SANDBOX_STATE": str(Path(info.workdir) / "sandbox.json"),
        "XDG_CACHE_HOME": str(work / "gate-cache"),
    }  # a fresh runner: nothing cached
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    command = [
        str(Path(sys.executable).parent / "pytest"),
        "-m",
        "postdeploy",
        "--service",
        SERVICE,
        "--target",
        f"sandbox:{scenario_dir}",
        "--report-dir",
        str(work / "gate-report"),
        *extra,
    ]
    began = time.perf_counter()
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - began, run.returncode, run.stdout + run.stderr


def client_bytes(work: Path) -> int | None:
    """What the gate's image reader says it received (the code finding's evidence), for comparison
    with what the proxy sent: the difference is what sat in socket buffers when the read stopped."""
    try:
        report = json.loads((work / "gate-report" / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return next(
        (
            finding["evidence"].get("bytes_read")
            for finding in report.get("findings", [])
            if finding.get("check") == "code"
        ),
        None,
    )


def run_naive(info, work: Path) -> tuple[float, int, float]:
    """The seeds' procedure in a process of its own, as the gate runs in one: (seconds from its
    launch to its exit, Google API calls it made, seconds it took once its imports were done)."""
    command = [sys.executable, __file__, "--by-hand", str(Path(info.workdir) / "sandbox.json"), str(work)]
    began = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - began
    if run.returncode != 0:
        raise SystemExit(f"the by-hand procedure failed:\n{run.stdout}{run.stderr}")
    calls, after_imports = json.loads(run.stdout.splitlines()[-1])
    return seconds, calls, after_imports


def by_hand(state_path: Path, work: Path) -> tuple[int, float]:
    """The procedure itself (the child process): (Google API calls, seconds after its imports)."""
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import resourcemanager_v3, run_v2

    from deploycheck.sandbox.state import SandboxInfo

    info = SandboxInfo.load(state_path)
    credentials = AnonymousCredentials()
    options = {"api_endpoint": info.api_url}
    project, region = info.project, info.region
    began = time.perf_counter()
    services = run_v2.ServicesClient(transport="rest", credentials=credentials, client_options=options)
    revisions = run_v2.RevisionsClient(transport="rest", credentials=credentials, client_options=options)
    projects = resourcemanager_v3.ProjectsClient(transport="rest", credentials=credentials, client_options=options)
    session = AuthorizedSession(credentials)
    calls = 0

    parent = f"projects/{project}/locations/{region}"
    service = services.get_service(name=f"{parent}/services/{SERVICE}")
    calls += 1
    serving = service.traffic_statuses[0].revision or service.latest_ready_revision.rsplit("/", 1)[-1]
    revision = session.get(f"{info.api_url}/v2/{parent}/services/{SERVICE}/revisions/{serving}").json()
    calls += 1
    digest = revision["containerStatuses"][0]["imageDigest"].rsplit("@", 1)[-1]
    next(iter(revisions.list_revisions(parent=f"{parent}/services/{SERVICE}").pages))
    calls += 1
    scope = (
        f'resource.type="cloud_run_revision" AND resource.labels.service_name="{SERVICE}" '
        f'AND resource.labels.revision_name="{serving}" AND timestamp>="{_hours_ago(24)}"'
    )
    # As `gcloud logging read` does: the REST call, no per-entry objects (google-cloud-logging's
    # would ask the metadata server about every entry off GCP).
    for query in (
        'textPayload:"ImportError" OR textPayload:"ModuleNotFoundError"',
        'textPayload:"Traceback"',
        'textPayload:"Worker failed to boot"',
        'textPayload:"heartbeat for p2_nba_raw"',
        'textPayload=~"Processor_None_"',
        'severity="INFO" AND NOT logName:"requests"',
        'logName:"requests"',
    ):
        session.post(
            f"{info.api_url}/v2/entries:list",
            json={
                "resourceNames": [f"projects/{project}"],
                "filter": f"{scope} AND ({query})",
                "pageSize": 100,
            },
        ).raise_for_status()
        calls += 1
    projects.get_iam_policy(resource=f"projects/{project}")
    calls += 1
    projects.get_project(name=f"projects/{project}")
    calls += 1
    session.get(f"{info.api_url}/v1/roles/datastore.user").raise_for_status()
    calls += 1

    repository = f"{info.registry_url.split('://', 1)[1]}/us-west2-docker.pkg.dev/{project}/nba-props/{SERVICE}"
    copy = work / "naive-copy"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{repository}@{digest}", f"dir:{copy}"],
        check=True,
        timeout=900,
    )
    content = _read_from_copy(copy, HEARTBEAT)
    assert b"return self.processor_name" in content, "the by-hand read did not find the fix"
    return calls, time.perf_counter() - began


def _read_from_copy(copy: Path, path: str) -> bytes:
    """`docker run IMAGE cat PATH` without a daemon: the topmost copied layer holding the file."""
    manifest = json.loads((copy / "manifest.json").read_text())
    for layer in reversed(manifest["layers"]):
        with tarfile.open(copy / layer["digest"].removeprefix("sha256:"), mode="r|gz") as tar:
            for member in tar:
                if "/" + member.name.lstrip("./") == path:
                    return tar.extractfile(member).read()
    raise AssertionError(f"{path} is in no layer of the copy")


def _hours_ago(hours: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> int:
    if sys.argv[1:2] == ["--by-hand"]:
        print(json.dumps(by_hand(Path(sys.argv[2]), Path(sys.argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay per Google API exchange (default 50)")
    parser.add_argument("--mbit", type=float, default=200.0, help="registry bandwidth, Mbit/s (default 200; 0: none)")
    parser.add_argument("--scale", type=float, default=1.0, help="layer sizes relative to the realistic image")
    parser.add_argument("--runs", type=int, default=5, help="gate runs, each cold; the median is reported (default 5)")
    parser.add_argument("--runs-by-hand", type=int, default=3, help="by-hand runs; the median is reported (default 3)")
    parser.add_argument(
        "--verify-layers",
        action="store_true",
        help="run the gate with --verify-layers (whole layers, sha256-verified) instead of the default",
    )
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo not found: apt-get install skopeo (or run `make setup`)", file=sys.stderr)
        return 2

    from fleetrun import byte_compile

    from deploycheck.sandbox.faultproxy import FaultControl
    from deploycheck.sandbox.faultrules import FAULT_KINDS
    from deploycheck.sandbox.manager import Sandbox

    delay_supported = "delay" in FAULT_KINDS
    if args.latency_ms and not delay_supported:
        print("note: this sandbox has no `delay` fault yet: Google API calls are not delayed", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="deploycheck-bench-gate-"))
    scenario_dir = work / "scenario"
    scenario_dir.mkdir()
    image, app = build_image(args.scale)
    floor = floor_bytes(image, app)
    write_scenario(scenario_dir, image, args.latency_ms, args.mbit, delay_supported)
    del app
    sandbox = Sandbox(
        str(scenario_dir),
        project="nba-props-platform",
        region="us-west2",
        workdir=work / "sandbox",
        progress=lambda line: print(line, file=sys.stderr),
        fault_proxies=("api", "registry"),
    )
    info = sandbox.start()
    try:
        api, registry = FaultControl(info.fault_controls["api"]), FaultControl(info.fault_controls["registry"])
        byte_compile()
        gate_runs: list[dict] = []
        for number in range(args.runs):
            # Each run as on a fresh runner: its own empty blob cache and report directory.
            run_dir = work / f"gate-{number}"
            api_before, bytes_before = api.status()["requests"], _registry_bytes(registry)
            seconds, gate_exit, gate_output = run_gate(
                info, scenario_dir, run_dir, ["--verify-layers"] if args.verify_layers else []
            )
            if gate_exit != 0:
                print(gate_output, file=sys.stderr)
            gate_runs.append(
                {
                    "seconds": seconds,
                    "exit": gate_exit,
                    "api_calls": api.status()["requests"] - api_before,
                    "registry_bytes": _registry_bytes(registry) - bytes_before,
                    "client_bytes": client_bytes(run_dir),
                }
            )
        naive_runs = []
        for _ in range(args.runs_by_hand):
            naive_before = api.status()["requests"]
            naive_s, naive_calls, naive_after_imports_s = run_naive(info, work)
            naive_api_calls = api.status()["requests"] - naive_before
            assert naive_api_calls == naive_calls, (naive_api_calls, naive_calls)
            naive_runs.append((naive_s, naive_after_imports_s))
    finally:
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)

    typical = sorted(gate_runs, key=lambda run: run["seconds"])[len(gate_runs) // 2]  # the median run
    gate_s, gate_exit = typical["seconds"], max(run["exit"] for run in gate_runs)
    api_calls, registry_bytes, reader_bytes = typical["api_calls"], typical["registry_bytes"], typical["client_bytes"]
    naive_s, naive_after_imports_s = sorted(naive_runs)[len(naive_runs) // 2]
    figures = {
        "api_calls": api_calls,
        "registry_bytes": registry_bytes,
        "floor_bytes": floor,
        "bytes_ratio": round(registry_bytes / floor, 4),
        "client_bytes": reader_bytes,
        "gate_s": round(gate_s, 3),
        "naive_s": round(naive_s, 3),
        "naive_after_imports_s": round(naive_after_imports_s, 3),
        "speedup_vs_naive": round(naive_s / gate_s, 2),
        "gate_exit": gate_exit,
        "naive_api_calls": naive_api_calls,
        "image_bytes": image.config.size + sum(layer.size for layer in image.layers),
        "latency_ms": args.latency_ms,
        "mbit": args.mbit,
        "delay_applied": bool(args.latency_ms and delay_supported),
        "verify_layers": args.verify_layers,
        "gate_runs_s": [round(run["seconds"], 3) for run in gate_runs],
        "registry_bytes_runs": [run["registry_bytes"] for run in gate_runs],
        "gate_api_calls_max": max(run["api_calls"] for run in gate_runs),
        "naive_runs_s": [round(seconds, 3) for seconds, _ in naive_runs],
    }
    print(
        f"gate: {gate_s:.2f}s, {api_calls} API calls, {registry_bytes:,} registry bytes "
        f"({figures['bytes_ratio']:.3f}x the {floor:,}-byte floor); by hand: {naive_s:.2f}s, "
        f"{naive_api_calls} API calls and a {figures['image_bytes']:,}-byte copy; "
        f"speedup {figures['speedup_vs_naive']}x",
        file=sys.stderr,
    )
    print(json.dumps(figures))
    return 0


def _registry_bytes(control) -> int:
    """Body bytes the registry proxy's throttle link has sent (its traffic count when not throttled)."""
    status = control.status()
    sent = [rule["bytes_sent"] for rule in status["faults"] if "bytes_sent" in rule]
    if sent:
        return sum(sent)
    if hasattr(control, "traffic"):
        return control.traffic()["bytes"]
    raise SystemExit("--mbit 0 needs a fault proxy that counts its traffic (GET /_faultproxy/traffic)")


if __name__ == "__main__":
    raise SystemExit(main())
