"""deploycheck's command-line options, registered through the pytest11 entry point.

Only options live here. pytest reads entry-point plugins before it decides the rootdir, so
`--cache-dir /var/cache/dc` is parsed as an option value, not as a path to collect; a
conftest-defined option would not be known yet. Everything else is in the repository's
conftest.py and fixtures/, and is inert where that conftest is not loaded.
"""

from __future__ import annotations

import pytest

from deploycheck.images import ImageLimits


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deploycheck", "deploycheck (Cloud Run deployment verification)")
    group.addoption("--inventory", default="services.yaml", metavar="PATH",
                    help="the inventory of services and jobs (default: ./services.yaml)")
    group.addoption("--service", action="append", default=[], metavar="NAME",
                    help="check only this service (repeatable); with no --service/--job everything is checked")
    group.addoption("--job", action="append", default=[], metavar="NAME", help="check only this job (repeatable)")
    group.addoption("--target", default="gcp", metavar="gcp|sandbox[:SCENARIO]",
                    help="gcp (Application Default Credentials; default) or the local stand-in, e.g. sandbox:incident")
    group.addoption("--expect-commit", default=None, metavar="SHA",
                    help="fail unless the running image was built from this commit")
    group.addoption("--wait", type=float, default=0.0, metavar="SECONDS",
                    help="poll until the newest revision is ready (or failed) before checking, up to SECONDS")
    group.addoption("--report-dir", default=None, metavar="DIR",
                    help="write DIR/report.json, report.md, report.txt and report.html (also when the run cannot "
                         "start: then they say why)")
    group.addoption("--previous", default=None, metavar="PATH",
                    help="an earlier report.json, or a directory of them (the newest is used): classify each "
                         "finding as new, still failing (since when) or fixed")
    group.addoption("--history", default=None, metavar="DIR",
                    help="keep each run's report.json in DIR (the oldest beyond --history-keep are deleted) and "
                         "draw the report's trends from them")
    group.addoption("--history-keep", type=_at_least_one, default=30, metavar="N",
                    help="runs --history keeps (default 30)")
    group.addoption("--log-window", type=float, default=None, metavar="HOURS",
                    help="log checks read from the creation of the serving and newest revisions (default), or at "
                         "most HOURS back; the findings say which window they read")
    group.addoption("--max-log-entries", type=_at_least_one, default=1000, metavar="N",
                    help="entries one log query reads at most (default 1000); a check whose answer lies beyond "
                         "them ERRORs saying so, never passes")
    group.addoption("--budget", type=float, default=1800.0, metavar="SECONDS",
                    help="the whole run's time budget (default 1800): once spent, checks still waiting for a fact "
                         "ERROR instead of running on")
    group.addoption("--deadline", type=float, default=60.0, metavar="SECONDS",
                    help="give up on one API read after SECONDS, retries included (default 60); the check then ERRORs")
    images = parser.getgroup("deploycheck-images", "deploycheck: reading files inside images")
    images.addoption("--image-source", choices=("registry", "docker"), default="registry",
                     help="registry: read layers over the OCI API, no pull (default); docker: pull through a "
                          "docker engine and copy files out of a created, never started, container")
    images.addoption("--cache-dir", default=None, metavar="DIR",
                     help="verified blobs by digest (default ~/.cache/deploycheck); a warm run reads 0 bytes")
    images.addoption("--platform", default="linux/amd64", metavar="OS/ARCH",
                     help="which image of a multi-platform index to read (default linux/amd64)")
    images.addoption("--max-file-bytes", type=int, default=ImageLimits.max_file_bytes, metavar="N",
                     help=f"bytes kept per file read from an image (default {ImageLimits.max_file_bytes:,})")
    images.addoption("--max-decompressed-bytes", type=int, default=ImageLimits.max_decompressed_bytes, metavar="N",
                     help="decompressed layer bytes one image read may inflate (default 1 GiB): a zip bomb stops here")
    images.addoption("--max-layers", type=int, default=ImageLimits.max_layers, metavar="N",
                     help=f"refuse images with more layers (default {ImageLimits.max_layers})")
    images.addoption("--image-timeout", type=float, default=ImageLimits.max_seconds, metavar="SECONDS",
                     help=f"wall-clock budget of one image read (default {ImageLimits.max_seconds:g}s)")


def _at_least_one(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
