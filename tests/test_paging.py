"""The page guard on its own: every way a token can fail to end a listing."""

import pytest

from deploycheck.errors import ObservationError
from deploycheck.paging import Page, guarded_pages


def pages_from(script: dict):
    asked = []

    def fetch(token):
        asked.append(token)
        items, following = script[token]
        return Page(items, following)

    return fetch, asked


def test_a_listing_ends_at_the_page_without_a_token():
    fetch, asked = pages_from({None: ([1, 2], "a"), "a": ([3], "")})
    assert [page.items for page in guarded_pages("x", fetch, max_pages=10)] == [[1, 2], [3]]
    assert asked == [None, "a"]


@pytest.mark.parametrize(
    "script, message",
    [
        ({None: ([1], "a"), "a": ([2], "a")}, "page 2 answered a page token this listing already followed ('a')"),
        (
            {None: ([1], "a"), "a": ([2], "b"), "b": ([3], "a")},
            "page 3 answered a page token this listing already followed ('a')",
        ),
    ],
)
def test_a_repeated_or_cycling_token_is_an_error_naming_the_api(script, message):
    fetch, _ = pages_from(script)
    with pytest.raises(ObservationError) as caught:
        list(guarded_pages("the revisions of svc (Cloud Run revisions.list)", fetch, max_pages=10))
    assert str(caught.value).startswith("cannot observe the revisions of svc (Cloud Run revisions.list): " + message)


def test_empty_pages_in_a_row_are_bounded_and_an_entry_resets_the_count():
    script = {
        None: ([], "t1"),
        "t1": ([], "t2"),
        "t2": ([1], "t3"),
        "t3": ([], "t4"),
        "t4": ([], "t5"),
        "t5": ([], "t6"),
        "t6": ([], "t7"),
    }
    fetch, asked = pages_from(script)
    with pytest.raises(ObservationError, match="3 pages in a row were empty yet promised more"):
        list(guarded_pages("x", fetch, max_pages=100, max_empty_pages=2))
    assert asked == [None, "t1", "t2", "t3", "t4", "t5"]


def test_more_pages_than_allowed_is_an_error():
    fetch, _ = pages_from({None: ([1], "t1"), "t1": ([2], "t2"), "t2": ([3], "t3")})
    with pytest.raises(ObservationError, match="needed more than 2 pages"):
        list(guarded_pages("x", fetch, max_pages=2))
