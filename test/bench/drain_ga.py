#!/usr/bin/python3
"""test/bench/drain_ga.py - Drain on the same lines as template_ga.sh, for BENCHMARKS.md.

Runs Drain (He et al., ICWS 2017) from a checkout of logpai/logparser that
you provide (its code is not part of smartetl; fetch it yourself) on the
Loghub 2k systems found under DATADIR, and prints per system:

  * GA and FGA with Drain's published per-dataset settings (log format,
    preprocessing regexes, st and depth from logparser's
    logparser/Drain/benchmark.py, read as data);
  * GA and FGA with one configuration for every system (depth 4, st 0.5,
    no preprocessing regex), as smartetl's miner runs;
  * with --rate FILE, Drain's speed on the same repeated log files as the
    smartetl ingest benchmark: parse + mine, its output writing skipped.

GA and FGA are computed exactly as in template_ga.c, against the
loghub2_revised ground truth (same partition as the original).

Usage: /usr/bin/python3 test/bench/drain_ga.py LOGPARSER_DIR [DATADIR] [--rate FILE]
  FILE: tab-separated lines "system<TAB>log file<TAB>log format", as
        template_ga.sh --sql writes them.
Needs Debian's python3-pandas and python3-regex (Drain imports them).
"""
import ast
import collections
import csv
import os
import sys
import tempfile
import time


def settings(logparser):
    """Drain's per-dataset benchmark settings, read from benchmark.py as a literal."""
    text = open(os.path.join(logparser, "logparser", "Drain", "benchmark.py")).read()
    start = text.index("benchmark_settings = {") + len("benchmark_settings = ")
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return ast.literal_eval(text[start:i + 1])
    raise ValueError("benchmark_settings not found")


def truth(datadir, system):
    for path in ("loghub2_revised/%s/%s_2k.log_structured_corrected.csv",
                 "original/%s/%s_2k.log_structured.csv"):
        p = os.path.join(datadir, path % (system, system))
        if os.path.exists(p):
            return [r["EventId"] for r in csv.DictReader(open(p, encoding="utf-8", errors="replace"))]
    return None


def scores(pred, true):
    """GA and FGA as template_ga.c defines them."""
    psize = collections.Counter(pred)
    tsize = collections.Counter(true)
    pevent = {}
    for p, t in zip(pred, true):
        pevent[p] = t if pevent.get(p, t) == t else None
    ok = [p for p, t in pevent.items() if t is not None and psize[p] == tsize[t]]
    ga = sum(psize[p] for p in ok) / len(true)
    prec = len(ok) / len(psize)
    rec = len(ok) / len(tsize)
    fga = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return ga, fga


def run_drain(LogParser, logdir, logfile, fmt, rex, depth, st, out):
    parser = LogParser(log_format=fmt, indir=logdir, outdir=out, depth=depth, st=st, rex=rex)
    parser.parse(logfile)
    res = os.path.join(out, logfile + "_structured.csv")
    return [r["EventId"] for r in csv.DictReader(open(res, encoding="utf-8", errors="replace"))]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rate = sys.argv[sys.argv.index("--rate") + 1] if "--rate" in sys.argv else None
    if rate in args:
        args.remove(rate)
    if not args:
        sys.exit(__doc__)
    logparser = os.path.abspath(args[0])
    datadir = args[1] if len(args) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "loghub_2k")
    sys.path.insert(0, logparser)
    from logparser.Drain import LogParser
    import logparser.Drain.Drain as drain_module

    conf = settings(logparser)
    out = tempfile.mkdtemp(prefix="drain_ga.")
    devnull = open(os.devnull, "w")
    print("%-12s %7s %7s %7s %7s" % ("Drain", "GA", "FGA", "GA-1", "FGA-1"))
    print("%-12s %7s %7s %7s %7s" % ("", "tuned", "tuned", "config", "config"))
    sums = [0.0] * 4
    n = 0
    for system, s in conf.items():
        true = truth(datadir, system)
        logdir = os.path.join(datadir, "original", system)
        logfile = os.path.basename(s["log_file"])
        if true is None or not os.path.exists(os.path.join(logdir, logfile)):
            continue
        stdout, sys.stdout = sys.stdout, devnull
        try:
            tuned = scores(run_drain(LogParser, logdir, logfile, s["log_format"], s["regex"],
                                     s["depth"], s["st"], out), true)
            plain = scores(run_drain(LogParser, logdir, logfile, s["log_format"], [],
                                     4, 0.5, out), true)
        finally:
            sys.stdout = stdout
        print("%-12s %7.3f %7.3f %7.3f %7.3f" % (system, tuned[0], tuned[1], plain[0], plain[1]))
        for i, v in enumerate(tuned + plain):
            sums[i] += v
        n += 1
    if n:
        print("%-12s %7.3f %7.3f %7.3f %7.3f" % tuple(["average"] + [v / n for v in sums]))

    if rate:
        # parse + mine only: skip writing the result files
        drain_module.LogParser.outputResult = lambda self, clusters: None
        total = 0
        secs = 0.0
        for line in open(rate):
            system, path, fmt = line.rstrip("\n").split("\t")
            s = conf.get(system, {})
            parser = LogParser(log_format=fmt, indir=os.path.dirname(path), outdir=out,
                               depth=s.get("depth", 4), st=s.get("st", 0.5), rex=s.get("regex", []))
            stdout, sys.stdout = sys.stdout, devnull
            t0 = time.process_time()
            try:
                parser.parse(os.path.basename(path))
            finally:
                sys.stdout = stdout
            secs += time.process_time() - t0
            total += len(parser.df_log)
        print("\nDrain parse + mine (tuned settings, output skipped): %d lines in %.1f s CPU, %.0f lines/s"
              % (total, secs, total / secs))


if __name__ == "__main__":
    main()
