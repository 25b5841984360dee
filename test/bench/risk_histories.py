#!/usr/bin/python3
"""test/bench/risk_histories.py — synthetic run histories for the failure-risk
benchmark (test/bench/risk_bench.sh): a CSV that smartetl.ingest reads
(job, run_id, start, end, status, error).

    /usr/bin/python3 test/bench/risk_histories.py SCENARIO SEED > runs.csv

Scenarios (each a few dozen pipelines over two to four months):
  ci          CI-like: workflows triggered by pushes on working hours (few on
              weekends), some nightly; flaky tests at a per-workflow rate; main
              broken now and then (failures in a row until fixed, with a new
              error); some workflows creep towards a timeout (duration up, then
              timeouts).
  noise       pure noise: identical pipelines, same run rate, same failure
              probability, independent failures: nothing is predictable.
  noise_rates stationary noise with a different rate and failure probability
              per pipeline: the 7-day baselines are close to optimal.
  periodic    failures on one weekday, or every third day, beside noise.
  drift       failure probability drifting linearly over the history, up for
              half the pipelines and down for the others.
  short       many short-lived pipelines (1 to 8 days), sticky failures.
Adversarial on purpose: the baselines are hard to beat on noise_rates and
drift, nothing can be learned on noise, the calendar (not the recent past)
explains periodic.  The seed makes a history reproducible; the benchmark
develops on some seeds and measures on others.
"""
import sys
import numpy as np

DAY = 86400.0
T0 = 1704067200.0  # 2024-01-01 00:00 UTC, a Monday


def iso(t):
    return np.datetime_as_string(np.datetime64(int(t * 1000), 'ms'), unit='s') + 'Z'


class Out:
    def __init__(self):
        self.rows = []

    def run(self, job, start, duration, failed, error):
        self.rows.append((job, start, duration, failed, error if failed else ''))

    def write(self, f):
        f.write('job,run_id,start,end,status,error\n')
        self.rows.sort(key=lambda r: (r[1], r[0]))
        for i, (job, s, d, failed, err) in enumerate(self.rows):
            f.write('%s,%d,%s,%s,%s,%s\n' % (job, i + 1, iso(s), iso(s + d), 'failed' if failed else 'success',
                                             '"%s"' % err.replace('"', '""') if err else ''))


def ci(rng, out, n=24, days=120):
    for w in range(n):
        job = 'ci_wf%02d' % w
        flaky = rng.beta(1.2, 25)              # per-run flaky failure probability
        pushes = rng.uniform(1, 15)            # pushes per weekday
        nightly = rng.random() < 0.3
        q_break = rng.uniform(0.002, 0.03)     # chance a run breaks main
        fix_h = rng.uniform(2, 48)             # mean hours until fixed
        median = rng.uniform(60, 1800)
        creeping = rng.random() < 0.3
        broken_until, breaks, growth = -1.0, 0, 0.0
        times = []
        for d in range(days):
            weekday = d % 7 < 5
            times += list(T0 + d * DAY + rng.uniform(8, 20, rng.poisson(pushes if weekday else pushes * 0.15)) * 3600)
            if nightly:
                times.append(T0 + d * DAY + 3 * 3600)
        for s in sorted(times):
            if s > broken_until and rng.random() < q_break:
                broken_until = s + rng.exponential(fix_h) * 3600
                breaks += 1
            if creeping:
                growth = growth + rng.uniform(0, 0.02) if growth < 1.0 else 0.0
            dur = median * np.exp(rng.normal(0, 0.2) + growth)
            timeout = creeping and growth > 0.8
            broken = s <= broken_until
            failed = (broken and rng.random() < 0.85) or rng.random() < flaky or (timeout and rng.random() < 0.7)
            err = ("KeyError: 'col_%d'" % breaks if broken else 'Timeout after %d s' % dur if timeout
                   else 'AssertionError: flaky test %d' % rng.integers(0, 5))
            out.run(job, s, dur, failed, err)


def noise(rng, out, n=40, days=90, same=True):
    for j in range(n):
        p = 0.05 if same else rng.beta(0.8, 12)
        rate = 4.0 if same else rng.uniform(0.5, 12)
        t = T0 + rng.uniform(0, DAY)
        while t < T0 + days * DAY:
            out.run('noise%02d' % j, t, rng.uniform(30, 600), rng.random() < p, 'Error: random %d' % rng.integers(0, 3))
            t += rng.exponential(DAY / rate)


def periodic(rng, out, n=30, days=90):
    for j in range(n):
        kind = j % 3
        per_day = rng.uniform(1, 4)
        for d in range(days):
            for _ in range(int(per_day) + (rng.random() < per_day - int(per_day))):
                s = T0 + d * DAY + rng.uniform(0, DAY)
                if kind == 0:
                    f = d % 7 == j % 7 and rng.random() < 0.8      # one weekday
                elif kind == 1:
                    f = d % 3 == 0 and rng.random() < 0.7          # every third day
                else:
                    f = rng.random() < 0.05                        # background noise
                f = f or rng.random() < 0.01
                out.run('periodic%02d' % j, s, rng.uniform(30, 600), f, 'ValueError: bad partition %d' % (d % 7))


def drift(rng, out, n=30, days=90):
    for j in range(n):
        a, b = rng.beta(1, 15), rng.beta(1, 3) * 0.6
        if j % 2:
            a, b = b, a
        per_day = rng.uniform(1, 6)
        t = T0 + rng.uniform(0, DAY)
        while t < T0 + days * DAY:
            x = (t - T0) / (days * DAY)
            out.run('drift%02d' % j, t, rng.uniform(30, 600) * (1 + x), rng.random() < a + (b - a) * x,
                    'IOError: disk %d' % rng.integers(0, 4))
            t += rng.exponential(DAY / per_day)


def short(rng, out, n=150, days=60):
    for j in range(n):
        born = T0 + rng.uniform(0, days - 3) * DAY
        life = rng.uniform(1, 8) * DAY
        p, per_day = rng.beta(0.7, 8), rng.uniform(1, 24)
        t, bad = born, False
        while t < min(born + life, T0 + days * DAY):
            bad = rng.random() < 0.5 if bad else rng.random() < p
            out.run('short%03d' % j, t, rng.uniform(30, 600), bad, 'RuntimeError: step %d' % rng.integers(0, 3))
            t += rng.exponential(DAY / per_day)


SCENARIOS = {'ci': ci, 'noise': noise, 'noise_rates': lambda r, o: noise(r, o, same=False),
             'periodic': periodic, 'drift': drift, 'short': short}

if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        sys.exit('usage: risk_histories.py {%s} SEED' % ','.join(SCENARIOS))
    out = Out()
    SCENARIOS[sys.argv[1]](np.random.default_rng(int(sys.argv[2])), out)
    out.write(sys.stdout)
