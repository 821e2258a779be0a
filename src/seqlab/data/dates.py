"""A synthetic translation task that works offline: dates as people write them -> ISO 8601.

``date_pairs(count, seed=...)`` draws calendar dates uniformly from 1950-01-01 to
2049-12-31 and writes each in one of ``FORMATS`` (chosen uniformly), then in
its own case, all lower case or all upper case; the target is the date as
YYYY-MM-DD. For example::

    "3 March 2017"            -> "2017-03-03"
    "Mar 3rd, 2017"           -> "2017-03-03"
    "FRIDAY, MARCH 3, 2017"   -> "2017-03-03"
    "03/03/17"                -> "2017-03-03"

Every source names exactly one date, so a perfect score is possible: a
separator fixes the order of numeric fields ("/" is month/day/year as in the
US, "." after a day is day.month.year as in Germany, a four-digit year first
is year, month, day), and a two-digit year YY means 19YY for YY >= 50 and 20YY
below (hence the range). Weekdays are the date's real weekday.

Built-ins for ``--data``: ``builtin:dates`` (22,000 pairs, seed 2017: with the
default ``--val-fraction 0.1``, 19,800 train and 2,200 validate) and
``builtin:dates-test`` (2,000 pairs of another seed, none of whose sources
occurs in ``builtin:dates``: held-out dates for ``seqlab eval``).
"""
from __future__ import annotations

import datetime
import random
from typing import Callable

FIRST_DAY = datetime.date(1950, 1, 1)
LAST_DAY = datetime.date(2049, 12, 31)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
BUILTIN_DATES = {"dates": (22_000, 2017), "dates-test": (2_000, 8601)}


def ordinal(day: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    if 10 <= day % 100 <= 20:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def _month(date: datetime.date) -> str:
    return MONTHS[date.month - 1]


def _short_month(date: datetime.date) -> str:
    return _month(date)[:3]


def _weekday(date: datetime.date) -> str:
    return WEEKDAYS[date.weekday()]


def _year2(date: datetime.date) -> str:
    return f"{date.year % 100:02d}"


FORMATS: tuple[Callable[[datetime.date], str], ...] = (
    lambda d: f"{d.day} {_month(d)} {d.year}",  # 3 March 2017
    lambda d: f"{d.day:02d} {_short_month(d)} {d.year}",  # 03 Mar 2017
    lambda d: f"{_month(d)} {d.day}, {d.year}",  # March 3, 2017
    lambda d: f"{_short_month(d)} {ordinal(d.day)}, {d.year}",  # Mar 3rd, 2017
    lambda d: f"{_short_month(d)}. {d.day}, {d.year}",  # Mar. 3, 2017
    lambda d: f"{_weekday(d)}, {_month(d)} {d.day}, {d.year}",  # Friday, March 3, 2017
    lambda d: f"{_weekday(d)[:3]}, {d.day} {_short_month(d)} {d.year}",  # Fri, 3 Mar 2017
    lambda d: f"{ordinal(d.day)} of {_month(d)} {d.year}",  # 3rd of March 2017
    lambda d: f"the {ordinal(d.day)} of {_month(d)}, {d.year}",  # the 3rd of March, 2017
    lambda d: f"{d.month:02d}/{d.day:02d}/{_year2(d)}",  # 03/03/17
    lambda d: f"{d.month}/{d.day}/{d.year}",  # 3/3/2017
    lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",  # 2017.03.03
    lambda d: f"{d.year}/{d.month}/{d.day}",  # 2017/3/3
    lambda d: f"{d.day}.{d.month}.{d.year}",  # 3.3.2017
    lambda d: f"{d.day:02d}.{d.month:02d}.{_year2(d)}",  # 03.03.17
    lambda d: f"{d.day}-{_short_month(d).upper()}-{d.year}",  # 3-MAR-2017
    lambda d: f"{d.day:02d}-{_short_month(d)}-{_year2(d)}",  # 03-Mar-17
    lambda d: f"{d.year}{d.month:02d}{d.day:02d}",  # 20170303
    lambda d: f"{_month(d)} {ordinal(d.day)} {d.year}",  # March 3rd 2017
    lambda d: f"{d.day} {_short_month(d)} '{_year2(d)}",  # 3 Mar '17
    lambda d: d.isoformat(),  # 2017-03-03, already normal
)
CASES: tuple[Callable[[str], str], ...] = (lambda text: text, str.lower, str.upper)


def date_pairs(count: int, *, seed: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """``count`` (human-written date, ISO date) pairs, the same for the same seed; sources in ``exclude`` are skipped."""
    rng = random.Random(seed)
    span = (LAST_DAY - FIRST_DAY).days
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        date = FIRST_DAY + datetime.timedelta(days=rng.randint(0, span))
        source = rng.choice(CASES)(rng.choice(FORMATS)(date))
        if source not in exclude:
            pairs.append((source, date.isoformat()))
    return pairs


def builtin_date_pairs(name: str) -> list[tuple[str, str]]:
    """The pairs of ``builtin:NAME`` for a NAME in ``BUILTIN_DATES``."""
    count, seed = BUILTIN_DATES[name]
    if name == "dates":
        return date_pairs(count, seed=seed)
    training = BUILTIN_DATES["dates"]
    return date_pairs(count, seed=seed, exclude={source for source, _ in date_pairs(training[0], seed=training[1])})
