"""The cloud's clock on ours: the offset between the cloud's wall clock and the
run's clock, estimated from the HTTP `Date` headers of the cloud's replies, and
the cloud's own timestamps (Nova's `launched_at`, Neutron's `updated_at`,
instance action events) mapped onto the case's clock with it.

A `Date` header says the second in which the cloud stamped its reply
(RFC 9110: 1 s resolution, truncated). The reply was stamped after we sent the
request (`sent`, our clock) and before we read it (`received`), so the offset
`cloud - ours` lies in `[date - received, date + 1 - sent]` (widened by
`DATE_LAG_S` for servers that date replies from a lagging clock). One reply bounds
it to a little over 1 s; many replies, whose seconds tick over at different
moments of their round trips, narrow it down towards the shortest round trip.

Bounds that do not all overlap mean the clocks do not keep one offset (a step
of the cloud's clock, several API hosts with different clocks, a clock that
runs at another rate): the estimate is the interval most replies agree on
(Marzullo's algorithm), and it is refused when fewer than `MIN_AGREEMENT` of
them do, so the caller falls back to what it observed itself.

A cloud clock that runs at another rate than ours (`osbench sim serve` at time
scale 20 against a run on the real clock) keeps no offset, but a line:
`cloud = offset + rate * ours`. When one offset fails, the rate is fitted (a
robust slope of the replies, then the rate at which their bounds overlap
most) and accepted on the same agreement rule; the rates at which the bounds
still all overlap give the mapping its extra uncertainty.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: An HTTP date names a whole second (RFC 9110, IMF-fixdate).
DATE_RESOLUTION_S = 1.0
#: ... read from a clock that may lag a little, so the true instant of date D
#: is in [D, D + 1 + DATE_LAG_S): uwsgi dates with time(), Linux's coarse clock
#: (one reply in 60 here was dated the second before it was sent, by 4.8 ms: a
#: 4 ms tick), nginx with its time cached per event loop turn.
DATE_LAG_S = 0.02
#: Share of the replies the estimate must agree with. With one clock and one
#: offset every reply's bounds hold (they are conservative); below this the
#: replies describe more than one clock and no offset is used.
MIN_AGREEMENT = 0.9
#: Replies kept per estimator (three floats each: sent, received, dated): a bound on
#: memory for a case that polls for hours; beyond this, new replies are only counted.
MAX_SAMPLES = 20_000
#: A timestamp stored with whole seconds (Nova and Neutron on MySQL/MariaDB keep
#: DATETIME without fractions): MariaDB truncates the fraction, MySQL rounds it,
#: so the true instant of stamp S lies in [S - 0.5 s, S + 1 s).
WHOLE_SECOND_SPAN = (-0.5, 1.0)


#: Rates tried around the replies' robust slope (times and divided by this), and
#: the golden-section steps that find the best one (0.618^60: ~1e-12 of the range).
RATE_SPAN = 1.25
RATE_STEPS = 60
#: Rates, from the lowest to the highest the agreeing replies allow, at which a
#: fitted line's offsets are kept to bound a mapped time (the extremes lie at
#: the corners of a polygon; 33 points find them to ~1/32 of the rates' range).
RATE_GRID = 33
_GOLDEN = (5 ** 0.5 - 1) / 2


@dataclass(frozen=True)
class Offset:
    """The cloud's wall clock (POSIX seconds) against the run's clock:
    `cloud = offset_s + rate * ours` (rate 1: `offset_s` is cloud minus ours)."""

    #: The middle of the interval most replies agree on.
    offset_s: float
    #: Half its width: the true offset is within `offset_s ± uncertainty_s`.
    uncertainty_s: float
    #: Replies with a readable Date header, and how many the interval agrees with.
    samples: int
    agreeing: int
    rate: float = 1.0
    #: For a fitted rate: (rate, lowest offset, highest offset) the agreeing replies
    #: allow, over the rates they allow.
    lines: tuple[tuple[float, float, float], ...] = ()

    def at(self, ours: float) -> float:
        """Cloud minus ours at our clock's reading `ours`."""
        return self.offset_s + (self.rate - 1.0) * ours


