"""Run-to-run comparison: is the candidate worse, better, or is it noise?

For each case both runs have and each metric of the kind: baseline, candidate,
their ratio and a verdict. "worse" or "better" needs BOTH the relative change
beyond the metric's threshold AND a significance test on the raw samples
(asv's rule): Mann-Whitney U (two-sided) for samples such as durations and
throughputs, Fisher's exact test for success rates. Otherwise "noise".
"new failure" / "fixed": a success rate that goes from no failures to some, or
back. "incomparable": a case or metric that only one run has, or no samples.

Monitor peaks (`compare_peaks`): when either run has monitor rows, the peak of
every monitored series per case (`osbench.monitors.series.peaks`: CPU, queue
depths, API latency, ...) is compared too, e.g. "neutron-dhcp-agent backlog
peak 183 -> 4, better". Lower is better for every peak. A peak is one number
per case, so with one run of a case each the verdict is the relative change
alone: beyond PEAK_THRESHOLD_PCT (and PEAK_MIN_CHANGE in the peak's unit) it
is better or worse, otherwise noise; with repeats (`repeat:`, case ids
`...#N`) both runs have several peaks and the verdict also needs Mann-Whitney
U at alpha. Peak verdicts never make `osbench compare` fail: they say where
to look, next to the metrics that judge. They travel with the comparison
table as records in `table.attrs["monitor_peaks"]` (`monitor_peaks(table)`
reads them back), which the renderers print after it.

Capacity searches (`compare_searches`): when either run has capacity searches,
each search (matched by its sweep point's id, the `search` column) is judged by
the interval its boundary was found in: [capacity, first_fail), with capacity
None meaning below start and first_fail None beyond max (or, for a search that
did not end, not yet found). Only intervals that do not overlap say anything:
the candidate's higher is "better", lower "worse"; overlapping ones are
"inconclusive" (e.g. "default: count capacity 180 -> 1000, better"). Each
search is also a row of the comparison table (metric "capacity (count)"), so a
worse capacity fails `osbench compare` like any worse metric; the searches'
records travel in `table.attrs["searches"]` (`searches(table)`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

import pandas as pd

from osbench import kinds, stats
from osbench.errors import UserError
from osbench.kinds import MetricSpec
from osbench.results import Run

#: Monitor peaks: a change of more than this percent of the baseline's peak ...
PEAK_THRESHOLD_PCT = 20.0
#: ... and of at least this much in the peak's unit is better or worse (a queue
#: going from 1 to 2 messages is +100% and means nothing). Units not listed: 0.
PEAK_MIN_CHANGE: dict[str, float] = {"%": 5.0, "s": 0.05, "messages": 5.0, "ports": 5.0,
                                     "builds": 5.0, "calls": 2.0}
#: `--threshold monitor_peaks:PCT` sets PEAK_THRESHOLD_PCT for one comparison.
PEAKS_THRESHOLD_KEY = "monitor_peaks"
PEAK_COLUMNS = ["case", "source", "subject", "metric", "unit", "baseline", "candidate",
                "change_pct", "p_value", "verdict", "note"]

SEARCH_COLUMNS = ["search", "param", "baseline", "baseline_first_fail", "candidate",
                  "candidate_first_fail", "baseline_interval", "candidate_interval",
                  "verdict", "note"]

Verdict = Literal["worse", "better", "noise", "new failure", "fixed", "incomparable",
                  "inconclusive"]
#: Verdicts that make `osbench compare` exit 1.
FAILING: frozenset[str] = frozenset({"worse", "new failure"})


@dataclass(frozen=True)
class Row:
    case: str
    metric: str
    baseline: float | None
    candidate: float | None
    ratio: float | None
    p_value: float | None
    verdict: Verdict
    note: str = ""


def compare(base: Run, cand: Run, *, thresholds: Mapping[str, float] | None = None,
            alpha: float = 0.05) -> pd.DataFrame:
    """One row per (case, metric): baseline, candidate, ratio, p-value, verdict."""
    kind = base.manifest.get("scenario", {}).get("kind")
    other = cand.manifest.get("scenario", {}).get("kind")
    if kind != other:
        raise UserError(f"cannot compare a {kind} run with a {other} run")
    spec_of_kind = kinds.get(str(kind))
    specs = spec_of_kind.compare if spec_of_kind is not None else ()
    searched = _has_searches(base) or _has_searches(cand)
    if not specs and not searched:
        raise UserError(f"no comparison is defined for kind {kind!r}")
    thresholds = dict(thresholds or {})
    unknown = set(thresholds) - {s.name for s in specs} - {PEAKS_THRESHOLD_KEY}
    if unknown:
        raise UserError(f"unknown metric(s) in --threshold: {', '.join(sorted(unknown))}",
                        hint=f"{kind} metrics: {', '.join(s.name for s in specs)}, and "
                        f"{PEAKS_THRESHOLD_KEY} for monitor peaks")
    rows: list[Row] = []
    cases = _cases(base) | _cases(cand)
    for case in sorted(cases):
        for spec in specs:
            threshold = thresholds.get(spec.name, spec.default_threshold_pct)
            for label, b, c in _pairs(base, cand, case, spec):
                rows.append(_judge(case, label, spec, b, c, threshold, alpha))
    table = pd.DataFrame([r.__dict__ for r in rows],
                         columns=["case", "metric", "baseline", "candidate", "ratio",
                                  "p_value", "verdict", "note"])
    if searched:
        found = compare_searches(base, cand)
        table = pd.DataFrame([*table.to_dict("records"),
                              *(r.__dict__ for r in _search_rows(found))],
                             columns=table.columns)
        table.attrs["searches"] = found.to_dict("records")
    if _has_monitors(base) or _has_monitors(cand):
        table.attrs["monitor_peaks"] = compare_peaks(
            base, cand, threshold_pct=thresholds.get(PEAKS_THRESHOLD_KEY, PEAK_THRESHOLD_PCT),
            alpha=alpha).to_dict("records")
    return table


def monitor_peaks(table: pd.DataFrame) -> pd.DataFrame:
    """The monitor peaks `compare` attached to its table (empty without monitors)."""
    return pd.DataFrame(table.attrs.get("monitor_peaks", []), columns=PEAK_COLUMNS)


def searches(table: pd.DataFrame) -> pd.DataFrame:
    """The capacity searches `compare` attached to its table (empty without searches)."""
    return pd.DataFrame(table.attrs.get("searches", []), columns=SEARCH_COLUMNS)


def _has_searches(run: Run) -> bool:
    return not run.table("search").empty or not run.table("search_summary").empty


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _search_ends(run: Run) -> dict[str, dict[str, Any]]:
    """Per search id: param, capacity, first_fail, max, and whether it ended; a search
    without a `search_summary` row (killed) has the bounds of its journaled steps."""
    out: dict[str, dict[str, Any]] = {}
    steps = run.table("search")
    if "search" in steps.columns:
        for r in steps.to_dict("records"):
            end = out.setdefault(str(r["search"]), {
                "param": r.get("param"), "capacity": None, "first_fail": None,
                "max": None, "ended": False})
            value, verdict = _number(r.get("value")), r.get("verdict")
            if value is not None and verdict == "pass":
                end["capacity"] = max(value, end["capacity"] or value)
            elif value is not None and verdict == "fail":
                end["first_fail"] = min(value, end["first_fail"] or value)
    summaries = run.table("search_summary")
    if "search" in summaries.columns:
        for r in summaries.to_dict("records"):
            out[str(r["search"])] = {
                "param": r.get("param"), "capacity": _number(r.get("capacity")),
                "first_fail": _number(r.get("first_fail")), "max": _number(r.get("max")),
                "ended": r.get("status") in ("done", "budget", "error")}
    return out


def _interval(end: Mapping[str, Any]) -> tuple[float, float, str]:
    """[capacity, first_fail) as numbers (-inf: below start; inf: beyond max) and text."""
    low = -math.inf if end["capacity"] is None else float(end["capacity"])
    high = math.inf if end["first_fail"] is None else float(end["first_fail"])
    left = "[below start" if end["capacity"] is None else f"[{low:g}"
    if end["first_fail"] is not None:
        right = f"{high:g})"
    elif not end["ended"]:
        right = "not yet failed)"
    else:
        right = "beyond max" + (f" {end['max']:g}" if end["max"] is not None else "") + ")"
    return low, high, f"{left}, {right}"


def compare_searches(base: Run, cand: Run) -> pd.DataFrame:
    """Per search (sweep point id): both capacities and first failures, their intervals
    and a verdict: better or worse only when the intervals do not overlap."""
    b_ends, c_ends = _search_ends(base), _search_ends(cand)
    rows = []
    for search in sorted(b_ends.keys() | c_ends.keys()):
        b, c = b_ends.get(search), c_ends.get(search)
        if b is None or c is None:
            side = "baseline" if b is None else "candidate"
            param = (b or c or {}).get("param")
            rows.append({"search": search, "param": param, "verdict": "incomparable",
                         "note": f"not in {side}"})
            continue
        b_low, b_high, b_text = _interval(b)
        c_low, c_high, c_text = _interval(c)
        row = {"search": search, "param": b["param"], "baseline": b["capacity"],
               "baseline_first_fail": b["first_fail"], "candidate": c["capacity"],
               "candidate_first_fail": c["first_fail"], "baseline_interval": b_text,
               "candidate_interval": c_text}
        notes = [f"{side} search did not end" for side, end in (("baseline", b),
                 ("candidate", c)) if not end["ended"]]
        if b["param"] != c["param"]:
            verdict = "incomparable"
            notes.insert(0, f"searched {b['param']} vs {c['param']}")
        elif b_high <= c_low:
            verdict = "better"
        elif c_high <= b_low:
            verdict = "worse"
        else:
            verdict = "inconclusive"
            notes.insert(0, "the searched intervals overlap")
        rows.append(row | {"verdict": verdict, "note": "; ".join(notes)})
    return pd.DataFrame(rows, columns=SEARCH_COLUMNS)


def _search_rows(found: pd.DataFrame) -> list[Row]:
    """Each search as a row of the comparison table: capacity baseline -> candidate."""
    out = []
    for r in found.to_dict("records"):
        b, c = _number(r["baseline"]), _number(r["candidate"])
        ratio = stats.ratio(c, b) if b is not None and c is not None else None
        intervals = (f"boundary in {r['baseline_interval']} -> {r['candidate_interval']}"
                     if isinstance(r["baseline_interval"], str) else "")
        note = "; ".join(n for n in (intervals, r["note"] or "") if n)
        verdict: Verdict = r["verdict"]
        out.append(Row(str(r["search"]), f"capacity ({r['param']})", b, c, ratio, None,
                       verdict, note))
    return out


def search_sentences(found: pd.DataFrame) -> list[str]:
    """"default: count capacity 180 -> 1000, better (boundary in [180, 200) -> ...)"."""
    lines = []
    for r in found.to_dict("records"):
        if r["verdict"] == "incomparable":
            lines.append(f"{r['search']}: incomparable ({r['note']})")
            continue
        note = f"; {r['note']}" if r["note"] else ""
        lines.append(f"{r['search']}: {r['param']} capacity {_capacity(r['baseline'])} -> "
                     f"{_capacity(r['candidate'])}, {r['verdict']} (boundary in "
                     f"{r['baseline_interval']} -> {r['candidate_interval']}{note})")
    return lines


def _capacity(value: Any) -> str:
    number = _number(value)
    return "none (below start)" if number is None else f"{number:g}"


SEARCHES_NOTE = ("Capacity searches: the candidate is better or worse only when the "
                 "intervals [capacity, first_fail) the two searches narrowed their "
                 "boundary to do not overlap; otherwise inconclusive.")


def _has_monitors(run: Run) -> bool:
    return not run.table("monitor").empty


def _run_peaks(run: Run) -> dict[tuple[str, str, str, str], tuple[str, list[float]]]:
    """(case without its repeat suffix, source, metric, subject) -> (unit, peaks)."""
    from osbench.monitors.series import peaks

    monitor = run.table("monitor")
    out: dict[tuple[str, str, str, str], tuple[str, list[float]]] = {}
    if monitor.empty or "case" not in monitor.columns:
        return out
    for case, rows in monitor.groupby(monitor["case"].astype(str), sort=False):
        for p in peaks(rows).to_dict("records"):
            key = (str(case).partition("#")[0], str(p["source"]), str(p["metric"]),
                   str(p["subject"]))
            unit = str(p["unit"])
            out.setdefault(key, (unit, []))[1].append(float(p["peak"]))
    return out


def _min_change(unit: str) -> float:
    return PEAK_MIN_CHANGE["%"] if unit.startswith("%") else PEAK_MIN_CHANGE.get(unit, 0.0)


def compare_peaks(base: Run, cand: Run, *, threshold_pct: float = PEAK_THRESHOLD_PCT,
                  alpha: float = 0.05) -> pd.DataFrame:
    """Monitor peaks per case and series: baseline, candidate, change, verdict
    (lower is better; see the module's docstring for how it is judged)."""
    b_peaks, c_peaks = _run_peaks(base), _run_peaks(cand)
    rows = []
    for key in sorted(b_peaks.keys() | c_peaks.keys()):
        case, source, metric, subject = key
        row: dict[str, Any] = {"case": case, "source": source, "subject": subject,
                               "metric": metric, "p_value": None}
        if key not in b_peaks or key not in c_peaks:
            unit, _ = b_peaks.get(key) or c_peaks[key]
            missing = "baseline" if key not in b_peaks else "candidate"
            rows.append(row | {"unit": unit, "baseline": None, "candidate": None,
                               "change_pct": None, "verdict": "incomparable",
                               "note": f"not in {missing}"})
            continue
        unit, bv = b_peaks[key]
        cv = c_peaks[key][1]
        bm, cm = stats.median(bv), stats.median(cv)
        change = ((cm - bm) / abs(bm) * 100.0 if bm else
                  (0.0 if cm == bm else math.copysign(math.inf, cm - bm)))
        beyond = abs(change) > threshold_pct and abs(cm - bm) >= _min_change(unit)
        if len(bv) > 1 and len(cv) > 1:
            p = stats.mann_whitney_p(bv, cv)
            row["p_value"] = p
            significant = p < alpha
            note = f"median of {len(bv)}/{len(cv)} repeats' peaks; Mann-Whitney U"
        else:
            significant = True
            note = ("one peak each: judged by the change alone (no significance test "
                    "without repeats)")
        verdict = ("worse" if cm > bm else "better") if beyond and significant else "noise"
        rows.append(row | {"unit": unit, "baseline": bm, "candidate": cm,
                           "change_pct": change, "verdict": verdict, "note": note})
    return pd.DataFrame(rows, columns=PEAK_COLUMNS)


def peak_sentences(peaks: pd.DataFrame) -> list[str]:
    """"count=200: neutron-dhcp-agent backlog (prometheus:sim) peak 183 -> 4 ports,
    better (-98%)", one per comparable peak."""
    lines = []
    for r in peaks.to_dict("records"):
        if r["verdict"] == "incomparable":
            continue
        change = r["change_pct"]
        pct = "" if change is None or not math.isfinite(change) else f" ({change:+.0f}%)"
        unit = f" {r['unit']}" if r["unit"] else ""
        lines.append(f"{r['case']}: {_peak_name(r)} peak {_fmt(r['baseline'])} -> "
                     f"{_fmt(r['candidate'])}{unit}, {r['verdict']}{pct}")
    return lines


def _peak_name(r: Mapping[Any, Any]) -> str:
    """"subject (source, metric)", the metric left out when it is the subject."""
    if r["subject"] == r["metric"]:
        return f"{r['subject']} ({r['source']})"
    return f"{r['subject']} ({r['source']}, {r['metric']})"


PEAKS_NOTE = ("Monitor peaks (lower is better): better or worse when the peak changed by "
              f"more than {PEAK_THRESHOLD_PCT:g}% (--threshold {PEAKS_THRESHOLD_KEY}:PCT) "
              "and by at least a minimal amount in its unit; with repeats, also "
              "Mann-Whitney U on the repeats' peaks; one peak each is judged by the change "
              "alone. Peaks never fail the comparison.")


def _cases(run: Run) -> set[str]:
    cases = run.table("cases")
    if not cases.empty:
        return set(cases["case"])
    return {str(c["case_id"]) for c in run.manifest.get("cases", [])}


def _pairs(base: Run, cand: Run, case: str,
           spec: MetricSpec) -> list[tuple[str, pd.Series | None, pd.Series | None]]:
    def values(run: Run) -> pd.DataFrame | None:
        table = run.table(spec.table)
        if table.empty or "case" not in table or spec.column not in table:
            return None
        rows = table[table["case"] == case]
        return rows if len(rows) else None

    b, c = values(base), values(cand)
    if spec.split_by is None:
        return [(spec.name, None if b is None else b[spec.column],
                 None if c is None else c[spec.column])]
    groups = sorted({*(b[spec.split_by] if b is not None else []),
                     *(c[spec.split_by] if c is not None else [])})

    def part(rows: pd.DataFrame | None, group: str) -> pd.Series | None:
        if rows is None:
            return None
        sel = rows[rows[spec.split_by] == group][spec.column]
        return sel if len(sel) else None

    return [(f"{spec.name}[{g}]", part(b, g), part(c, g)) for g in groups]


def _judge(case: str, metric: str, spec: MetricSpec, b: pd.Series | None,
           c: pd.Series | None, threshold: float, alpha: float) -> Row:
    if b is None or c is None:
        missing = "baseline" if b is None else "candidate"
        return Row(case, metric, None, None, None, None, "incomparable", f"not in {missing}")
    if spec.kind == "rate":
        return _judge_rate(case, metric, spec, b, c, threshold, alpha)
    bv = pd.to_numeric(b, errors="coerce").dropna().to_numpy(float)
    cv = pd.to_numeric(c, errors="coerce").dropna().to_numpy(float)
    if len(bv) == 0 or len(cv) == 0:
        return Row(case, metric, None, None, None, None, "incomparable", "no samples")
    bm, cm = stats.median(bv), stats.median(cv)
    ratio = stats.ratio(cm, bm)
    p = stats.mann_whitney_p(bv, cv)
    change_pct = (ratio - 1.0) * 100.0
    beyond = abs(change_pct) > threshold
    significant = p < alpha
    note = f"median; Mann-Whitney U, n={len(bv)}/{len(cv)}"
    if beyond and significant:
        got_worse = change_pct > 0 if spec.lower_is_better else change_pct < 0
        verdict: Verdict = "worse" if got_worse else "better"
    else:
        verdict = "noise"
        if beyond and not significant:
            note += f"; {change_pct:+.1f}% is not significant (p={p:.3g} >= {alpha:g})"
    return Row(case, metric, bm, cm, ratio, p, verdict, note)


def _judge_rate(case: str, metric: str, spec: MetricSpec, b: pd.Series, c: pd.Series,
                threshold_pp: float, alpha: float) -> Row:
    b_ok, b_n = int((b == spec.success).sum()), len(b)
    c_ok, c_n = int((c == spec.success).sum()), len(c)
    b_pct, c_pct = 100.0 * b_ok / b_n, 100.0 * c_ok / c_n
    ratio = stats.ratio(c_pct, b_pct)
    p = stats.fisher_exact_p(b_ok, b_n, c_ok, c_n)
    note = f"{c_ok}/{c_n} vs {b_ok}/{b_n}; Fisher exact"
    verdict: Verdict
    if b_ok == b_n and c_ok < c_n:
        verdict = "new failure"
    elif b_ok < b_n and c_ok == c_n:
        verdict = "fixed"
    elif abs(c_pct - b_pct) > threshold_pp and p < alpha:
        verdict = "worse" if c_pct < b_pct else "better"
    else:
        verdict = "noise"
    return Row(case, metric, b_pct, c_pct, ratio, p, verdict, note)


def to_markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (for a merge-request comment)."""
    lines = ["| case | metric | baseline | candidate | ratio | p | verdict |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in table.to_dict("records"):
        verdict = f"**{r['verdict']}**" if r["verdict"] in FAILING else r["verdict"]
        lines.append(f"| {r['case']} | {r['metric']} | {_fmt(r['baseline'])} | "
                     f"{_fmt(r['candidate'])} | {_fmt(r['ratio'], 3)} | "
                     f"{_fmt(r['p_value'], 3)} | {verdict} |")
    found = searches(table)
    if len(found):
        lines += ["", SEARCHES_NOTE, "",
                  "| search | param | baseline | candidate | boundary | verdict |",
                  "|---|---|---:|---:|---|---|"]
        for r in found.to_dict("records"):
            boundary = (f"{r['baseline_interval']} -> {r['candidate_interval']}"
                        if isinstance(r["baseline_interval"], str) else r["note"])
            verdict = f"**{r['verdict']}**" if r["verdict"] in FAILING else r["verdict"]
            lines.append(f"| {r['search']} | {r['param']} | {_capacity(r['baseline'])} | "
                         f"{_capacity(r['candidate'])} | {boundary} | {verdict} |")
    peaks = monitor_peaks(table)
    if len(peaks):
        lines += ["", PEAKS_NOTE, "",
                  "| case | peak | baseline | candidate | change | verdict |",
                  "|---|---|---:|---:|---:|---|"]
        for r in peaks.to_dict("records"):
            change = r["change_pct"]
            unit = f" [{r['unit']}]" if r["unit"] else ""
            lines.append(f"| {r['case']} | {_peak_name(r)}{unit} | {_fmt(r['baseline'])} | "
                         f"{_fmt(r['candidate'])} | "
                         f"{'–' if change is None else f'{change:+.0f}%'} | "
                         f"{r['verdict']} |")
    return "\n".join(lines) + "\n"


def to_text(table: pd.DataFrame) -> str:
    """The comparison as an aligned plain-text table for a terminal."""
    cells = [["case", "metric", "baseline", "candidate", "ratio", "p", "verdict"]]
    for r in table.to_dict("records"):
        cells.append([str(r["case"]), str(r["metric"]), _fmt(r["baseline"]),
                      _fmt(r["candidate"]), _fmt(r["ratio"], 3), _fmt(r["p_value"], 3),
                      str(r["verdict"])])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in cells) + "\n"
    found = searches(table)
    if len(found):
        text += "\n" + SEARCHES_NOTE + "\n" + "".join(
            f"  {line}\n" for line in search_sentences(found))
    peaks = monitor_peaks(table)
    if len(peaks):
        text += "\n" + PEAKS_NOTE + "\n" + "".join(
            f"  {line}\n" for line in peak_sentences(peaks))
    return text


def to_html(table: pd.DataFrame) -> str:
    """The comparison as an HTML section (escaped)."""
    body = table[["case", "metric", "baseline", "candidate", "ratio", "p_value", "verdict"]]
    html = ('<section class="compare"><h2>Comparison</h2>'
            + body.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.4g}",
                           escape=True))
    found = searches(table)
    if len(found):
        html += (f"<h3>Capacity searches</h3><p>{escape(SEARCHES_NOTE)}</p>"
                 + found.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:g}",
                                 escape=True))
    peaks = monitor_peaks(table)
    if len(peaks):
        html += (f"<h3>Monitor peaks</h3><p>{escape(PEAKS_NOTE)}</p>"
                 + peaks.drop(columns=["note"]).to_html(
                     index=False, na_rep="–", float_format=lambda v: f"{v:.4g}", escape=True))
    return html + "</section>"


def add_test_options(parser: Any) -> None:
    """--threshold and --alpha, shared by `osbench compare` and `osbench report --compare`."""
    parser.add_argument("--threshold", action="append", default=[], metavar="METRIC:PCT",
                        help="change below which a metric is noise (percent; percentage "
                        "points for success rates); repeatable")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level (default 0.05)")


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise UserError(f"--alpha {alpha} must be between 0 and 1", hint="e.g. --alpha 0.05")


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """["time_to_active_s:10", ...] -> {"time_to_active_s": 10.0}."""
    out = {}
    for item in items:
        metric, sep, pct = item.rpartition(":")
        try:
            if not sep or not metric:
                raise ValueError
            out[metric] = float(pct)
        except ValueError:
            raise UserError(f"--threshold {item!r} is not METRIC:PCT",
                            hint="e.g. --threshold time_to_phone_home_s:10") from None
    return out


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    number = float(value)
    return "inf" if math.isinf(number) else f"{number:.{digits}g}"
