#!/usr/bin/env python3
"""Run every SQL query of a Grafana dashboard the way Grafana's PostgreSQL
data source would, and check what comes back.  Prints TAP.

    python3 test/grafana/check_dashboard.py [--from now-30d] [--to now]
        [--interval auto|6h] [--var pipeline=a,b] [--as-role smartetl_reader]
        [--sample] [--verbose] [grafana/dashboards/smartetl.json]

The database is the one psql reaches through PGHOST, PGPORT, PGUSER,
PGDATABASE (and PGPASSWORD).  Python standard library only.

What Grafana does with a panel's raw SQL, and what this script reproduces
(Grafana 10/11, public/app/features/plugins/sql and
pkg/tsdb/grafana-postgresql-datasource):

1. In the browser, template variables are replaced (templateSrv):
   $var, ${var}, ${var:format}, [[var]], [[var:format]].  A variable that is
   multi-value or has "include All" is quoted as a literal ('a', with ''
   doubling) and several values are joined with commas; "All" without a
   custom all value means every option.  Built-ins: $__interval,
   $__interval_ms, $__from, $__to, $__range, $__range_s, $__range_ms.
   $__interval is the time range divided by the panel's max data points,
   rounded to a "nice" interval, and never below the panel's min interval
   (or the data source's timeInterval).
2. In the server, sqleng replaces $__interval_ms, $__interval,
   $__unixEpochFrom(), $__unixEpochTo(), then the postgres macro engine
   replaces every $__name(args):
     $__time(c)              c AS "time"
     $__timeEpoch(c)         extract(epoch from c) as "time"
     $__timeFilter(c)        c BETWEEN '2024-05-01T00:00:00Z' AND '...'
     $__timeFrom()           '2024-05-01T00:00:00Z'   (RFC 3339, UTC)
     $__timeTo()             '...'
     $__timeGroup(c, '1h')   floor(extract(epoch from c)/3600)*3600
     $__timeGroupAlias(c,i)  the same AS "time"
     $__unixEpochFilter(c)   c >= 1714521600 AND c <= 1714608000
     $__unixEpochNanoFilter, $__unixEpochNanoFrom(), $__unixEpochNanoTo(),
     $__unixEpochGroup(c,i), $__unixEpochGroupAlias(c,i)
3. The result is checked as Grafana converts it: a time_series result needs a
   column named time (a timestamp, or epoch seconds as a number), sorted by
   time and without NULL times; its metric is the column named metric, else
   the first text column; every other column must be numeric.  A table
   result may have any columns, but a column named time (or timeend) must be
   a timestamp or a number.

Checks: the JSON parses (no duplicate keys), panel ids are unique, every
panel, target and variable uses the data source of uid smartetl, every SQL
target is raw SQL with format time_series or table, the query variables
return values, and every target of every panel (rows' nested panels
included) runs and has the expected shape and at least one row.  Targets
that use a multi-value variable run twice: with All and with its first
value.  A few panels may legitimately be empty (EXPECTED_EMPTY below); an
empty result there is reported, not failed.

Values: every panel but the risk ranking is also checked against a recount
written here from the raw tables (ORACLES below: runs per time bucket,
failure rates, exact p95 within the qsketch's 0.5 %, current failures,
freshness, the KPI table, recent runs, frequent errors, the anomalies' and
overdue pipelines' values), never through the rollups, views and functions
the panels read.  With --sample (a database loaded with
scripts/sample/generate.sql) the anomaly, overdue and failure panels must
show exactly what the sample plants (PLANTED below), and may not be empty.
"""

import argparse
import calendar
import csv
import datetime as dt
import decimal
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

DATASOURCE_UID = "smartetl"

# Panels whose result may be empty on real data, by panel title, with the
# reason printed when it is, and optionally an SQL query (macros allowed)
# that must return true for the empty result to be accepted.
EXPECTED_EMPTY = {
    "Current failures": (
        "no pipeline's latest finished run failed",
        """SELECT NOT EXISTS (
             SELECT 1 FROM (SELECT DISTINCT ON (pipeline_id) status FROM smartetl.run
                            WHERE status IN ('success', 'failed')
                            ORDER BY pipeline_id, run_at DESC) last
             WHERE status = 'failed')"""),
    "Abnormal runs": (
        "no run in the range is abnormal", None),
    "Overdue pipelines": (
        "no pipeline is overdue at the end of the range", None),
    "Alerts (on call)": (
        "no alert fired in the last day",
        "SELECT NOT EXISTS (SELECT 1 FROM smartetl.alert_status)"),
}

NULL = "\x1fNULL\x1f"
TIME_TYPES = {"timestamp with time zone", "timestamp without time zone", "date"}
NUMERIC_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
# Grafana's postgres metricColumnTypes, as psql names them
TEXT_TYPES = {"text", "character varying", "character", '"char"', "unknown", "name"}


# ---------------------------------------------------------------------------
# Time and intervals, as Grafana formats and parses them
# ---------------------------------------------------------------------------

UTC = dt.timezone.utc
_REL = re.compile(r"^now(?:([+-])(\d+)([smhdwMy]))?(?:/([smhdwMy]))?$")


def parse_time(text, now):
    """Grafana's time-range syntax: now, now-30d, now-6h/h, ISO 8601, epoch ms."""
    m = _REL.match(text)
    if m:
        t = now
        if m.group(1):
            n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            unit = m.group(3)
            if unit == "M":
                t = _add_months(t, n)
            elif unit == "y":
                t = _add_months(t, 12 * n)
            else:
                t = t + dt.timedelta(seconds=n * _UNIT_S[unit])
        if m.group(4):
            t = _round_down(t, m.group(4))
        return t
    if re.fullmatch(r"\d{10,}", text):
        return dt.datetime.fromtimestamp(int(text) / 1000, UTC)
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _add_months(t, n):
    y, mo = divmod(t.month - 1 + n, 12)
    y += t.year
    d = min(t.day, calendar.monthrange(y, mo + 1)[1])
    return t.replace(year=y, month=mo + 1, day=d)


def _round_down(t, unit):
    if unit == "s":
        return t.replace(microsecond=0)
    if unit == "m":
        return t.replace(second=0, microsecond=0)
    if unit == "h":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":
        return day - dt.timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def rfc3339nano(t):
    """Go's time.RFC3339Nano of a UTC time: fraction without trailing zeros."""
    t = t.astimezone(UTC)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ("." + "%06d" % t.microsecond).rstrip("0")
    return s + "Z"


def unix(t):
    return calendar.timegm(t.utctimetuple())


def unix_nano(t):
    return unix(t) * 10**9 + t.microsecond * 1000


