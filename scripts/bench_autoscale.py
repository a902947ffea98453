#!/usr/bin/env python3
"""Autoscaling benchmark: a live, exactly-once, stateful job through a step of 3x in its input
rate, under each policy, then 20 rescales by hand; every rescale's output pause and every
result checked.

Workload: 3 raind on 127.0.0.1 (ports from the OS, log shipping off, tests/bench added to
operator_dirs). The job, submitted with
  rainctl job submit --live --stage identity --stage 'tests/bench/slow_count.py COST_US'
    --tasks 1 --dest D --autoscale POLICY [--lw LW --hw HW] --detach
and fed by `rainsource --job J` from this script, which writes `uUSER,SEQ` lines (2000 users,
seeded) to its stdin on a schedule (10 ms ticks): --rate lines/s, then 3x that for --high-s,
then --rate again for --adapt-s plus --steady-s. Stage 2 (slow_count.py) keeps a running count
per user (keyed state: it moves with its key groups) and waits COST_US per tuple, so one task
takes at most 1e6/COST_US tuples/s (1000 by default: the base rate needs one task at 50 %, the
step two); it stamps every result with the millisecond it made it. Stage 1 (identity, cheap)
is judged too: the thresholds apply to every stage, so at 3x it grows as well (rainsource's
round robin), which the actions count; the target policy sizes it by its true rate: one task.
  thresholds: --lw 300 --hw 800 (one task at the base rate is between them; at 3x one task is
              saturated above HW and two are below it); cooldown 5 s (the default).
  target:     no thresholds; cooldown 5 s.
  by hand:    --autoscale thresholds with thresholds no rate reaches, at 1.5x the base rate,
              `rainctl job rescale J 2 N` for N in 2 3 1 3 2 1 ... (20 rescales, --hand), each
              once the previous one settled plus 1.5 s.

What is measured, and how:
  backlog     lines the schedule had offered by t minus results stage 2 made by t (their
              stamps), on a 100 ms grid; "stops growing" = the first time after the step at
              which it is within 0.1 s of input of its highest value before the step down.
  actions     the job's scaling history (`job status --json`: scaling), split into the step up
              (from the step until the step down), the step down (--adapt-s after it) and the
              steady window (the --steady-s after that).
  output gap  per rescale: the longest time between two consecutive result stamps of the stage
              (all its tasks together) from 0.2 s before the rescale started until 1 s after it
              settled. The reference: the same over every 3 s of the steady window, which has
              no rescale.
  lost, dup   the results (stamps cut off) against the running counts computed here from the
              lines written: every `user,count` exactly once.
  machine     cores, load average and the disk's write rate before; the load at the end.
Targets (issue 15): the backlog stops growing within 5 s of the step; at most 2 actions per
step with the target policy (the thresholds take one task per action, by the spec); an output
gap of at most 250 ms median and 1 s max per rescale; 0 lost and 0 duplicated results over at
least 20 rescales; 0 actions in the steady window.

  python3 scripts/bench_autoscale.py [--build build] [--quick] [--keep]
Exit status: 0 when every job finished with exact results, whatever the figures; 1 otherwise.
"""

import argparse
import bisect
import collections
import datetime
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (  # noqa: E402
    JsonCtl, build_dir, log, machine_line, positive, print_table, start_cluster)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USERS = 2000
TICK_S = 0.01


class Feeder:
    """Writes lines to a rainsource's stdin on a schedule of (seconds, lines/s) phases; knows
    how many lines the schedule had offered at any time, and every line it wrote."""

    def __init__(self, argv, phases, seed, log_path):
        self.log_path = log_path
        with open(log_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=err)
        self.phases = phases
        self.rng = random.Random(seed)
        self.users = []  # the user of every line written, in order
        self.t0 = None
        self.stop_at = None  # set: the input ends then, whatever the phases
        self.thread = threading.Thread(target=self.run, daemon=True)

    def offered(self, t):
        """Lines the schedule offered by wall time t."""
        if self.t0 is None or t <= self.t0:
            return 0
        left, total = t - self.t0, 0.0
        for secs, rate in self.phases:
            step = min(left, secs)
            total += step * rate
            left -= step
            if left <= 0:
                break
        return int(total)

    def start(self):
        self.t0 = time.time()
        self.thread.start()

    def end(self):
        return self.stop_at or self.t0 + sum(s for s, _ in self.phases)

    def run(self):
        fd = self.proc.stdin.fileno()
        try:
            while True:
                now, end = time.time(), self.end()
                want = self.offered(min(now, end))
                if want > len(self.users):
                    chunk = []
                    for i in range(len(self.users), want):
                        u = self.rng.randrange(USERS)
                        self.users.append(u)
                        chunk.append(f"u{u},{i}\n")
                    data = "".join(chunk).encode()
                    while data:  # blocks while the job holds rainsource back
                        data = data[os.write(fd, data):]
                if now >= end:
                    break
                time.sleep(TICK_S)
        except BrokenPipeError:
            pass
        finally:
            self.proc.stdin.close()

    def expected(self):
        counts, want = collections.Counter(), collections.Counter()
        for u in self.users:
            counts[u] += 1
            want[f"u{u},{counts[u]}"] += 1
        return want


