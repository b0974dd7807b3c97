"""Rollback first: the last revision that was ready before the failing one, or why none is known."""

from __future__ import annotations

from datetime import datetime, timezone

from deploycheck.cloudrun import RevisionState
from deploycheck.rules.rollback import RevisionListing, last_ready_before, rollback_first

WHY = "gcloud logging read 'severity>=ERROR' --project p --limit 50"


def revision(name: str, day: int, ready: bool = True) -> RevisionState:
    return RevisionState(
        name=name,
        service="svc",
        create_time=datetime(2026, 1, day, tzinfo=timezone.utc),
        containers=(),
        ready_state="CONDITION_SUCCEEDED" if ready else "CONDITION_FAILED",
        ready_message="",
        service_account="",
    )


LISTING = RevisionListing(
    (
        revision("svc-00001", 1),
        revision("svc-00002", 2, ready=False),
        revision("svc-00003", 3),
        revision("svc-00004", 4),
        revision("svc-00005", 5),
    )
)


def test_the_newest_ready_revision_older_than_the_failing_one_is_the_target():
    assert last_ready_before(LISTING, ["svc-00004"]) == "svc-00003"
    assert last_ready_before(LISTING, ["svc-00003"]) == "svc-00001"  # 00002 never got ready
    assert last_ready_before(LISTING, ["svc-00001"]) is None


def test_the_fix_is_the_rollback_then_the_command_that_shows_why():
    fix = rollback_first("svc", LISTING, ["svc-00004"], WHY, region="us-west2", project="p")
    assert fix.splitlines() == [
        "gcloud run services update-traffic svc --to-revisions=svc-00003=100 --region us-west2 --project p",
        WHY,
    ]


def test_without_a_listing_the_fix_says_why_and_how_to_find_the_revision():
    fix = rollback_first(
        "svc", RevisionListing(None, "revisions.list answered HTTP 403"), ["svc-00004"], WHY, region="r", project="p"
    )
    lines = fix.splitlines()
    assert lines[0] == (
        "# roll back to the last revision that was ready (the revisions could not be listed "
        "(revisions.list answered HTTP 403)): find it with"
    )
    assert lines[1].startswith("gcloud run revisions list --service svc --region r --project p") and lines[2] == WHY
