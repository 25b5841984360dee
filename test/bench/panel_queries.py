#!/usr/bin/env python3
"""Print every SQL query a Grafana dashboard sends, expanded as Grafana would.

One JSON object per line: {"label": ..., "sql": ...}.  The template
variables' queries come first (run here, with psql, to learn their options),
then every panel target with the variables at their dashboard defaults and,
for a variable at "All", once more with its first option only (one
pipeline).  Macro and variable expansion are test/grafana/check_dashboard.py's
(the same code test/grafana/run.sh checks against Grafana's rules).  Used by
test/bench/panels_bench.sh; needs PGHOST etc. for the variable queries.

Usage: panel_queries.py [--from now-7d] [--to now] [--interval auto] [DASHBOARD]
"""
import argparse
import datetime as dt
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "grafana"))
import check_dashboard as cd  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dashboard", nargs="?",
                    default=os.path.join(here, "..", "..", "grafana", "dashboards", "smartetl.json"))
    ap.add_argument("--from", dest="t_from", default=None, help="default: the dashboard's time.from")
    ap.add_argument("--to", dest="t_to", default=None, help="default: the dashboard's time.to")
    ap.add_argument("--interval", default="auto")
    ap.add_argument("--max-data-points", type=int, default=1000)
    args = ap.parse_args()
    with open(args.dashboard, encoding="utf-8") as fh:
        dash = json.load(fh)
    now = dt.datetime.now(cd.UTC)
    t_from = cd.parse_time(args.t_from or dash.get("time", {}).get("from", "now-7d"), now)
    t_to = cd.parse_time(args.t_to or dash.get("time", {}).get("to", "now"), now)
    t_from = t_from.replace(microsecond=t_from.microsecond // 1000 * 1000)
    t_to = t_to.replace(microsecond=t_to.microsecond // 1000 * 1000)
    runner = cd.Runner(None, 600)
    ds_min = cd.datasource_min_interval(args.dashboard)

    def interval_for(panel):
        if args.interval == "auto":
            mdp = panel.get("maxDataPoints") or args.max_data_points
            ms = cd.round_interval_ms((cd.unix_ms(t_to) - cd.unix_ms(t_from)) / mdp)
        else:
            ms = cd.go_parse_interval(args.interval, now) * 1000
        low = panel.get("interval") or ds_min
        if low:
            ms = max(ms, cd.interval_to_ms(low, now))
        return ms / 1000.0

    def expand(sql, variables, interval_s):
        rng = cd.unix_ms(t_to) - cd.unix_ms(t_from)
        builtins = {"__interval": cd.seconds_to_hms(interval_s), "__interval_ms": int(interval_s * 1000),
                    "__from": cd.unix_ms(t_from), "__to": cd.unix_ms(t_to), "__range_ms": rng,
                    "__range_s": rng // 1000, "__range": cd.seconds_to_hms(rng / 1000)}
        return cd.expand_macros(cd.interpolate_variables(sql, variables, builtins), t_from, t_to, interval_s, now)

    def emit(label, sql):
        print(json.dumps({"label": label, "sql": sql}))

    variables = {}
    for v in dash.get("templating", {}).get("list", []):
        name = v.get("name")
        options = []
        if v.get("type") == "query":
            q = v.get("query")
            sql = expand(q.get("rawSql") if isinstance(q, dict) else q, variables, 60)
            emit("variable $%s" % name, sql)
            cols, rows = runner.run(sql)
            names = [c[0] for c in cols]
            vi = names.index("__value") if "__value" in names else 0
            options = [r[vi] for r in rows if r[vi] is not None]
        current = v.get("current", {}).get("value") or (["$__all"] if v.get("includeAll") else options[:1])
        if isinstance(current, str):
            current = [current]
        variables[name] = cd.Variable(name, bool(v.get("multi")), bool(v.get("includeAll")),
                                      v.get("allValue") or None, current, options)

    for p in cd.walk_panels(dash["panels"]):
        for t in p.get("targets", []):
            if t.get("hide") or not t.get("rawSql"):
                continue
            sql = t["rawSql"]
            label = "[%s] %s" % (p.get("id"), p.get("title"))
            uses = [n for n in cd.used_variables(sql, variables) if variables[n].is_all()]
            emit(label + (" [%s=All]" % ",".join(uses) if uses else ""), expand(sql, variables, interval_for(p)))
            for n in uses:
                var = variables[n]
                if var.options:
                    single = dict(variables)
                    single[n] = cd.Variable(n, var.multi, var.include_all, var.all_value, [var.options[0]],
                                            var.options)
                    emit(label + " [%s=%s]" % (n, var.options[0]), expand(sql, single, interval_for(p)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