def longest_gap(stamps, lo, hi):
    """The longest pause between consecutive stamps (sorted, ms) within [lo, hi] ms."""
    i, j = bisect.bisect_left(stamps, lo), bisect.bisect_right(stamps, hi)
    inside = stamps[i:j]
    if len(inside) < 2:
        return None
    return max(b - a for a, b in zip(inside, inside[1:]))


class AutoscaleBench(JsonCtl):
    def __init__(self, args):
        self.args = args
        self.build = build_dir(REPO, args.build)
        self.rainctl_bin = os.path.join(self.build, "ctl", "rainctl")
        self.rainsource = os.path.join(self.build, "ctl", "rainsource")
        self.raind = os.path.join(self.build, "daemon", "raind")
        self.operator = os.path.join(REPO, "tests", "bench", "slow_count.py")
        for exe in (self.rainctl_bin, self.rainsource, self.raind):
            if not os.access(exe, os.X_OK):
                sys.exit(f"bench_autoscale.py: no executable {exe} (build first)")
        self.root = tempfile.mkdtemp(prefix="rainstorm-bench-autoscale.", dir="/tmp")
        os.chmod(self.root, 0o711)  # operators run as operator_user under a root raind
        self.cluster = None
        self.last_error = None
        self.children = []  # RaindCluster registers its processes here
        self.ok = True

    def submit(self, dest, policy, lw=None, hw=None):
        cmd = ["job", "submit", "--live", "--stage", "identity", "--stage",
               f"{self.operator} {self.args.cost_us}", "--tasks", "1", "--dest", dest,
               "--autoscale", policy, "--detach"] + (["--keep"] if self.args.keep else [])
        if lw is not None:
            cmd += ["--lw", str(lw), "--hw", str(hw)]
        return self.rainctl(self.cluster.nodes[0], *cmd, check=True)["job"]

    def status(self, job):
        return self.rainctl(self.cluster.nodes[0], "job", "status", job)

    def run_job(self, name, policy, phases, lw=None, hw=None, during=None):
        """One live job through `phases`; `during(job, feeder)` runs beside the feeder. Returns
        what the report needs."""
        leader = self.cluster.nodes[0]
        dest = f"out-{name}"
        job = self.submit(dest, policy, lw, hw)
        st = None
        for _ in range(300):
            st = self.status(job)
            if st and st["state"] != "starting":
                break
            time.sleep(0.1)
        if not st or st["state"] != "running":
            raise RuntimeError(f"job {job} did not start: {st}")
        feeder = Feeder([self.rainsource, "--job", job, "--node", leader.addr], phases,
                        seed=len(name), log_path=os.path.join(self.root, f"rainsource-{name}.log"))
        log(f"{name}: job {job} running; feeding {phases}")
        feeder.start()
        if during:
            during(job, feeder)
        feeder.thread.join()
        try:
            feeder.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            feeder.proc.kill()
            feeder.proc.wait()
        if feeder.proc.returncode != 0:
            with open(feeder.log_path) as f:
                raise RuntimeError(f"rainsource exited {feeder.proc.returncode}: {f.read()[-300:]}")
        deadline = time.time() + 120
        while time.time() < deadline:
            st = self.status(job)
            if st and st["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.25)
        if not st or st["state"] != "done":
            raise RuntimeError(f"job {job}: {st and st['state']} {st and st.get('reason')}")
        out = os.path.join(self.root, dest)
        self.rainctl(leader, "get", dest, out, timeout_ms=120000, check=True)
        got, stamps = collections.Counter(), []
        with open(out) as f:
            for line in f:
                user, n, ms = line.rstrip("\n").split(",")
                got[f"{user},{n}"] += 1
                stamps.append(int(ms))
        stamps.sort()
        want = feeder.expected()
        lost, dup = sum((want - got).values()), sum((got - want).values())
        if lost or dup:
            self.ok = False
        rescales = []
        for e in st.get("scaling", []):
            start = e["at_ms"] - e["took_ms"]
            rescales.append({**e, "start_ms": start, "job": name,
                             "gap_ms": longest_gap(stamps, start - 200, e["at_ms"] + 1000)})
        stages = "; ".join(f"stage {d['stage']} in {d['tuples_in']:,} out {d['tuples_out']:,} "
                           f"dups {d['duplicates']:,}" for d in st.get("stages_detail", []))
        log(f"{name}: {len(feeder.users):,} lines, {len(rescales)} rescales, lost {lost}, "
            f"dup {dup} ({stages})")
        return {"name": name, "job": job, "feeder": feeder, "stamps": stamps,
                "rescales": rescales, "lost": lost, "dup": dup, "lines": len(feeder.users)}

    def policy_run(self, policy):
        a = self.args
        r = a.rate
        phases = [(a.warm_s, r), (a.high_s, 3 * r), (a.adapt_s + a.steady_s, r)]
        lw, hw = (300, 800) if policy == "thresholds" else (None, None)
        res = self.run_job(policy, policy, phases, lw, hw)
        t0 = res["feeder"].t0
        step, down = t0 + a.warm_s, t0 + a.warm_s + a.high_s
        steady = down + a.adapt_s
        # Backlog on a 100 ms grid between the step and the step down.
        stamps, feeder = res["stamps"], res["feeder"]
        grid, t = [], step
        while t <= down:
            grid.append((t, feeder.offered(t) - bisect.bisect_right(stamps, t * 1000)))
            t += 0.1
        peak = max(b for _, b in grid)
        tol = 0.1 * 3 * r
        res["backlog_stop_s"] = next(t for t, b in grid if b >= peak - tol) - step
        res["backlog_peak"] = peak
        ms = lambda x: x * 1000  # noqa: E731
        starts = [(e["start_ms"], e) for e in res["rescales"]]
        res["up"] = [e for s, e in starts if ms(step) <= s < ms(down)]
        res["down"] = [e for s, e in starts if ms(down) <= s < ms(steady)]
        res["steady"] = [e for s, e in starts if s >= ms(steady)]
        res["before"] = [e for s, e in starts if s < ms(step)]
        refs = []
        t = steady
        while t + 3 <= steady + a.steady_s:
            g = longest_gap(stamps, ms(t), ms(t + 3))
            if g is not None:
                refs.append(g)
            t += 3
        res["steady_gaps"] = refs
        return res

    def hand_run(self):
        a = self.args
        cycle = [2, 3, 1, 3, 2, 1]
        targets = [cycle[i % len(cycle)] for i in range(a.hand)]
        # Long enough for every rescale; the input ends once they are done.
        phases = [(a.hand * 6 + 10, int(1.5 * a.rate))]

        def rescales(job, feeder):
            time.sleep(3)
            for n in targets:
                self.rainctl(self.cluster.nodes[0], "job", "rescale", job, "2", str(n),
                             timeout_ms=120000, check=True)
                time.sleep(1.5)
            feeder.stop_at = time.time() + 1

        return self.run_job("by-hand", "thresholds", phases, 0, 10 ** 9, during=rescales)

    def run(self):
        a = self.args
        self.machine_before = machine_line(self.root)
        log(self.machine_before)
        sets = ["log_ship_interval_ms=0", "operator_dirs=builtin," + os.path.dirname(self.operator)]
        root = os.path.join(self.root, "cluster")
        self.cluster, _ = start_cluster(self, "cluster", root, 3, sets)
        runs = [self.policy_run(p) for p in a.policies]
        hand = self.hand_run() if a.hand > 0 else {"rescales": [], "lost": 0, "dup": 0}
        self.report(runs, hand)

    def report(self, runs, hand):
        a = self.args
        print(f"## Autoscaling benchmark ({datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC)\n")
        print(f"command: python3 scripts/bench_autoscale.py{' --quick' if a.quick else ''}\n"
              f"3 nodes; live job identity -> slow_count.py {a.cost_us} (stateful, "
              f"{1e6 / a.cost_us:,.0f} tuples/s per task), exactly-once; rate {a.rate}/s, "
              f"{3 * a.rate}/s from +{a.warm_s} s for {a.high_s} s, then {a.rate}/s for "
              f"{a.adapt_s} + {a.steady_s} s (steady window)")
        load = os.getloadavg()
        print(f"before the run: {self.machine_before}\nload average at the end: "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")

        def acts(es):
            return ", ".join(f"stage {e['stage']} {e['from']}->{e['to']}" for e in es) or "none"
        rows = []
        for r in runs:
            rows.append([r["name"], f"{r['backlog_stop_s']:.1f}", f"{r['backlog_peak']:,}",
                         f"{len(r['up'])} ({acts(r['up'])})",
                         f"{len(r['down'])} ({acts(r['down'])})",
                         f"{len(r['steady'])}", str(r["lost"]), str(r["dup"])])
        print_table("The step (3x up, then back down)",
                    ["policy", "backlog stops s", "peak backlog", "actions up", "actions down",
                     f"actions in {a.steady_s} s steady", "lost", "dup"], rows)
        every = [e for r in runs for e in r["rescales"]] + hand["rescales"]
        rows = [[e["job"], str(e["stage"]), f"{e['from']}->{e['to']}", str(e["took_ms"]),
                 "-" if e["gap_ms"] is None else str(e["gap_ms"]), e["outcome"]] for e in every]
        print_table("Every rescale (output gap: of stage 2's results)",
                    ["job", "stage", "tasks", "settled ms", "output gap ms", "outcome"], rows)
        gaps = [e["gap_ms"] for e in every if e["gap_ms"] is not None]
        # No rescale with results around it measures nothing: "-", and the targets MISS.
        med = statistics.median(gaps) if gaps else None
        top = max(gaps) if gaps else None
        refs = [g for r in runs for g in r["steady_gaps"]]
        print(f"output gap over {len(gaps)} rescales: median {med if gaps else '-'} ms, max "
              f"{top if gaps else '-'} ms; reference (longest pause in each 3 s of the steady "
              f"windows, no rescale): median {statistics.median(refs) if refs else '-'} ms, max "
              f"{max(refs) if refs else '-'} ms\n")
        lost = sum(r["lost"] for r in runs) + hand["lost"]
        dup = sum(r["dup"] for r in runs) + hand["dup"]
        ok = lambda b: "PASS" if b else "MISS"  # noqa: E731
        target = next((r for r in runs if r["name"] == "target"), None)
        rows = [[f"backlog stops growing within 5 s of the step ({r['name']})",
                 f"{r['backlog_stop_s']:.1f} s", ok(r["backlog_stop_s"] <= 5)] for r in runs]
        rows += [
            ["at most 2 actions per step (target)",
             f"{len(target['up'])} up, {len(target['down'])} down" if target else "-",
             ok(target and len(target["up"]) <= 2 and len(target["down"]) <= 2)],
            ["output gap per rescale: median <= 250 ms", f"{med} ms" if gaps else "-",
             ok(gaps and med <= 250)],
            ["output gap per rescale: max <= 1 s", f"{top} ms" if gaps else "-",
             ok(gaps and top <= 1000)],
            [f"0 lost, 0 duplicated over >= 20 rescales", f"{lost} lost, {dup} dup over "
             f"{len(every)} rescales", ok(lost == 0 and dup == 0 and len(every) >= 20)],
            [f"0 actions in {a.steady_s} s of steady rate",
             ", ".join(f"{r['name']} {len(r['steady'])}" for r in runs),
             ok(all(not r["steady"] for r in runs))],
        ]
        print_table("Targets", ["target", "measured", "verdict"], rows)

    def cleanup(self):
        if self.cluster:
            self.cluster.down()
        if self.args.keep:
            log(f"kept data dirs in {self.root}")
        else:
            subprocess.run(["rm", "-rf", self.root])


def non_negative(text):
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--cost-us", type=positive, default=1000, help="stage 2's wait per tuple")
    p.add_argument("--rate", type=positive, default=500, help="the base rate, lines/s")
    p.add_argument("--warm-s", type=positive, default=15)
    p.add_argument("--high-s", type=positive, default=25)
    p.add_argument("--adapt-s", type=positive, default=30)
    p.add_argument("--steady-s", type=positive, default=120)
    p.add_argument("--hand", type=non_negative, default=20, help="rescales by hand")
    p.add_argument("--policies", nargs="*", choices=["thresholds", "target"],
                   default=["thresholds", "target"])
    p.add_argument("--quick", action="store_true", help="a 30 s steady window, 8 by hand")
    p.add_argument("--keep", action="store_true", help="keep the data dirs (logs)")
    args = p.parse_args()
    if args.quick:
        args.steady_s, args.hand = 30, 8
    if not args.policies and args.hand == 0:
        p.error("nothing to run: give --policies or --hand N > 0")
    bench = AutoscaleBench(args)
    try:
        bench.run()
    except (RuntimeError, TimeoutError) as e:
        log(f"error: {e}")
        bench.ok = False
    finally:
        bench.cleanup()
    sys.exit(0 if bench.ok else 1)


if __name__ == "__main__":
    main()
