"""deploycheck.re2: RE2 decides which inventory regexes are valid, and says why in a Python writer's words."""

from __future__ import annotations

import time

import pytest

from deploycheck import re2
from deploycheck.inventory import InventoryError, load_inventory


@pytest.mark.parametrize(
    "pattern, problem",
    [
        (r"Error(?=:)", "'(?=' is a lookahead in a regular expression, which RE2 lacks"),
        (r"(a)\1", r"'\1' is a backreference, which RE2 lacks"),
        (r"(?P<x>a)(?P=x)", "'(?P=' is a named backreference in a regular expression, which RE2 lacks"),
        (r"a\Z", r"'\Z' is not RE2 syntax (RE2 spells end of text \z)"),
        (r"a++", "'++' is a possessive quantifier, which RE2 lacks"),
        (r"x{2000}", "'{2000}' is a repetition count RE2 refuses (at most 1000)"),
        (r"(unclosed", "a '(' is never closed"),
        (r"a[b", "'[b' is not a valid regular expression: a '[' is never closed"),
    ],
)
def test_refusals_say_what_and_why(pattern, problem):
    with pytest.raises(re2.Re2Error) as caught:
        re2.compile(pattern)
    assert isinstance(caught.value, ValueError)
    assert caught.value.problem == problem
    assert str(caught.value) == f"invalid regex {pattern!r}: {problem}"
    assert re2.re2_incompatibility(pattern) == (caught.value.snippet, caught.value.reason)


def test_accepted_patterns_search_like_python_re():
    assert re2.re2_incompatibility(r"(?i)^importerror: (?P<name>\w+)") is None
    assert re2.compile(r"\d+").search("id 42").group() == "42"
    assert re2.compile(r"^b$", multiline=True).search("a\nb\nc").start() == 2
    assert re2.compile(r"^b$").search("a\nb\nc") is None
    assert re2.compile(r"p2_\w+").fullmatch("p2_nba") and not re2.compile(r"p2").fullmatch("p2_nba")


def test_refusals_are_not_logged_to_stderr(capfd):
    re2.re2_incompatibility("(?=x)")
    assert capfd.readouterr().err == ""


def test_catastrophic_id_pattern_checks_processor_names_in_linear_time(tmp_path):
    inventory = tmp_path / "services.yaml"
    inventory.write_text(f"""\
project: demo-project
region: us-west2
registry: us-west2-docker.pkg.dev/demo-project/demo
heartbeats:
  collection: processor_heartbeats
  id_pattern: '^(\\s*[\\w.]+\\s*)+:$'
  bad_id_patterns: ['(a+)+$']
  count: {{expected_min: 1, expected_max: 50, p1_above: 100, p0_above: 500}}
  max_age_hours: 2
services:
  - name: phase2
    processors: ['{"a" * 50_000}!']
""")
    started = time.monotonic()
    with pytest.raises(
        InventoryError,
        match=r"services\.yaml:12:18: services\[0\]\.processors\[0\]: processor 'a+!' "
        r"does not match heartbeats\.id_pattern",
    ):
        load_inventory(inventory)
    assert time.monotonic() - started < 5.0