def unix_ms(t):
    return unix(t) * 1000 + t.microsecond // 1000


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_parse_interval(text, now):
    """gtime.ParseInterval: N(d|w|M|y) by the calendar, else time.ParseDuration."""
    m = re.fullmatch(r"(\d+)([wdyM])", text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit == "d":
            return n * 86400.0
        if unit == "w":
            return n * 604800.0
        months = n if unit == "M" else 12 * n
        return (_add_months(now, months) - now).total_seconds()
    if text in ("0", "+0", "-0"):
        return 0.0
    m = re.fullmatch(r"([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)", text)
    if not m:
        raise ValueError("time: invalid duration %r" % text)
    total = 0.0
    for num, unit in re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", m.group(2)):
        total += float(num) * _GO_UNITS[unit]
    return -total if m.group(1) == "-" else total


def go_format_interval(seconds):
    """gtime.FormatInterval (the server's $__interval)."""
    ns = int(round(seconds * 1e9))
    for unit, size in (("y", 365 * 86400 * 10**9), ("d", 86400 * 10**9), ("h", 3600 * 10**9),
                       ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6)):
        if ns >= size:
            return "%d%s" % (ns // size, unit)
    return "1ms"


def go_float(v):
    """Go's fmt %v of a float64 (strconv 'g', shortest): 3600, 0.5, 2.592e+06."""
    if v == 0:
        return "0"
    if math.isinf(v) or math.isnan(v):
        return {True: "+Inf", False: "-Inf"}[v > 0] if math.isinf(v) else "NaN"
    sign, digits, exp = decimal.Decimal(repr(abs(v))).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    nd = len(digits)
    dp = nd + exp                  # position of the decimal point
    x = dp - 1
    ds = "".join(map(str, digits))
    neg = "-" if v < 0 else ""
    if x < -4 or x >= 6:           # shortest: eprec = 6
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return "%s%se%s%02d" % (neg, mant, "-" if x < 0 else "+", abs(x))
    if dp <= 0:
        return neg + "0." + "0" * (-dp) + ds
    if dp >= nd:
        return neg + ds + "0" * (dp - nd)
    return neg + ds[:dp] + "." + ds[dp:]


def round_interval_ms(ms):
    """rangeutil.roundInterval of Grafana's frontend."""
    steps = [(10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
             (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
             (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000),
             (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
             (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
             (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
             (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000)]
    for limit, value in steps:
        if ms < limit:
            return value
    return 31536000000


def seconds_to_hms(seconds):
    """rangeutil.secondsToHms (the browser's $__interval)."""
    years = math.floor(seconds / 31536000)
    if years:
        return "%dy" % years
    days = math.floor((seconds % 31536000) / 86400)
    if days:
        return "%dd" % days
    hours = math.floor(((seconds % 31536000) % 86400) / 3600)
    if hours:
        return "%dh" % hours
    minutes = math.floor((((seconds % 31536000) % 86400) % 3600) / 60)
    if minutes:
        return "%dm" % minutes
    secs = (((seconds % 31536000) % 86400) % 3600) % 60
    if secs:
        return "%ss" % (int(secs) if secs == int(secs) else secs)
    ms = math.floor(seconds * 1000.0)
    if ms:
        return "%dms" % ms
    return "less than a millisecond"


def interval_to_ms(text, now):
    """rangeutil.intervalToMs for min intervals such as 1h or >1h."""
    return go_parse_interval(text.lstrip(">"), now) * 1000


# ---------------------------------------------------------------------------
# Template variables (browser) and macros (server)
# ---------------------------------------------------------------------------

# templateSrv's variable regex
_VAR_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")


def quote_literal(v):
    return "'" + str(v).replace("'", "''") + "'"


class Variable:
    def __init__(self, name, multi, include_all, all_value, values, options):
        self.name, self.multi, self.include_all = name, multi, include_all
        self.all_value = all_value          # custom all value, or None
        self.values = values                # selected values, or ["$__all"]
        self.options = options              # every option's value

    def is_all(self):
        return self.values == ["$__all"] or self.values == "$__all"

    def label(self):
        return "All" if self.is_all() else ",".join(self.values)


def _sql_interpolate(value, var):
    """SqlDatasource.interpolateVariable."""
    if isinstance(value, str):
        if var.multi or var.include_all:
            return quote_literal(value)
        return value.replace("'", "''")
    if isinstance(value, (int, float)):
        return str(value)
    return ",".join(quote_literal(v) for v in value)


def _format(value, fmt):
    vals = value if isinstance(value, list) else [value]
    if fmt in ("raw", "text"):
        return ",".join(map(str, vals))
    if fmt == "csv":
        return ",".join(map(str, vals))
    if fmt == "pipe":
        return "|".join(map(str, vals))
    if fmt == "singlequote":
        return ",".join("'" + str(v).replace("'", "\\'") + "'" for v in vals)
    if fmt == "doublequote":
        return ",".join('"' + str(v).replace('"', '\\"') + '"' for v in vals)
    if fmt == "sqlstring":
        return ",".join(quote_literal(v) for v in vals)
    raise ValueError("variable format %r is not supported by this checker" % fmt)


def interpolate_variables(sql, variables, builtins):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in builtins:
            return str(builtins[name])
        var = variables.get(name)
        if var is None:
            return m.group(0)           # not a variable: left as is
        if var.is_all():
            if var.all_value is not None:
                return var.all_value    # a custom all value is not quoted
            value = list(var.options)
        else:
            value = var.values if (var.multi or len(var.values) != 1) else var.values[0]
        if fmt:
            return _format(value, fmt)
        return _sql_interpolate(value, var)
    return _VAR_RE.sub(repl, sql)


_MACRO_RE = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


class MacroError(Exception):
    pass


def expand_macros(sql, t_from, t_to, interval_s, now):
    """sqleng.Interpolate, then postgresMacroEngine.Interpolate (timescaledb off)."""
    sql = sql.replace("$__interval_ms", str(int(interval_s * 1000)))
    sql = sql.replace("$__interval", go_format_interval(interval_s))
    sql = sql.replace("$__unixEpochFrom()", str(unix(t_from)))
    sql = sql.replace("$__unixEpochTo()", str(unix(t_to)))
    original = sql
    errors = []

    def group_expr(name, args):
        if len(args) < 2:
            raise MacroError("macro %s needs time column and interval and optional fill value" % name)
        try:
            secs = go_parse_interval(args[1].strip("'"), now)
        except ValueError:
            raise MacroError("error parsing interval %s" % args[1])
        if len(args) == 3 and args[2] not in ("NULL", "previous"):
            try:
                float(args[2])
            except ValueError:
                raise MacroError("error parsing fill value %s" % args[2])
        s = go_float(secs)
        return s

    def evaluate(name, args):
        if name == "__time":
            if not args[0]:
                raise MacroError("missing time column argument for macro %s" % name)
            return '%s AS "time"' % args[0]
        if name == "__timeEpoch":
            return 'extract(epoch from %s) as "time"' % args[0]
        if name == "__timeFilter":
            return "%s BETWEEN '%s' AND '%s'" % (args[0], rfc3339nano(t_from), rfc3339nano(t_to))
        if name == "__timeFrom":
            return "'%s'" % rfc3339nano(t_from)
        if name == "__timeTo":
            return "'%s'" % rfc3339nano(t_to)
        if name == "__timeGroup":
            s = group_expr(name, args)
            return "floor(extract(epoch from %s)/%s)*%s" % (args[0], s, s)
        if name == "__timeGroupAlias":
            return evaluate("__timeGroup", args) + ' AS "time"'
        if name == "__unixEpochFilter":
            return "%s >= %d AND %s <= %d" % (args[0], unix(t_from), args[0], unix(t_to))
        if name == "__unixEpochNanoFilter":
            return "%s >= %d AND %s <= %d" % (args[0], unix_nano(t_from), args[0], unix_nano(t_to))
        if name == "__unixEpochNanoFrom":
            return str(unix_nano(t_from))
        if name == "__unixEpochNanoTo":
            return str(unix_nano(t_to))
        if name == "__unixEpochGroup":
            s = group_expr(name, args)
            return "floor((%s)/%s)*%s" % (args[0], s, s)
        if name == "__unixEpochGroupAlias":
            return evaluate("__unixEpochGroup", args) + ' AS "time"'
        raise MacroError("unknown macro %r" % name)

    def repl(m):
        name = m.group(1)
        # pre-5.3 compatibility: "$__timeGroup(...)," means the alias form
        # (Grafana looks at the first occurrence of the call in the query)
        if name == "__timeGroup":
            i = original.find(m.group(0))
            if i >= 0 and original[i + len(m.group(0)):i + len(m.group(0)) + 1] == ",":
                name = "__timeGroupAlias"
        args = [a.strip(" ") for a in m.group(2).split(",")]
        try:
            return evaluate(name, args)
        except MacroError as e:
            errors.append(str(e))
            return "macro_error()"

    sql = _MACRO_RE.sub(repl, sql)
    if errors:
        raise MacroError(errors[0])
    return sql


def self_test():
    """Expansions compared with what Grafana's own code produces."""
    now = dt.datetime(2024, 5, 2, 12, 0, 0, tzinfo=UTC)
    f = dt.datetime(2024, 5, 1, 0, 0, 0, tzinfo=UTC)
    t = dt.datetime(2024, 5, 2, 0, 0, 0, 500000, tzinfo=UTC)
    cases = [
        ("$__timeFilter(r.run_at)", "r.run_at BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-02T00:00:00.5Z'"),
        ("$__timeFrom()", "'2024-05-01T00:00:00Z'"),
        ("$__timeTo()", "'2024-05-02T00:00:00.5Z'"),
        ("$__timeGroupAlias(bucket, $__interval)", 'floor(extract(epoch from bucket)/3600)*3600 AS "time"'),
        ("$__timeGroup(bucket, '5m')", "floor(extract(epoch from bucket)/300)*300"),
        ("SELECT $__timeGroup(bucket,'5m'), x", 'SELECT floor(extract(epoch from bucket)/300)*300 AS "time", x'),
        ("$__timeGroup(t, 30d)", "floor(extract(epoch from t)/2.592e+06)*2.592e+06"),
        ("$__timeGroup(t, 500ms)", "floor(extract(epoch from t)/0.5)*0.5"),
        ("$__unixEpochFilter(e)", "e >= 1714521600 AND e <= 1714608000"),
        ("$__unixEpochFrom() $__unixEpochTo()", "1714521600 1714608000"),
        ("$__unixEpochGroupAlias(e, 1h)", 'floor((e)/3600)*3600 AS "time"'),
        ("$__interval_ms $__interval", "3600000 1h"),
    ]
    bad = []
    for src, want in cases:
        try:
            got = expand_macros(src, f, t, 3600, now)
        except MacroError as e:
            got = "error: %s" % e
        if got != want:
            bad.append("%s -> %s (Grafana: %s)" % (src, got, want))
    var = Variable("pipeline", True, True, None, ["$__all"], ["a", "o'b"])
    one = Variable("p", False, False, None, ["x'y"], ["x'y"])
    checks = [
        (interpolate_variables("IN ($pipeline) ${pipeline} [[pipeline]]", {"pipeline": var}, {}),
         "IN ('a','o''b') 'a','o''b' 'a','o''b'"),
        (interpolate_variables("= '$p' ${p:csv} $pipelines", {"p": one}, {}), "= 'x''y' x'y $pipelines"),
        (seconds_to_hms(round_interval_ms(30 * 86400 * 1000 / 1000) / 1000), "30m"),
        (go_format_interval(90 * 60), "1h"),
    ]
    for got, want in checks:
        if got != want:
            bad.append("%r != %r" % (got, want))
    return bad


# ---------------------------------------------------------------------------
# Running queries with psql
# ---------------------------------------------------------------------------

class QueryError(Exception):
    pass


class Runner:
    def __init__(self, role, timeout_s):
        self.role = role
        self.timeout_s = timeout_s
        self.tmp = tempfile.mkdtemp(prefix="check_dashboard.")

    def run(self, sql):
        """(columns [(name, type)], rows [[str|None]]) of one query."""
        body = sql.strip()
        while body.endswith(";"):
            body = body[:-1].rstrip()
        desc_f = os.path.join(self.tmp, "desc.csv")
        data_f = os.path.join(self.tmp, "data.csv")
        for p in (desc_f, data_f):
            if os.path.exists(p):
                os.unlink(p)
        script = ["\\pset format csv", "\\pset null '%s'" % NULL, "\\pset pager off",
                  "SET DateStyle = 'ISO, YMD';",
                  "SET statement_timeout = '%ds';" % self.timeout_s]
        if self.role:
            script.append("SET ROLE %s;" % quote_ident(self.role))
        script += ["\\o %s" % desc_f, body, "\\gdesc", "\\o %s" % data_f, "\\g", "\\o", ""]
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                           input="\n".join(script), capture_output=True, text=True)
        if p.returncode != 0:
            raise QueryError((p.stderr or p.stdout).strip())
        with open(desc_f, newline="") as fh:
            desc = list(csv.reader(fh))
        with open(data_f, newline="") as fh:
            data = list(csv.reader(fh))
        columns = [(r[0], r[1]) for r in desc[1:]]
        rows = [[None if v == NULL else v for v in r] for r in data[1:]]
        return columns, rows


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def parse_pg_time(text):
    s = text.strip()
    m = re.fullmatch(r"(.*?)([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?", s) if re.search(r"[+-]\d\d(:?\d\d)*$", s) else None
    if m and re.search(r"\d\d:\d\d", m.group(1)):
        base, hh, mm, ss = m.group(1), m.group(2), m.group(3) or "00", m.group(4)
        sign = -1 if hh[0] == "-" else 1
        off = dt.timedelta(hours=int(hh[1:]), minutes=int(mm), seconds=int(ss or 0))
        t = dt.datetime.fromisoformat(base.replace(" ", "T")).replace(tzinfo=UTC)
        return t - sign * off
    t = dt.datetime.fromisoformat(s.replace(" ", "T"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def epoch_to_time(v):
    """convertSQLTimeColumnToEpochMS: numbers in the 1e9 range are seconds,
    1e18 nanoseconds, anything else milliseconds."""
    s = "%e" % v
    exp = int(s.split("e")[1])
    if exp == 9:
        ms = v * 1000
    elif exp == 18:
        ms = v / 1e6
    else:
        ms = v
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


# ---------------------------------------------------------------------------
# Shape checks
# ---------------------------------------------------------------------------

def check_time_series(columns, rows, t_from, t_to, interval_s):
    names = [c[0] for c in columns]
    types = [c[1] for c in columns]
    if "time" not in names:
        return "no column named time (columns: %s)" % ", ".join(names), None
    ti = names.index("time")
    if types[ti] not in TIME_TYPES and types[ti] not in NUMERIC_TYPES:
        return "column time is %s, not a timestamp or epoch number" % types[ti], None
    mi = names.index("metric") if "metric" in names else next(
        (i for i, t in enumerate(types) if i != ti and t in TEXT_TYPES), -1)
    if mi >= 0 and types[mi] not in TEXT_TYPES:
        return "column metric is %s, not text" % types[mi], None
    values = [i for i in range(len(names)) if i not in (ti, mi)]
    if not values:
        return "no value column", None
    for i in values:
        if types[i] not in NUMERIC_TYPES:
            return "value column %s is %s, not numeric" % (names[i], types[i]), None
    if not rows:
        return None, "0 rows"
    times = []
    for r in rows:
        if r[ti] is None:
            return "NULL in column time", None
        try:
            times.append(parse_pg_time(r[ti]) if types[ti] in TIME_TYPES else epoch_to_time(float(r[ti])))
        except ValueError as e:
            return "column time: %s" % e, None
    for a, b in zip(times, times[1:]):
        if b < a:
            return "rows are not sorted by time (%s after %s)" % (b.isoformat(), a.isoformat()), None
    lo = t_from - dt.timedelta(seconds=interval_s + 3600)
    out = [t for t in times if t < lo or t > t_to]
    if out:
        return "time %s is outside the range %s .. %s" % (out[0].isoformat(), rfc3339nano(t_from),
                                                            rfc3339nano(t_to)), None
    seen = set()
    for t, r in zip(times, rows):
        key = (t, r[mi] if mi >= 0 else None)
        if key in seen:
            return "two rows for time %s%s" % (t.isoformat(), " metric %s" % key[1] if mi >= 0 else ""), None
        seen.add(key)
    numbers = 0
    for r in rows:
        for i in values:
            if r[i] is not None:
                try:
                    float(r[i])
                except ValueError:
                    return "value %r in column %s is not a number" % (r[i], names[i]), None
                numbers += 1
    if numbers == 0:
        return "every value is NULL", None
    series = len({r[mi] for r in rows}) * len(values) if mi >= 0 else len(values)
    return None, "%d rows, %d series" % (len(rows), series)


def check_table(columns, rows):
    for name, typ in columns:
        if (name == "time" or name.lower() == "timeend") and typ not in TIME_TYPES | NUMERIC_TYPES:
            return "column %s is %s: Grafana converts it to a time and fails" % (name, typ), None
    if not rows:
        return None, "0 rows"
    return None, "%d rows, %d columns" % (len(rows), len(columns))


# ---------------------------------------------------------------------------
# Values: recounts from smartetl.run
# ---------------------------------------------------------------------------

# The panels' values are checked against recounts written here from the raw
# tables (smartetl.run, smartetl.pipeline, smartetl.log_event, and
# smartetl.template for a template's text), never through the rollups, views
# and functions the panels read.  Each oracle is expanded like the panel's
# own query (macros, variables, $__interval) and must return the panel's
# rows: the same keys, and every listed column equal (numbers within the
# tolerance: "exact" 1e-9 relative, ("rel", x), ("abs", x)).  The qsketch
# quantiles are allowed the sketch's documented 0.5 %.

# every run with a time: t its time (start, else end), hour its UTC hour
_RUNS = """runs AS (
    SELECT r.run_id, r.pipeline_id, p.namespace, p.name, r.status::text AS status, r.attempt,
           r.duration, extract(epoch FROM r.duration)::float8 AS duration_s, r.rows_read, r.rows_written,
           r.host, r.error_message, r.template_id, r.started_at, r.ended_at,
           coalesce(r.started_at, r.ended_at) AS t,
           date_trunc('hour', coalesce(r.started_at, r.ended_at) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour
    FROM smartetl.run r JOIN smartetl.pipeline p ON p.pipeline_id = r.pipeline_id
    WHERE coalesce(r.started_at, r.ended_at) IS NOT NULL)"""

# the pipeline's expected interval: its own, else the median gap between its
# latest 31 first tries before at (at least 3 gaps)
_EXPECTED = """coalesce(p.expected_interval, (
    SELECT make_interval(secs => percentile_cont(0.5) WITHIN GROUP (ORDER BY gap))
    FROM (SELECT extract(epoch FROM t - lag(t) OVER (ORDER BY t)) AS gap
          FROM (SELECT coalesce(x.started_at, x.ended_at) AS t FROM smartetl.run x
                WHERE x.pipeline_id = p.pipeline_id AND x.attempt <= 1
                  AND coalesce(x.started_at, x.ended_at) < {at}
                ORDER BY 1 DESC LIMIT 31) last31) gaps
    WHERE gap > 0 HAVING count(*) >= 3))"""

_TS_GROUP = "floor(extract(epoch FROM hour) / ($__interval_ms / 1000.0)) * ($__interval_ms / 1000.0)"
_TS_RANGE = "hour > $__timeFrom()::timestamptz - interval '1 hour' AND hour < $__timeTo()"

_ORACLE_RUNS = """WITH %s
SELECT %s AS "time", name AS metric, count(*) AS runs
FROM runs WHERE %s {filter}
GROUP BY 1, 2""" % (_RUNS, _TS_GROUP, _TS_RANGE)

_ORACLE_FAILURE_RATE = """WITH %s
SELECT %s AS "time", name AS metric,
       count(*) FILTER (WHERE status = 'failed')::float8
           / nullif(count(*) FILTER (WHERE status IN ('success', 'failed')), 0) AS failure_rate
FROM runs WHERE %s {filter}
GROUP BY 1, 2""" % (_RUNS, _TS_GROUP, _TS_RANGE)

_ORACLE_P95 = """WITH %s
SELECT %s AS "time", name AS metric,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s) AS p95_duration_s
FROM runs WHERE %s AND status IN ('success', 'failed') AND duration IS NOT NULL {filter}
GROUP BY 1, 2""" % (_RUNS, _TS_GROUP, _TS_RANGE)

# pipeline_kpi's range: the UTC hours from the one holding from to the last
# one starting before to; failure streaks over the exact range: a streak is
# the failed runs with the same number of successes before them
_ORACLE_KPI = """WITH %s,
in_range AS (
    SELECT * FROM runs
    WHERE hour >= date_trunc('hour', $__timeFrom()::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
      AND hour < $__timeTo()),
streak AS (
    SELECT pipeline_id, max(n) AS longest
    FROM (SELECT pipeline_id, count(*) AS n
          FROM (SELECT r.pipeline_id, r.status, r.t,
                       count(*) FILTER (WHERE r.status = 'success')
                           OVER (PARTITION BY r.pipeline_id ORDER BY r.t, r.run_id) AS successes_before
                FROM runs r WHERE r.status IN ('success', 'failed')) s
          WHERE status = 'failed' AND t >= $__timeFrom() AND t < $__timeTo()
          GROUP BY pipeline_id, successes_before) g
    GROUP BY pipeline_id),
top_error AS (
    SELECT pipeline_id, max(n) AS n
    FROM (SELECT pipeline_id, template_id, count(*) AS n FROM runs
          WHERE status = 'failed' AND template_id IS NOT NULL AND t >= $__timeFrom() AND t < $__timeTo()
          GROUP BY 1, 2) e
    GROUP BY pipeline_id)
SELECT r.namespace, r.name AS pipeline, count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'failed') AS failures,
       count(*) FILTER (WHERE r.status = 'success')::float8
           / nullif(count(*) FILTER (WHERE r.status IN ('success', 'failed')), 0) AS success_rate,
       avg(r.duration_s) FILTER (WHERE r.status IN ('success', 'failed')) AS mean_duration_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status IN ('success', 'failed')) AS p50_duration_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status IN ('success', 'failed')) AS p95_duration_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY r.duration_s)
           FILTER (WHERE r.status IN ('success', 'failed')) AS p99_duration_s,
       sum(r.rows_read) AS rows_read, sum(r.rows_written) AS rows_written,
       count(*) FILTER (WHERE r.attempt > 1) AS retries,
       min(s.longest) AS longest_failure_streak,
       (SELECT coalesce(x.ended_at, x.t) FROM runs x
        WHERE x.pipeline_id = r.pipeline_id AND x.status = 'success' AND x.t < $__timeTo()
        ORDER BY x.t DESC LIMIT 1) AS last_success,
       min(e.n) AS top_error_count
FROM in_range r
LEFT JOIN streak s ON s.pipeline_id = r.pipeline_id
LEFT JOIN top_error e ON e.pipeline_id = r.pipeline_id
WHERE true {filter}
GROUP BY r.pipeline_id, r.namespace, r.name""" % _RUNS

_KPI_VALUES = {"runs": "exact", "failures": "exact", "success_rate": "exact", "mean_duration_s": "exact",
               "p50_duration_s": ("rel", 0.005), "p95_duration_s": ("rel", 0.005),
               "p99_duration_s": ("rel", 0.005), "rows_read": "exact", "rows_written": "exact",
               "retries": "exact", "longest_failure_streak": "exact", "last_success": "exact",
               "top_error_count": "exact"}

# the latest finished runs of each pipeline that failed, up to its latest success
_ORACLE_CURRENT_FAILURES = """WITH %s,
newest_first AS (
    SELECT r.*, row_number() OVER w AS nth,
           count(*) FILTER (WHERE r.status = 'success') OVER (w ROWS UNBOUNDED PRECEDING) AS successes_since
    FROM runs r WHERE r.status IN ('success', 'failed')
    WINDOW w AS (PARTITION BY r.pipeline_id ORDER BY r.t DESC))
SELECT pipeline_id, name AS pipeline, max(run_id) FILTER (WHERE nth = 1) AS run_id,
       max(t) AS failed_at, min(t) AS since, count(*) AS failed_runs,
       max(error_message) FILTER (WHERE nth = 1) AS error_message
FROM newest_first WHERE successes_since = 0
GROUP BY pipeline_id, name""" % _RUNS

_ORACLE_FRESHNESS = """WITH %s
SELECT p.name AS pipeline, p.namespace, h.last_run, h.last_success,
       extract(epoch FROM e.expected) AS expected_interval_s,
       extract(epoch FROM now() - coalesce(h.last_success, h.first_run)) AS lag_s,
       now() - coalesce(h.last_success, h.first_run) > e.expected * 1.5 AS stale
FROM smartetl.pipeline p
CROSS JOIN LATERAL (SELECT min(r.t) AS first_run, max(r.t) AS last_run,
                           max(coalesce(r.ended_at, r.t)) FILTER (WHERE r.status = 'success') AS last_success
                    FROM runs r WHERE r.pipeline_id = p.pipeline_id) h
CROSS JOIN LATERAL (SELECT %s AS expected) e
WHERE h.last_run IS NOT NULL""" % (_RUNS, _EXPECTED.format(at="now()"))

_ORACLE_RECENT_RUNS = """WITH %s
SELECT run_id, name AS pipeline, status, duration_s, rows_read, rows_written, host, error_message
FROM runs WHERE t BETWEEN $__timeFrom() AND $__timeTo() {filter}
ORDER BY t DESC, run_id DESC LIMIT 1000""" % _RUNS

_ERROR_LEVELS = "('ERROR', 'FATAL', 'CRITICAL', 'SEVERE', 'EMERG', 'ALERT', 'CRIT')"
_ORACLE_FREQUENT_ERRORS = """WITH %s,
hits AS (
    SELECT template_id, pipeline_id, t, 1 AS is_run FROM runs
    WHERE status = 'failed' AND template_id IS NOT NULL AND t >= $__timeFrom() AND t < $__timeTo()
    UNION ALL
    SELECT e.template_id, e.pipeline_id, e.ts, 0 FROM smartetl.log_event e
    WHERE e.template_id IS NOT NULL AND e.ts >= $__timeFrom() AND e.ts < $__timeTo()
      AND upper(e.level) IN %s)
SELECT template_id, count(*) AS occurrences, sum(is_run) AS failed_runs, count(*) - sum(is_run) AS error_events,
       count(DISTINCT pipeline_id) AS pipelines, min(t) AS first_seen, max(t) AS last_seen
FROM hits GROUP BY template_id""" % (_RUNS, _ERROR_LEVELS)

# the runs that detect_anomalies reports are real successful runs, with
# their real values
_ORACLE_ABNORMAL = """WITH %s
SELECT a.run_id, a.kind, r.name AS pipeline,
       CASE a.kind WHEN 'duration' THEN r.duration_s ELSE r.rows_written END AS value, r.t AS run_at
FROM (SELECT * FROM smartetl.detect_anomalies($__timeFrom(), $__timeTo())) a
JOIN runs r ON r.run_id = a.run_id AND r.status = 'success'""" % _RUNS

_ORACLE_OVERDUE = """WITH %s
SELECT p.name AS pipeline, k.kind, k.last_at, extract(epoch FROM e.expected) AS expected_interval_s
FROM smartetl.pipeline p
CROSS JOIN LATERAL (SELECT %s AS expected) e
CROSS JOIN LATERAL (SELECT min(r.t) AS first_run, max(r.t) AS last_run,
                           max(coalesce(r.ended_at, r.t)) FILTER (WHERE r.status = 'success') AS last_success
                    FROM runs r WHERE r.pipeline_id = p.pipeline_id AND r.t <= $__timeTo()) h
CROSS JOIN LATERAL (VALUES ('missing_run', h.last_run),
                           ('freshness', coalesce(h.last_success, h.first_run))) k(kind, last_at)
WHERE k.last_at IS NOT NULL AND $__timeTo()::timestamptz - k.last_at > e.expected * 1.5""" % (
    _RUNS, _EXPECTED.format(at="$__timeTo()::timestamptz"))

_PIPELINE_FILTER = "AND name IN ($pipeline)"

ORACLES = {
    # title: (oracle SQL, key columns, {column: tolerance})
    "Runs over time": (_ORACLE_RUNS, ["time", "metric"], {"runs": "exact"}),
    "Runs: $pipeline": (_ORACLE_RUNS, ["time", "metric"], {"runs": "exact"}),
    "Failure rate over time": (_ORACLE_FAILURE_RATE, ["time", "metric"], {"failure_rate": "exact"}),
    "Failure rate: $pipeline": (_ORACLE_FAILURE_RATE, ["time", "metric"], {"failure_rate": "exact"}),
    "p95 duration over time": (_ORACLE_P95, ["time", "metric"], {"p95_duration_s": ("rel", 0.005)}),
    "p95 duration: $pipeline": (_ORACLE_P95, ["time", "metric"], {"p95_duration_s": ("rel", 0.005)}),
    "Current failures": (_ORACLE_CURRENT_FAILURES, ["pipeline_id"],
                         {"pipeline": "exact", "run_id": "exact", "failed_at": "exact", "since": "exact",
                          "failed_runs": "exact", "error_message": "exact"}),
    "Freshness": (_ORACLE_FRESHNESS, ["namespace", "pipeline"],
                  {"last_run": "exact", "last_success": "exact", "expected_interval_s": "exact",
                   "lag_s": ("abs", 120), "stale": "exact"}),
    "KPIs per pipeline": (_ORACLE_KPI, ["namespace", "pipeline"], _KPI_VALUES),
    "KPIs: $pipeline": (_ORACLE_KPI, ["namespace", "pipeline"], _KPI_VALUES),
    "Recent runs: $pipeline": (_ORACLE_RECENT_RUNS, ["run_id"],
                               {"pipeline": "exact", "status": "exact", "duration_s": "exact",
                                "rows_read": "exact", "rows_written": "exact", "host": "exact",
                                "error_message": "exact"}),
    "Frequent errors": (_ORACLE_FREQUENT_ERRORS, ["template_id"],
                        {"occurrences": "exact", "failed_runs": "exact", "error_events": "exact",
                         "pipelines": "exact", "first_seen": "exact", "last_seen": "exact"}),
    "Abnormal runs": (_ORACLE_ABNORMAL, ["run_id", "kind"], {"pipeline": "exact", "value": "exact",
                                                             "run_at": "exact"}),
    "Overdue pipelines": (_ORACLE_OVERDUE, ["pipeline", "kind"], {"last_at": "exact",
                                                                  "expected_interval_s": "exact"}),
}

# Extra checks of a panel's result, each an SQL query over the panel's rows
# (available as the temporary table panel) returning (ok, diagnostic).
PANEL_CHECKS = {
    # every failed run in the range with an error is counted, once, under a
    # template whose text matches its message (<*> standing for anything)
    "Frequent errors": [(
        "every failed run with an error in the range is counted under a template matching its message",
        """WITH %s,
        failed AS (SELECT * FROM runs WHERE status = 'failed' AND error_message IS NOT NULL
                   AND t >= $__timeFrom() AND t < $__timeTo()),
        counted AS (SELECT f.run_id, f.error_message, t.template,
                           f.error_message ~ ('^' || replace(regexp_replace(t.template, '([][().*+?^${}|\\\\])',
                                                                            '\\\\\\1', 'g'),
                                                             '<\\*>', '.*') || '$') AS matches
                    FROM failed f LEFT JOIN panel pn ON pn.template_id = f.template_id
                    LEFT JOIN smartetl.template t ON t.template_id = pn.template_id)
        SELECT (SELECT count(*) FROM failed) = (SELECT coalesce(sum(failed_runs), 0) FROM panel)
               AND coalesce(bool_and(matches), true),
               format('%%s failed runs with an error, %%s counted in the panel; %%s messages not matching their template, e.g. %%s',
                      (SELECT count(*) FROM failed), (SELECT coalesce(sum(failed_runs), 0) FROM panel),
                      count(*) FILTER (WHERE matches IS NOT TRUE),
                      min(error_message || ' / ' || coalesce(template, 'no template in the panel'))
                          FILTER (WHERE matches IS NOT TRUE))
        FROM counted""" % _RUNS)],
}

# With --sample (a database loaded with scripts/sample/generate.sql): what
# the sample plants, from its definition there.  The panel's keys must be
# exactly these.
_NTH_RUN = """(SELECT r.run_id FROM smartetl.run r JOIN smartetl.pipeline p ON p.pipeline_id = r.pipeline_id
               WHERE p.name = '%s' ORDER BY coalesce(r.started_at, r.ended_at) DESC OFFSET %d LIMIT 1)"""
PLANTED = {
    "Abnormal runs": (["run_id", "kind"], """
        SELECT %s AS run_id, 'duration' AS kind
        UNION ALL SELECT %s, 'volume'""" % (_NTH_RUN % ("dag_customers_hourly", 48),
                                           _NTH_RUN % ("spark_clickstream_agg", 50)),
        "the planted slow run of dag_customers_hourly and small load of spark_clickstream_agg, nothing else"),
    "Overdue pipelines": (["pipeline", "kind"], """
        SELECT * FROM (VALUES ('dag_inventory_sync', 'missing_run'),
                              ('dag_inventory_sync', 'freshness')) v(pipeline, kind)""",
        "dag_inventory_sync (stopped 3 days ago): missing_run and freshness, nothing else"),
    "Current failures": (["pipeline", "failed_runs"], "SELECT 'ftp_partner_import' AS pipeline, 1 AS failed_runs",
                         "ftp_partner_import (its latest run failed), nothing else"),
    # scripts/test.sh adds the run_failed rule sample-failures to the sample
    # and evaluates it once: one alert, on the pipeline whose latest run failed
    "Alerts (on call)": (["pipeline", "state", "rule", "muted", "acked_by"],
                         "SELECT 'demo/ftp_partner_import' AS pipeline, 'firing' AS state, "
                         "'sample-failures' AS rule, NULL::text AS muted, NULL::text AS acked_by",
                         "the firing sample-failures alert on demo/ftp_partner_import, unmuted and not acknowledged, nothing else"),
}


def _norm(v):
    """A value as text from psql, made comparable: numbers as floats,
    timestamps as UTC datetimes, the rest as text."""
    if v is None:
        return None
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(Infinity|NaN)", v):
        return float(v)
    if re.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d(:?\d\d)*|Z)?", v):
        try:
            return parse_pg_time(v.replace("Z", "+00"))
        except ValueError:
            return v
    return v


def _close(a, b, tol):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if tol == "exact":
            return abs(a - b) <= 1e-9 * max(1.0, abs(b))
        kind, x = tol
        if kind == "rel":
            return abs(a - b) <= x * abs(b) + 1e-9
        return abs(a - b) <= x
    return a == b


def compare(pcols, prows, ocols, orows, key, values):
    """Problems (a list of text) between the panel's rows and the oracle's."""
    pn = [c[0] for c in pcols]
    on = [c[0] for c in ocols]
    missing = ["panel has no column %s" % c for c in key + list(values) if c not in pn]
    missing += ["the oracle has no column %s" % c for c in key + list(values) if c not in on]
    if missing:
        return missing
    problems = []

    def index(rows, names, who):
        out = {}
        for r in rows:
            k = tuple(_norm(r[names.index(c)]) for c in key)
            if k in out:
                problems.append("%s has two rows for %s" % (who, dict(zip(key, r))))
            out[k] = r
        return out

    P = index(prows, pn, "the panel")
    O = index(orows, on, "the recount")
    show = lambda k: ", ".join("%s=%s" % (c, v.isoformat() if isinstance(v, dt.datetime) else v)
                               for c, v in zip(key, k))
    for k in sorted(set(P) - set(O), key=str)[:5]:
        problems.append("panel row not in the recount: %s" % show(k))
    for k in sorted(set(O) - set(P), key=str)[:5]:
        problems.append("recount row missing from the panel: %s" % show(k))
    if len(set(P) ^ set(O)) > 10:
        problems.append("(%d rows differ in all)" % len(set(P) ^ set(O)))
    bad = 0
    for k in sorted(set(P) & set(O), key=str):
        for c, tol in values.items():
            a, b = _norm(P[k][pn.index(c)]), _norm(O[k][on.index(c)])
            if not _close(a, b, tol):
                bad += 1
                if bad <= 8:
                    problems.append("%s: %s is %s, the recount %s" % (show(k), c, P[k][pn.index(c)],
                                                                    O[k][on.index(c)]))
    if bad > 8:
        problems.append("(%d values differ in all)" % bad)
    return problems


def panel_table_sql(cols, rows):
    """The panel's rows as a VALUES list for the temporary table panel."""
    def lit(v):
        return "NULL" if v is None else quote_literal(v)
    names = ", ".join(quote_ident(c[0]) for c in cols)
    if not rows:
        sel = "SELECT %s WHERE false" % ", ".join("NULL::%s AS %s" % (c[1], quote_ident(c[0])) for c in cols)
    else:
        sel = "SELECT * FROM (VALUES %s) v(%s)" % (
            ", ".join("(%s)" % ", ".join("%s::%s" % (lit(v), c[1]) for v, c in zip(r, cols)) for r in rows), names)
    return "CREATE TEMP TABLE panel AS " + sel


# ---------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------

def _no_duplicate_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))


def ds_uid(ds):
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds


def used_variables(sql, variables):
    found = set()
    for m in _VAR_RE.finditer(sql):
        name = m.group(1) or m.group(2) or m.group(4)
        if name in variables:
            found.add(name)
    return sorted(found)


def datasource_min_interval(dashboard_path):
    """jsonData.timeInterval of the provisioned data source, if it is there."""
    p = os.path.join(os.path.dirname(os.path.abspath(dashboard_path)), "..", "provisioning",
                     "datasources", "smartetl.yaml")
    try:
        with open(p) as fh:
            m = re.search(r"^\s*timeInterval:\s*['\"]?([^'\"\s#]+)", fh.read(), re.M)
            return m.group(1) if m else None
    except OSError:
        return None


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, good, text, diag=()):
        self.n += 1
        if not good:
            self.failed += 1
        print("%s %d - %s" % ("ok" if good else "not ok", self.n, text))
        for line in diag:
            for sub in str(line).splitlines():
                print("#   " + sub)
        sys.stdout.flush()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_dash = os.path.normpath(os.path.join(here, "..", "..", "grafana", "dashboards", "smartetl.json"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dashboard", nargs="?", default=default_dash)
    ap.add_argument("--from", dest="t_from", default="now-30d", help="range start (now-30d, ISO 8601, epoch ms)")
    ap.add_argument("--to", dest="t_to", default="now", help="range end")
    ap.add_argument("--interval", default="auto",
                    help="$__interval before the panel's min interval applies: auto (range / max data points, "
                         "rounded as Grafana does) or a duration such as 6h")
    ap.add_argument("--max-data-points", type=int, default=1000, help="for --interval auto (panel width in px)")
    ap.add_argument("--min-interval", default=None,
                    help="the data source's min interval (default: timeInterval of the provisioned data source)")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=V1,V2",
                    help="select values of a variable (default: its current value in the dashboard)")
    ap.add_argument("--as-role", default=None, help="SET ROLE to this role before every query")
    ap.add_argument("--statement-timeout", type=int, default=300, help="seconds")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every expanded query")
    ap.add_argument("--sample", action="store_true",
                    help="the database holds scripts/sample/generate.sql's history: the anomaly, overdue and "
                         "failure panels must show exactly what it plants")
    args = ap.parse_args()

    now = dt.datetime.now(UTC)
    # the browser sends whole milliseconds
    t_from = parse_time(args.t_from, now)
    t_to = parse_time(args.t_to, now)
    t_from = t_from.replace(microsecond=t_from.microsecond // 1000 * 1000)
    t_to = t_to.replace(microsecond=t_to.microsecond // 1000 * 1000)
    tap = Tap()
    print("# dashboard %s" % args.dashboard)
    print("# range %s .. %s%s" % (rfc3339nano(t_from), rfc3339nano(t_to),
                                  ", as role %s" % args.as_role if args.as_role else ""))

    # -- the JSON and its structure -------------------------------------------------
    try:
        with open(args.dashboard, encoding="utf-8") as fh:
            dash = json.load(fh, object_pairs_hook=_no_duplicate_keys)
        if not isinstance(dash, dict) or not isinstance(dash.get("panels"), list):
            raise ValueError("not a dashboard: no panels list")
        tap.ok(True, "dashboard JSON is valid (uid %s, schemaVersion %s)" % (dash.get("uid"),
                                                                            dash.get("schemaVersion")))
    except (OSError, ValueError) as e:
        tap.ok(False, "dashboard JSON is valid", [e])
        print("1..%d" % tap.n)
        return 1

    panels = list(walk_panels(dash["panels"]))
    ids = [p.get("id") for p in panels]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    missing = [p.get("title") for p in panels if not isinstance(p.get("id"), int)]
    tap.ok(not dup and not missing, "panel ids are unique (%d panels, rows' panels included)" % len(panels),
           (["duplicate ids: %s" % dup] if dup else []) + (["no integer id: %s" % missing] if missing else []))

    wrong = []
    for p in panels:
        if ds_uid(p.get("datasource")) != DATASOURCE_UID:
            wrong.append("panel %s %r: datasource %r" % (p.get("id"), p.get("title"), p.get("datasource")))
        for t in p.get("targets", []):
            if "datasource" in t and ds_uid(t["datasource"]) != DATASOURCE_UID:
                wrong.append("panel %s %r target %s: datasource %r" % (p.get("id"), p.get("title"),
                                                                       t.get("refId"), t["datasource"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query" and ds_uid(v.get("datasource")) != DATASOURCE_UID:
            wrong.append("variable %s: datasource %r" % (v.get("name"), v.get("datasource")))
    tap.ok(not wrong, "every panel, target and query variable uses data source uid %s" % DATASOURCE_UID, wrong)

    targets = []
    bad = []
    for p in panels:
        refs = [t.get("refId") for t in p.get("targets", [])]
        if len(set(refs)) != len(refs) or None in refs:
            bad.append("panel %s %r: refIds %s are not unique" % (p.get("id"), p.get("title"), refs))
        for t in p.get("targets", []):
            if t.get("hide"):
                continue
            if not t.get("rawSql"):
                bad.append("panel %s %r target %s: no rawSql" % (p.get("id"), p.get("title"), t.get("refId")))
                continue
            if t.get("rawQuery") is not True:
                bad.append("panel %s %r target %s: rawQuery is not true" % (p.get("id"), p.get("title"),
                                                                            t.get("refId")))
            if t.get("format") not in ("time_series", "table"):
                bad.append("panel %s %r target %s: format %r" % (p.get("id"), p.get("title"), t.get("refId"),
                                                                 t.get("format")))
            targets.append((p, t))
    tap.ok(not bad and targets, "every SQL target is raw SQL with format time_series or table (%d targets)"
           % len(targets), bad or ([] if targets else ["no SQL targets"]))

    problems = self_test()
    tap.ok(not problems, "macro and variable expansion match Grafana's", problems)

    runner = Runner(args.as_role, args.statement_timeout)
    ds_min = args.min_interval or datasource_min_interval(args.dashboard)

    def interval_for(panel):
        if args.interval == "auto":
            mdp = panel.get("maxDataPoints") or args.max_data_points
            ms = round_interval_ms((unix_ms(t_to) - unix_ms(t_from)) / mdp)
        else:
            ms = go_parse_interval(args.interval, now) * 1000
        low = panel.get("interval") or ds_min
        if low:
            ms = max(ms, interval_to_ms(low, now))
        return ms / 1000.0

    def builtins_for(interval_s):
        return {"__interval": seconds_to_hms(interval_s), "__interval_ms": int(interval_s * 1000),
                "__from": unix_ms(t_from), "__to": unix_ms(t_to),
                "__range_ms": unix_ms(t_to) - unix_ms(t_from),
                "__range_s": (unix_ms(t_to) - unix_ms(t_from)) // 1000,
                "__range": seconds_to_hms((unix_ms(t_to) - unix_ms(t_from)) / 1000)}

    def expand(sql, variables, interval_s):
        return expand_macros(interpolate_variables(sql, variables, builtins_for(interval_s)),
                             t_from, t_to, interval_s, now)

    # -- template variables -------------------------------------------------------
    chosen = {}
    for spec in args.var:
        name, _, vals = spec.partition("=")
        chosen[name] = vals.split(",") if vals not in ("All", "$__all") else ["$__all"]
    variables = {}
    for v in dash.get("templating", {}).get("list", []):
        name = v.get("name")
        if v.get("type") == "query":
            q = v.get("query")
            sql = q.get("rawSql") if isinstance(q, dict) else q
            try:
                cols, rows = runner.run(expand(sql, variables, 60))
                names = [c[0] for c in cols]
                vi = names.index("__value") if "__value" in names else 0
                options = [r[vi] for r in rows if r[vi] is not None]
                if v.get("regex"):
                    rx = re.compile(v["regex"].strip("/"))
                    options = [o for o in options if rx.search(o)]
                tap.ok(bool(options), "variable $%s: %d values" % (name, len(options)),
                       [] if options else ["its query returned no values: %s" % sql])
            except (QueryError, MacroError) as e:
                tap.ok(False, "variable $%s" % name, [e])
                options = []
        elif v.get("type") == "custom":
            options = [o.strip() for o in re.split(r"(?<!\\),", v.get("query", "")) if o.strip()]
        else:
            cur = v.get("current", {}).get("value")
            options = cur if isinstance(cur, list) else [cur] if cur is not None else []
        current = chosen.get(name) or v.get("current", {}).get("value") or (["$__all"] if v.get("includeAll")
                                                                            else options[:1])
        if isinstance(current, str):
            current = [current]
        if "$__all" in current:
            current = ["$__all"]
        variables[name] = Variable(name, bool(v.get("multi")), bool(v.get("includeAll")),
                                   v.get("allValue") or None, current, options)

    def check_values(title, label, cols, rows, vs, interval_s):
        """The panel's rows against the recount, the extra checks and, with
        --sample, what the sample data plants."""
        checks = []
        if title in ORACLES:
            osql, key, values = ORACLES[title]
            osql = osql.replace("{filter}", _PIPELINE_FILTER if "$pipeline" in title else "")
            checks.append(("values equal the recount from smartetl.run", osql, key, values))
        if args.sample and title in PLANTED:
            key, psql_text, what = PLANTED[title]
            checks.append(("shows exactly what the sample plants: " + what, psql_text, key, {}))
        for desc, osql, key, values in checks:
            try:
                ocols, orows = runner.run(expand(osql, vs, interval_s))
            except (QueryError, MacroError) as e:
                tap.ok(False, "%s: %s" % (label, desc), ["the recount failed: %s" % e])
                continue
            problems = compare(cols, rows, ocols, orows, key, values)
            tap.ok(not problems, "%s: %s (%d rows)" % (label, desc, len(orows)), problems)
        for desc, csql in PANEL_CHECKS.get(title, []):
            try:
                _, crows = runner.run(panel_table_sql(cols, rows) + ";\n" + expand(csql, vs, interval_s))
                good = bool(crows) and crows[0][0] == "t"
                tap.ok(good, "%s: %s" % (label, desc), [] if good else [crows[0][1] if crows else "no result"])
            except (QueryError, MacroError) as e:
                tap.ok(False, "%s: %s" % (label, desc), ["the check failed: %s" % e])

    # -- every target -------------------------------------------------------------
    for p, t in targets:
        sql = t["rawSql"]
        fmt = t.get("format")
        interval_s = interval_for(p)
        uses = [n for n in used_variables(sql, variables) if variables[n].multi or variables[n].include_all]
        runs = [variables]
        for n in uses:
            var = variables[n]
            if var.is_all() and var.options:
                single = dict(variables)
                single[n] = Variable(n, var.multi, var.include_all, var.all_value, [var.options[0]], var.options)
                runs.append(single)
        for vs in runs:
            label = "[%s] %s" % (p.get("id"), str(p.get("title")).replace("#", "\\#"))
            if len(p.get("targets", [])) > 1:
                label += " (%s)" % t.get("refId")
            shown = used_variables(sql, vs)
            if shown:
                label += " [%s]" % ", ".join("%s=%s" % (n, vs[n].label()) for n in shown)
            try:
                expanded = expand(sql, vs, interval_s)
            except (MacroError, ValueError) as e:
                tap.ok(False, label, ["interpolation failed: %s" % e])
                continue
            if args.verbose:
                print("# " + expanded.replace("\n", "\n# "))
            try:
                cols, rows = runner.run(expanded)
            except QueryError as e:
                tap.ok(False, label, ["db query error: %s" % e, "query:", expanded])
                continue
            if fmt == "time_series":
                err, info = check_time_series(cols, rows, t_from, t_to, interval_s)
                info = info and "time_series, $__interval %s, %s" % (go_format_interval(interval_s), info)
            else:
                err, info = check_table(cols, rows)
                info = info and "table, %s" % info
            if err:
                tap.ok(False, label, [err, "query:", expanded])
                continue
            if rows:
                tap.ok(True, "%s # %s" % (label, info))
            check_values(p.get("title"), label, cols, rows, vs, interval_s)
            if rows:
                continue
            allowed = None if args.sample else EXPECTED_EMPTY.get(p.get("title"))
            if not allowed:
                tap.ok(False, label, ["the query returned no rows", "query:", expanded])
                continue
            reason, confirm = allowed
            if confirm:
                try:
                    _, crow = runner.run(expand(confirm, vs, interval_s))
                    if not crow or crow[0][0] != "t":
                        tap.ok(False, label, ["no rows, but the data says there should be some (%s is false)"
                                              % " ".join(confirm.split())])
                        continue
                except (QueryError, MacroError) as e:
                    tap.ok(False, label, ["checking that the panel may be empty failed: %s" % e])
                    continue
            tap.ok(True, "%s # empty, allowed: %s" % (label, reason))

    shutil.rmtree(runner.tmp, ignore_errors=True)
    print("1..%d" % tap.n)
    if tap.failed:
        print("# %d of %d failed" % (tap.failed, tap.n))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
