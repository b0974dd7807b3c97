"""Benchmark: the code check's image read vs a full copy of the same image, in one run.

Starts the healthy sandbox (phase2's image has a 100 MB base layer under a small app layer),
finds the digest the serving revision runs through the Cloud Run stand-in, then:
  cold  - the code check's read with an empty blob cache (new client, new cache dir)
  warm  - the same read again with that cache (new client: nothing kept in memory)
  full  - `skopeo copy` of the same image by digest to a local directory (what a pull costs)
The last line is JSON: bytes_read, image_bytes, ratio, cold_s, warm_s, warm_bytes_read, full_pull_s.

    .venv/bin/python bench/image_read.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google.auth.credentials import AnonymousCredentials

from deploycheck.blobcache import BlobCache
from deploycheck.cloudrun import CloudRunReader, serving_image
from deploycheck.images import RegistryImageReader
from deploycheck.inventory import load_inventory
from deploycheck.registry import RegistryClient, RegistryRouter
from deploycheck.rules.code import evaluate_code
from deploycheck.sandbox.manager import Sandbox

SERVICE = "nba-phase2-raw-processors"
REPO = Path(__file__).resolve().parent.parent


def read_code(registry_url: str, cache_dir: Path, ref, patterns):
    client = RegistryClient(RegistryRouter.mirror(registry_url))
    reader = RegistryImageReader(client, cache=BlobCache(cache_dir))
    began = time.perf_counter()
    result = reader.read_files(ref, sorted({p.path for p in patterns}))
    findings = evaluate_code(SERVICE, patterns, result, candidate=None, deploy_candidate="", rebuild="")
    elapsed = time.perf_counter() - began
    client.close()
    return result, findings, elapsed, client.stats


def main() -> int:
    if shutil.which("skopeo") is None:
        print("skopeo not found: apt-get install skopeo (or run `make setup`)", file=sys.stderr)
        return 2
    inventory = load_inventory(REPO / "services.yaml")
    spec = inventory.service(SERVICE)
    work = Path(tempfile.mkdtemp(prefix="deploycheck-bench-"))
    sandbox = Sandbox(
        "healthy",
        project=inventory.project,
        region=inventory.region,
        workdir=work / "sandbox",
        progress=lambda line: print(line, file=sys.stderr),
    )
    info = sandbox.start()
    try:
        cloudrun = CloudRunReader(info.project, info.region, AnonymousCredentials(), endpoint=info.api_url)
        state = cloudrun.service(SERVICE)
        revision = cloudrun.revision(SERVICE, state.serving_revisions[0])
        digest = serving_image(revision, spec.image.repository).digest
        cloudrun.close()
        ref = spec.image.with_digest(digest)

        cold, findings, cold_s, cold_stats = read_code(info.registry_url, work / "cache", ref, spec.code)
        assert all(not f.failed for f in findings), [f.summary for f in findings]
        _, _, warm_s, warm_stats = read_code(info.registry_url, work / "cache", ref, spec.code)

        target = work / "full-copy"
        began = time.perf_counter()
        source = f"docker://{info.registry_url.split('://', 1)[1]}/{ref.host}/{ref.path}@{digest}"
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-tls-verify=false", source, f"dir:{target}"], check=True, timeout=600
        )
        full_pull_s = time.perf_counter() - began
        copied_bytes = sum(p.stat().st_size for p in target.iterdir() if p.is_file())
    finally:
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)

    image_bytes = cold.image_compressed_size
    figures = {
        "image": str(ref),
        "bytes_read": cold_stats.bytes_received,
        "image_bytes": image_bytes,
        "copied_bytes": copied_bytes,
        "ratio": round(cold_stats.bytes_received / image_bytes, 6),
        "layers_opened": cold.layers_opened,
        "layers_total": cold.layers_total,
        "requests_cold": cold_stats.requests,
        "cold_s": round(cold_s, 4),
        "warm_s": round(warm_s, 4),
        "warm_bytes_read": warm_stats.bytes_received,
        "requests_warm": warm_stats.requests,
        "full_pull_s": round(full_pull_s, 4),
        "speedup_cold_vs_full": round(full_pull_s / cold_s, 1) if cold_s else None,
    }
    print(
        f"code check read {figures['bytes_read']:,} of {image_bytes:,} image bytes "
        f"({figures['ratio']:.4%}) in {cold_s:.3f}s cold, {warm_s:.3f}s warm reading "
        f"{figures['warm_bytes_read']} bytes; skopeo copied {copied_bytes:,} bytes in {full_pull_s:.2f}s"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
