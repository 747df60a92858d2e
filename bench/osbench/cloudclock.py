"""The cloud's clock on ours: the offset between the cloud's wall clock and the
run's clock, estimated from the HTTP `Date` headers of the cloud's replies, and
the cloud's own timestamps (Nova's `launched_at`, Neutron's `updated_at`,
instance action events) mapped onto the case's clock with it.

A `Date` header says the second in which the cloud stamped its reply
(RFC 9110: 1 s resolution, truncated). The reply was stamped after we sent the
request (`sent`, our clock) and before we read it (`received`), so the offset
`cloud - ours` lies in `[date - received, date + 1 - sent]`. One reply bounds
it to a little over 1 s; many replies, whose seconds tick over at different
moments of their round trips, narrow it down towards the shortest round trip.

Bounds that do not all overlap mean the clocks do not keep one offset (a step
of the cloud's clock, several API hosts with different clocks, a clock that
runs at another rate, like a simulator served at a time scale other than the
run's): the estimate is the interval most replies agree on (Marzullo's
algorithm), and it is refused when fewer than `MIN_AGREEMENT` of them do, so
the caller falls back to what it observed itself.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: An HTTP date names a whole second (RFC 9110, IMF-fixdate).
DATE_RESOLUTION_S = 1.0
#: Share of the replies the estimate must agree with. With one clock and one
#: offset every reply's bounds hold (they are conservative); below this the
#: replies describe more than one clock and no offset is used.
MIN_AGREEMENT = 0.9
#: Replies kept per estimator (two floats each): a 1000-instance case makes
#: ~1000 deletes and a few hundred polls; beyond this, new replies are only counted.
MAX_SAMPLES = 20_000
#: A timestamp stored with whole seconds (Nova and Neutron on MySQL/MariaDB keep
#: DATETIME without fractions): MariaDB truncates the fraction, MySQL rounds it,
#: so the true instant of stamp S lies in [S - 0.5 s, S + 1 s).
WHOLE_SECOND_SPAN = (-0.5, 1.0)


@dataclass(frozen=True)
class Offset:
    """Cloud wall clock (POSIX seconds) minus the run's clock reading, at one moment."""

    #: The middle of the interval most replies agree on.
    offset_s: float
    #: Half its width: the true offset is within `offset_s ± uncertainty_s`.
    uncertainty_s: float
    #: Replies with a readable Date header, and how many the interval agrees with.
    samples: int
    agreeing: int

    def as_dict(self) -> dict[str, Any]:
        return {"offset_s": self.offset_s, "uncertainty_s": self.uncertainty_s,
                "samples": self.samples, "agreeing": self.agreeing}


@dataclass
class OffsetEstimator:
    """Collects (sent, received, Date) of replies; `estimate()` gives the offset."""

    _lows: list[float] = field(default_factory=list)
    _highs: list[float] = field(default_factory=list)
    #: Replies seen without a (readable) Date header, and replies beyond MAX_SAMPLES.
    unreadable: int = 0
    dropped: int = 0

    def add(self, sent: float, received: float, date_header: str | None) -> None:
        """One reply: sent and read at `sent` and `received` on the run's clock."""
        stamp = parse_http_date(date_header)
        if stamp is None or received < sent:
            self.unreadable += 1
            return
        if len(self._lows) >= MAX_SAMPLES:
            self.dropped += 1
            return
        self._lows.append(stamp - received)
        self._highs.append(stamp + DATE_RESOLUTION_S - sent)

    @property
    def samples(self) -> int:
        return len(self._lows)

    def estimate(self) -> Offset | None:
        """The offset, or None with no reply or when too few replies agree on one."""
        n = len(self._lows)
        if n == 0:
            return None
        # Marzullo: sweep the interval ends; the deepest overlap is the estimate.
        # At equal values a start sorts before an end (bounds are closed).
        events = sorted([(lo, 0) for lo in self._lows] + [(hi, 1) for hi in self._highs])
        depth = best = best_at = 0
        for i, (_, is_end) in enumerate(events):
            depth += -1 if is_end else 1
            if depth > best:
                best, best_at = depth, i
        if best < MIN_AGREEMENT * n:
            return None
        # The deepest overlap ends at the next event, an end (a start would deepen it).
        best_lo, best_hi = events[best_at][0], events[best_at + 1][0]
        return Offset(offset_s=(best_lo + best_hi) / 2, uncertainty_s=(best_hi - best_lo) / 2,
                      samples=n, agreeing=best)


def parse_http_date(value: str | None) -> float | None:
    """POSIX seconds of an HTTP `Date` header; None when absent or unreadable."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" per RFC 5322: still UTC for HTTP
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class CloudTime:
    """A cloud timestamp as an interval of POSIX seconds: the truth is in [low, high]."""

    low: float
    high: float

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2


def parse_cloud_time(value: object) -> CloudTime | None:
    """An OpenStack timestamp (`2026-11-30T21:00:00.123456`, `...Z`, `...+00:00`;
    naive means UTC, as Nova and Neutron write it) as an interval; None if unreadable.
    A stamp without a fraction of a second (or with `.000000`) was stored in whole
    seconds: see WHOLE_SECOND_SPAN."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    t = moment.timestamp()
    if moment.microsecond:
        return CloudTime(t, t)
    return CloudTime(t + WHOLE_SECOND_SPAN[0], t + WHOLE_SECOND_SPAN[1])


@dataclass(frozen=True)
class Mapped:
    """A cloud timestamp on the run's clock: `value_s`, true within ± `uncertainty_s`."""

    value_s: float
    uncertainty_s: float


def on_our_clock(stamp: CloudTime, offset: Offset, *, not_before: float | None = None,
                 not_after: float | None = None) -> Mapped | None:
    """`stamp` on the run's clock, narrowed to what we saw ourselves: the event
    happened after `not_before` and by `not_after` (e.g. the polls around it).
    None when the stamp contradicts them (its interval and theirs do not meet)."""
    low = stamp.low - offset.offset_s - offset.uncertainty_s
    high = stamp.high - offset.offset_s + offset.uncertainty_s
    if not_before is not None:
        low = max(low, not_before)
    if not_after is not None:
        high = min(high, not_after)
    if low > high:
        return None
    return Mapped((low + high) / 2, (high - low) / 2)
