"""Posts: staff queue them, a second person approves, the scheduler publishes them once.

- `states`: the states (a StrEnum), their Chinese names, the staff transitions;
- `frontmatter`: what staff write (front matter, moments, times of day, key dates);
- `workflow`: create, edit a draft, submit, approve, cancel, reopen, reschedule, history;
- `quota`: the account's mass-send quota, as warnings;
- `publishing`: the scheduler's tick, deliveries, WeChat's reports, covers.
"""

from bot.posts.frontmatter import (
    calendar_time,
    key_dates,
    parse_clock,
    parse_markdown,
    parse_time,
)
from bot.posts.publishing import (
    COVER_LIMIT,
    TickReport,
    account_tags,
    audience_warnings,
    clientmsgid,
    counts,
    publish_due,
    record_job_finish,
    record_sent,
    upload_cover,
)
from bot.posts.quota import quota_warnings
from bot.posts.states import EVERYONE, STATES, TZ, PostError, State, local
from bot.posts.workflow import (
    act,
    create,
    edit_draft,
    history,
    reschedule,
    schedule_moment,
    set_cover,
)

__all__ = [
    "COVER_LIMIT",
    "account_tags",
    "audience_warnings",
    "EVERYONE",
    "STATES",
    "TZ",
    "PostError",
    "State",
    "TickReport",
    "act",
    "calendar_time",
    "clientmsgid",
    "counts",
    "create",
    "history",
    "key_dates",
    "local",
    "parse_clock",
    "parse_markdown",
    "parse_time",
    "publish_due",
    "quota_warnings",
    "record_job_finish",
    "record_sent",
    "reschedule",
    "schedule_moment",
    "set_cover",
    "upload_cover",
    "edit_draft",
]
