"""Scenario times: absolute RFC 3339, or relative to load time ("now", "now-3d", "now+90m").

Relative times keep scenarios valid on any day: an image built "now-150d" stays old.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

RELATIVE_TIME = re.compile(r"^now(?:(?P<sign>[+-])(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhdw]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def resolve_time(value: str | datetime, now: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    match = RELATIVE_TIME.match(str(value).strip())
    if match:
        if not match.group("sign"):
            return now
        delta = timedelta(**{_UNITS[match.group("unit")]: float(match.group("amount"))})
        return now + delta if match.group("sign") == "+" else now - delta
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def rfc3339(moment: datetime) -> str:
    """Google's REST timestamp form, with nanoseconds as the real APIs send them."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"