@dataclass
class OffsetEstimator:
    """Collects (sent, received, Date) of replies; `estimate()` gives the offset."""

    _sent: list[float] = field(default_factory=list)
    _received: list[float] = field(default_factory=list)
    _dates: list[float] = field(default_factory=list)
    #: Replies seen without a (readable) Date header, and replies beyond MAX_SAMPLES.
    unreadable: int = 0
    dropped: int = 0

    def add(self, sent: float, received: float, date_header: str | None) -> None:
        """One reply: sent and read at `sent` and `received` on the run's clock."""
        stamp = parse_http_date(date_header)
        if stamp is None or received < sent:
            self.unreadable += 1
            return
        if len(self._dates) >= MAX_SAMPLES:
            self.dropped += 1
            return
        self._sent.append(sent)
        self._received.append(received)
        self._dates.append(stamp)

    @property
    def samples(self) -> int:
        return len(self._dates)

    def _bounds(self, rate: float) -> tuple[list[float], list[float]]:
        """Each reply's bounds on the offset at `rate`."""
        # A lagging server clock dates a reply up to DATE_LAG_S later than D + 1.
        lows = [d - rate * r for d, r in zip(self._dates, self._received, strict=True)]
        highs = [d + DATE_RESOLUTION_S + DATE_LAG_S - rate * s
                 for d, s in zip(self._dates, self._sent, strict=True)]
        return lows, highs

    def _width(self, rate: float, keep: list[int] | None = None) -> float:
        """How wide the bounds of the replies `keep` (all) overlap at `rate`; < 0: not at all.
        Concave in the rate (a min of lines minus a max of lines)."""
        idx = range(self.samples) if keep is None else keep
        return (min(self._dates[i] + DATE_RESOLUTION_S + DATE_LAG_S - rate * self._sent[i]
                    for i in idx)
                - max(self._dates[i] - rate * self._received[i] for i in idx))

    def estimate(self) -> Offset | None:
        """The offset, or None with no reply or when too few replies agree on one
        (nor on one line at a fitted rate)."""
        n = self.samples
        if n == 0:
            return None
        depth, low, high = _marzullo(*self._bounds(1.0))
        if depth >= MIN_AGREEMENT * n:
            return Offset(offset_s=(low + high) / 2, uncertainty_s=(high - low) / 2,
                          samples=n, agreeing=depth)
        return self._fitted()

    def _fitted(self) -> Offset | None:
        """The line at the rate where the replies' bounds overlap best (see the module doc)."""
        n = self.samples
        order = sorted(range(n), key=lambda i: self._sent[i])
        mid = [(self._sent[i] + self._received[i]) / 2 for i in order]
        date = [self._dates[i] for i in order]
        half = n // 2
        # Theil-Sen on pairs half the replies apart: a Date's second barely moves it.
        slopes = sorted((date[i + half] - date[i]) / (mid[i + half] - mid[i])
                        for i in range(n - half) if mid[i + half] > mid[i])
        if len(slopes) < 2 or slopes[len(slopes) // 2] <= 0:
            return None
        guess = slopes[len(slopes) // 2]
        rate = _golden_max(self._width, guess / RATE_SPAN, guess * RATE_SPAN)
        lows, highs = self._bounds(rate)
        depth, low, high = _marzullo(lows, highs)
        if depth < MIN_AGREEMENT * n:
            return None
        # The agreeing replies (all of them hold [low, high] at this rate), the rates
        # at which their bounds still meet, and the offsets each of those allows.
        keep = [i for i in range(n) if lows[i] <= low and highs[i] >= high]
        slowest = _edge(lambda b: self._width(b, keep), rate, guess / RATE_SPAN)
        fastest = _edge(lambda b: self._width(b, keep), rate, guess * RATE_SPAN)
        lines = []
        for k in range(RATE_GRID):
            b = slowest + (fastest - slowest) * k / (RATE_GRID - 1)
            b_lows, b_highs = self._bounds(b)
            a_low, a_high = max(b_lows[i] for i in keep), min(b_highs[i] for i in keep)
            if a_low <= a_high:
                lines.append((b, a_low, a_high))
        return Offset(offset_s=(low + high) / 2, uncertainty_s=(high - low) / 2, samples=n,
                      agreeing=depth, rate=rate, lines=tuple(lines))


def _marzullo(lows: list[float], highs: list[float]) -> tuple[int, float, float]:
    """The interval most of [lows[i], highs[i]] overlap: (how many, its ends)."""
    # Sweep the interval ends; at equal values a start sorts before an end (closed).
    events = sorted([(lo, 0) for lo in lows] + [(hi, 1) for hi in highs])
    depth = best = best_at = 0
    for i, (_, is_end) in enumerate(events):
        depth += -1 if is_end else 1
        if depth > best:
            best, best_at = depth, i
    if best == 0:
        return 0, 0.0, 0.0
    # The deepest overlap ends at the next event, an end (a start would deepen it).
    return best, events[best_at][0], events[best_at + 1][0]


def _golden_max(f: Callable[[float], float], low: float, high: float) -> float:
    """Where the unimodal `f` is largest on [low, high] (golden-section search)."""
    a, b = low, high
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(RATE_STEPS):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2


def _edge(f: Callable[[float], float], inside: float, outside: float) -> float:
    """Where `f` (>= 0 at `inside`, concave) falls below 0 towards `outside` (bisection);
    `outside` itself when it never does."""
    if f(outside) >= 0:
        return outside
    for _ in range(RATE_STEPS):
        middle = (inside + outside) / 2
        if f(middle) >= 0:
            inside = middle
        else:
            outside = middle
    return inside


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
    if offset.lines:  # a fitted rate: every line the replies allow
        low = min((stamp.low - a_high) / b for b, _, a_high in offset.lines)
        high = max((stamp.high - a_low) / b for b, a_low, _ in offset.lines)
    else:
        low = stamp.low - offset.offset_s - offset.uncertainty_s
        high = stamp.high - offset.offset_s + offset.uncertainty_s
    if not_before is not None:
        low = max(low, not_before)
    if not_after is not None:
        high = min(high, not_after)
    if low > high:
        return None
    return Mapped((low + high) / 2, (high - low) / 2)
