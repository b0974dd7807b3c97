"""Credentials a server echoes back never reach any output: terminal, report.json/md/html, JUnit."""

from __future__ import annotations

import json

import httpx
import pytest

from deploycheck.errors import ObservationError
from deploycheck.findings import Finding, Outcome, Severity
from deploycheck.redact import redact

from conftest import phase2_scenario

PHASE2 = "nba-phase2-raw-processors"
TOKEN = "ya29.a0SEEDEDsecretTOKENvalue0123456789"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"Authorization: Bearer {TOKEN}", TOKEN),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ('{"access_token": "opaque-token-1234567", "expires_in": 3599}', "opaque-token-1234567"),
        ("GET /token?access_token=abcdef0123456789&scope=x", "abcdef0123456789"),
        (f"the header was bearer {TOKEN[5:]}", TOKEN[5:]),
        (KEY, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        ("GET /v1/x?key=AIzaSyA0123456789abcdefghij", "AIzaSyA0123456789abcdefghij"),
        ("x-goog-api-key: AIzaSyA0123456789abcdefghij", "AIzaSyA0123456789abcdefghij"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl", "c2lnbmF0dXJlLXZhbHVl"),
    ],
)
def test_secret_shapes_are_masked(text, secret):
    assert secret not in redact(text)
    assert "[REDACTED]" in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "no token realm was named",
        "revision nba-phase2-raw-processors-00128-abc not found",
        'nextPageToken "abc" repeated',
        "gcloud run services update-traffic S --to-latest --region us-west2",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_errors_and_findings_are_masked_where_they_are_made():
    error = ObservationError("image x", f"registry denied access (HTTP 403: Authorization: Bearer {TOKEN})")
    assert TOKEN not in str(error)
    finding = Finding("code", "svc", Severity.P1, Outcome.ERROR, f"echo {TOKEN}", {"detail": [f"Bearer {TOKEN}"]})
    assert TOKEN not in repr(finding.to_dict())


def test_a_token_seeded_into_a_server_error_body_appears_in_no_output(suite):
    info = suite.reuse_sandbox("healthy")
    echo = f"caller sent Authorization: Bearer {TOKEN} and {KEY}; private key above"
    faults = {"faults": [{"method": "GET", "path_regex": "^/v2/.*/services/", "status": 403, "message": echo}]}
    httpx.post(f"{info.api_url}/_sandbox/faults", json=faults).raise_for_status()
    try:
        result = suite.run(
            "-m",
            "postdeploy",
            "--service",
            PHASE2,
            "--target",
            "sandbox:healthy",
            "--deadline",
            "2",
            "--report-dir",
            "out",
            "--junitxml",
            "out/junit.xml",
            "-k",
            "traffic or rollout or iam",
            "-rA",
        )
    finally:
        httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": []}).raise_for_status()
    assert result.ret == 1
    outputs = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        outputs[name] = (suite.path / "out" / name).read_text()
    assert "permission denied" in outputs["stdout"]  # the error itself is still told
    for name, text in outputs.items():
        assert TOKEN not in text, name
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in text, name
    assert "[REDACTED]" in outputs["report.json"]


def test_a_registry_whose_403_body_echoes_the_authorization_header_leaks_nothing(suite, tmp_path):
    """The seeded case of F8: a registry (through the fault proxy) answers 403 quoting the caller's header."""
    scenario = phase2_scenario(tmp_path / "echo", service="    revisions: [{suffix: 00001-abc, image: app}]")
    echo = f"denied: request had Authorization: Bearer {TOKEN}; x-goog-api-key={TOKEN[5:]}"
    rule = {"fault": "status", "status": 403, "path": "/manifests/", "message": echo}
    with open(scenario / "scenario.yaml", "a") as handle:
        handle.write(f"faults:\n  registry:\n    - {json.dumps(rule)}\n")
    suite.reuse_sandbox(str(scenario))
    result = suite.run(
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
        "-k",
        "commit",
        "--deadline",
        "2",
        "--report-dir",
        "out",
        "--junitxml",
        "out/junit.xml",
        "-rA",
    )
    assert result.ret == 1
    outputs = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        outputs[name] = (suite.path / "out" / name).read_text()
    assert (
        "denied access (HTTP 403 (PERMISSION_DENIED: denied: request had Authorization: [REDACTED]" in outputs["stdout"]
    )
    for name, text in outputs.items():
        assert TOKEN[5:] not in text, name


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer ya29.a0AfH6SMBxxxxxxxxxxxxxxxxxxxx",
        "AUTHORIZATION=Basic dXNlcjpwYXNzd29yZA==",
        '{"access_token": "abcd1234efgh", "Key": "zzzzzzzz"}',
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "refresh 1//0gAbCdEfGhIjKlMnOpQrStUvWxYz",
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
        "Token=short PASSWORD: hunter2hunter2 monkey business",
        "sha256:0f3c nothing secret-looking here, revision 00129-lf2",
        "",
        # Case-insensitive matching folds these to ASCII letters; lower() does not.
        "\u017fecret=abcdefgh1234",
        "author\u0130zation: Bearer0 zzzzzzzzzzzz",
        "api_\u212aey=abcdefgh1234",
    ],
)
def test_the_quick_screen_masks_exactly_what_every_pattern_would(text):
    from deploycheck.redact import _PATTERNS

    every = text
    for pattern, replacement, _ in _PATTERNS:
        every = pattern.sub(replacement, every)
    assert redact(text) == every
