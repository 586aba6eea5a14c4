"""`chatcrm stats`: response metrics measured from the facts, per channel and employee.

Every figure comes from the sessions and waits derived from the stored messages, closes,
completions and assignments (the same derivation as the queue, stored beside it and
compared by `chatcrm check`); a period reads only the sessions opened and the waits
started in it:

- **first response** — for each session a client opened: its first reply minus its
  opening. A session nobody answered has no first response (it shows in `unanswered`).
- **wait** — every time a client waited for an answer: from the first client message
  after the last reply (a client writing again restarts the clock there, not at the
  session's start) until the reply; a wait that no reply ended counts until the session
  closed, or until now while the client still waits. `unanswered` counts those.
- **time to close** — for each closed session: its close minus its opening. A message
  after a close opens a new session, timed from its own first message, so a reopened
  conversation never stretches the figures.

A figure belongs to the period in which it started (the session's opening, or the
client's first waiting message). Employees: a reply's author; for an unanswered wait and
for time to close, the session's responsible employee.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from itertools import chain
from dataclasses import dataclass, field

import orjson

from chatcrm import times
from chatcrm.errors import UsageError
from chatcrm.store import Store
from chatcrm.store import queries

METRICS = ("first_response", "wait", "time_to_close")
MOST_RUNS = 16  # a series of more sorted runs than this is merged before its ranks are picked
NOBODY = "(nobody)"


@dataclass
class Series:
    """The durations (seconds, never negative) of one metric in one scope: the sorted runs
    its groups gave (a group's run is shared by the scopes it counts in, never copied), and
    the values added one at a time."""

    runs: list[array] = field(default_factory=list)
    added: array = field(default_factory=lambda: array("q"))
    unanswered: int = 0

    def add(self, seconds: int) -> None:
        self.added.append(max(0, seconds))

    def summary(self, metric: str) -> dict:
        runs = [run for run in (*self.runs, array("q", sorted(self.added))) if run]
        if len(runs) > MOST_RUNS:  # picking from many runs costs more than merging them once
            runs = [array("q", sorted(chain.from_iterable(runs)))]
        count = sum(map(len, runs))
        result: dict = {"count": count}
        if count:
            middle = (count - 1) // 2
            median = _nth(runs, middle)
            if count % 2 == 0:  # the mean of the two middle values, as statistics.median gives it
                # (exactly: durations between years 1 and 9999 stay far below 2**53)
                pair = median + _nth(runs, middle + 1)
                median = pair // 2 if pair % 2 == 0 else pair / 2
            result["median_seconds"] = median
            result["p90_seconds"] = _nth(runs, math.ceil(0.9 * count) - 1)  # nearest rank
            result["worst_seconds"] = max(run[-1] for run in runs)
        else:
            result.update(median_seconds=None, p90_seconds=None, worst_seconds=None)
        if metric == "wait":
            result["unanswered"] = self.unanswered
        return result


def _nth(runs: list[array], k: int) -> int:
    """The k-th smallest (from 0) of the values of sorted runs of integers, without merging
    them: the least value that more than k of them do not exceed, found by halving the range
    between the least and the greatest, each step counted by bisection in every run."""
    if len(runs) == 1:
        return runs[0][k]
    low, high = min(run[0] for run in runs), max(run[-1] for run in runs)
    while low < high:
        middle = (low + high) // 2
        if sum(bisect_right(run, middle) for run in runs) > k:
            high = middle
        else:
            low = middle + 1
    return low


class Scope:
    def __init__(self) -> None:
        self.series = {metric: Series() for metric in METRICS}

    def summary(self) -> dict:
        return {metric: self.series[metric].summary(metric) for metric in METRICS}


@dataclass
class Stats:
    since: str | None
    until: str | None
    now: str
    sessions: int = 0
    overall: Scope = field(default_factory=Scope)
    by_channel: dict[str, Scope] = field(default_factory=dict)
    by_employee: dict[str, Scope] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "since": self.since,
            "until": self.until,
            "now": self.now,
            "sessions": self.sessions,
            "overall": self.overall.summary(),
            "by_channel": {name: scope.summary() for name, scope in sorted(self.by_channel.items())},
            "by_employee": {name: scope.summary() for name, scope in sorted(self.by_employee.items())},
        }


def period(since: str | None, until: str | None, tz, now: str) -> tuple[str | None, str | None]:
    """`--since` / `--until` (a time, a date, or a duration ago) as stored times."""
    bounds = []
    for option, value in (("--since", since), ("--until", until)):
        try:
            bounds.append(None if value is None else times.parse_moment(value, tz, now))
        except ValueError as error:
            raise UsageError(f"{option}: {error}")
    start, end = bounds
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since ({start}) must be before --until ({end})")
    return start, end


def compute(store: Store, *, now: str, since: str | None = None, until: str | None = None) -> Stats:
    """The metrics of every session and wait that started in [since, until)."""
    stats = Stats(since, until, now)
    with store.read():
        stats.sessions = queries.stats_session_count(store, since, until)
        for channel, replier, responsible, first_responses, closes in queries.stats_sessions(store, since, until):
            _collect(stats, "first_response", channel, replier, first_responses)
            _collect(stats, "time_to_close", channel, responsible, closes)
        for channel, employee, waits, unanswered in queries.stats_waits(store, since, until, times.epoch(now)):
            _collect(stats, "wait", channel, employee, waits, unanswered)
    return stats


def _collect(stats: Stats, metric: str, channel: str, employee: str | None, listed: str | None,
             unanswered: int = 0) -> None:
    """One group's durations (a JSON array of seconds, as the store lists them; none
    when None) into the overall series, its channel's and its employee's (nobody's when
    None). A negative duration (clocks that disagree) counts as 0.

    Each group's durations are sorted once here: a scope's series is the runs of its
    groups, whose summary picks its ranks from them without sorting anything again."""
    if listed is None:
        return
    ordered = sorted(orjson.loads(listed))
    if ordered[0] < 0:
        ordered = [max(0, seconds) for seconds in ordered]
    run = array("q", ordered)
    for scope in (stats.overall, stats.by_channel.setdefault(channel, Scope()),
                  stats.by_employee.setdefault(employee or NOBODY, Scope())):
        series = scope.series[metric]
        series.runs.append(run)
        series.unanswered += unanswered
