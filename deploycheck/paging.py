"""Following page tokens without trusting them: a listing must end, and must not count a page twice.

A server (or a proxy in front of it) that answers a token it already gave, cycles A -> B -> A,
or keeps answering empty pages with a fresh token would otherwise hold a reader forever and, for
repeated pages, make it count the same entries again. Every paged reader goes through
`guarded_pages`, so those failures end as an ObservationError naming the API and the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from .errors import ObservationError

T = TypeVar("T")

# Cloud Logging documents empty pages that carry a token while it searches a long window, so a
# few in a row are normal; thousands are a loop (an empty-page loop once ran 87,000 requests).
DEFAULT_MAX_EMPTY_PAGES = 50


class Page(Generic[T]):
    __slots__ = ("items", "next_token")

    def __init__(self, items: Sequence[T], next_token: str | None):
        self.items = items
        self.next_token = next_token or None  # the APIs omit the token, or send "", on the last page


def guarded_pages(
    what: str,
    fetch_page: Callable[[str | None], Page[T]],
    *,
    max_pages: int,
    max_empty_pages: int = DEFAULT_MAX_EMPTY_PAGES,
) -> Iterator[Page[T]]:
    """Pages of one listing, first page first: fetch_page(None), then fetch_page(token) for each
    token the previous page gave. Stops when a page has no token, or when the caller stops.

    Raises ObservationError (what: e.g. "the boot-error lines of svc (Cloud Logging entries.list)")
    when a token comes back that this listing already followed (a repeat or a cycle), when more
    than `max_empty_pages` pages in a row are empty yet promise more, or when the listing needs
    more than `max_pages` pages."""
    seen: set[str] = set()
    token: str | None = None
    empty_in_a_row = 0
    for number in range(1, max_pages + 1):
        page = fetch_page(token)
        yield page
        if page.next_token is None:
            return
        if page.next_token in seen:
            raise ObservationError(
                what,
                f"page {number} answered a page token this listing already followed "
                f"({_short(page.next_token)}): the pages repeat, so the listing would "
                "never end and would count entries twice",
            )
        empty_in_a_row = 0 if page.items else empty_in_a_row + 1
        if empty_in_a_row > max_empty_pages:
            raise ObservationError(
                what,
                f"{empty_in_a_row} pages in a row were empty yet promised more "
                f"(gave up after {max_empty_pages}): the listing does not progress",
            )
        seen.add(page.next_token)
        token = page.next_token
    raise ObservationError(what, f"the listing needed more than {max_pages} pages; stopped there")


def _short(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:37] + "...")
