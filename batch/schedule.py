"""When the nightly job runs next."""

from __future__ import annotations

from datetime import datetime, time, timedelta


def next_run_after(now: datetime, at: str) -> datetime:
    """The first HH:MM (in now's timezone) strictly after `now`."""
    hour, minute = (int(part) for part in at.split(":"))
    due = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
    return due if due > now else due + timedelta(days=1)
