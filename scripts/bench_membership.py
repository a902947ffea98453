#!/usr/bin/env python3
"""Membership benchmark: failure-detection time, false failures under loss, traffic and CPU.

Runs real raind processes on 127.0.0.1 (ports from the OS) and, when installed, serf agents for
comparison. Progress goes to stderr, result tables to stdout.

  python3 scripts/bench_membership.py --build build            # full run (~20-25 min)
  python3 scripts/bench_membership.py --build build --quick    # N=5,10, 3 trials (~3 min)

What is measured, and how:
  detection   per (N, protocol, suspicion): a cluster is started once and reused; each trial
              SIGKILLs one node (never node1, the introducer), takes the kill time from the wall
              clock just before the signal, and reads each survivor's raind.log for its first
              `event=fail member=<killed id>` line (1 ms log timestamps). first/last = the
              earliest/latest survivor. The killed node is then restarted in its dir as a new
              member and the next trial waits until every node lists every member alive.
  false fail  N=10, default settings (ping, suspicion on): `rainctl drop R` on every node, then a
              fixed window with no kill; every `event=fail` logged in the window is false.
              Figures per hour are extrapolated from the window.
  traffic/CPU per node over a quiet window after convergence: bytes from `rainctl stats --json`
              deltas, CPU from /proc/<pid>/stat utime+stime deltas.
  plain text  at --plain-sizes (default 10) each raind configuration runs a second time right
              after, in plain text (insecure=true, rainctl --insecure); every other cluster is
              the default deployment: keys made for it, CurveZMQ on every socket. A table sets
              the two detection times side by side.
  machine     cores, load average and the disk's write rate before the run; load at the end.
  serf        same detection/traffic/CPU procedure with serf agents (default lan profile);
              detection = arrival time of each agent's "EventMemberFailed: <name>" log line;
              bytes = memberlist.udp/tcp.sent counters from serf's statsd sink.
"""

import argparse
import json
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# Targets from the project brief, printed beside the measurements.
TARGET_DETECT_MS = {True: 2000, False: 1000}  # suspicion on/off, median, every survivor, N=10..20
TARGET_FALSE_FAIL_DROP = 10                    # zero false failures at this drop %, suspicion on
TARGET_BYTES_PER_S = 2048                      # sent per node

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (  # noqa: E402
    CLK_TCK, cpu_ticks, die_with_parent, fmt_ms, free_port, log,
    machine_line, median, print_run_header, print_table, start_cluster, wait_until)


def measure_usage(pids_and_bytes, window_s):
    """pids_and_bytes: list of (pid, fn() -> (sent, received) or None). Returns per-node
    (sent B/s, received B/s, cpu %) over a window in which nothing else is done."""
    sample = lambda pid, fn: (time.monotonic(), cpu_ticks(pid), fn())
    start = [sample(pid, fn) for pid, fn in pids_and_bytes]
    time.sleep(window_s)
    end = [sample(pid, fn) for pid, fn in pids_and_bytes]
    out = []
    for (t0, c0, b0), (t1, c1, b1) in zip(start, end):
        if None in (c0, c1, b0, b1):
            continue
        elapsed = t1 - t0
        out.append(((b1[0] - b0[0]) / elapsed, (b1[1] - b0[1]) / elapsed,
                    100.0 * (c1 - c0) / CLK_TCK / elapsed))
    return out


def summarize_detection(trials):
    """trials: list of lists of per-survivor detection ms (None = not detected in time)."""
    firsts, lasts, missed = [], [], 0
    for per_survivor in trials:
        seen = [d for d in per_survivor if d is not None]
        missed += len(per_survivor) - len(seen)
        if seen:
            firsts.append(min(seen))
        if seen and len(seen) == len(per_survivor):
            lasts.append(max(seen))
    return {
        "trials": len(trials),
        "first_med": median(firsts), "first_max": max(firsts) if firsts else None,
        "last_med": median(lasts), "last_max": max(lasts) if lasts else None,
        "missed": missed,
    }


# --- serf -------------------------------------------------------------------------------------

class SerfAgent:
    def __init__(self, bench, slot, name, statsd_port, root):
        self.bench = bench
        self.slot = slot
        self.name = name
        self.bind_port = free_port()
        self.rpc_port = free_port()
        self.statsd_port = statsd_port
        self.root = root
        self.lines = []  # (arrival time s, line)
        self.lock = threading.Lock()
        self.proc = None

    def start(self, join=None):
        conf = os.path.join(self.root, f"serf-slot{self.slot}.json")
        with open(conf, "w") as f:
            json.dump({"statsd_addr": f"127.0.0.1:{self.statsd_port}"}, f)
        cmd = ["serf", "agent", f"-node={self.name}", f"-bind=127.0.0.1:{self.bind_port}",
               f"-rpc-addr=127.0.0.1:{self.rpc_port}", f"-config-file={conf}", "-log-level=info"]
        if join:
            cmd.append(f"-join={join}")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=die_with_parent, text=True, bufsize=1)
        self.bench.children.append(self.proc)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.time()
            with self.lock:
                self.lines.append((now, line.rstrip("\n")))

    def first_line(self, needle):
        with self.lock:
            for t, line in self.lines:
                if needle in line:
                    return t
        return None

    def wait_running(self):
        def check():
            if self.proc.poll() is not None:
                tail = "\n".join(l for _, l in self.lines[-3:])
                raise RuntimeError(f"serf agent {self.name} exited: {tail}")
            return self.first_line("Serf agent running!") is not None
        wait_until(check, 15, f"serf {self.name} running", 0.02)

    def alive_members(self):
        r = subprocess.run(["serf", "members", f"-rpc-addr=127.0.0.1:{self.rpc_port}",
                            "-status=alive", "-format=json"], capture_output=True, text=True)
        if r.returncode != 0:
            return None
        return {m["name"] for m in json.loads(r.stdout).get("members", [])}

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class StatsdSink:
    """One UDP socket per serf slot; sums the memberlist byte counters each slot reports."""

    COUNTERS = {"memberlist.udp.sent": 0, "memberlist.tcp.sent": 0,
                "memberlist.udp.received": 1, "memberlist.tcp.received": 1}

    def __init__(self, slots):
        self.sel = selectors.DefaultSelector()
        self.totals = {}
        self.ports = {}
        self.lock = threading.Lock()
        for slot in slots:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, slot)
            self.ports[slot] = s.getsockname()[1]
            self.totals[slot] = [0.0, 0.0]
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                try:
                    data = key.fileobj.recv(65536).decode(errors="replace")
                except BlockingIOError:
                    continue
                for line in data.split("\n"):
                    name, _, rest = line.partition(":")
                    for counter, idx in self.COUNTERS.items():
                        if name.endswith(counter) and rest.endswith("|c"):
                            with self.lock:
                                self.totals[key.data][idx] += float(rest[:-2])

    def bytes(self, slot):
        with self.lock:
            return tuple(self.totals[slot])


class SerfCluster:
    def __init__(self, bench, root, n):
        self.bench = bench
        self.root = root
        self.sink = StatsdSink(range(1, n + 1))
        self.agents = [SerfAgent(bench, i, f"s{i}", self.sink.ports[i], root)
                       for i in range(1, n + 1)]

    def up(self):
        first = self.agents[0]
        first.start()
        first.wait_running()
        for a in self.agents[1:]:
            a.start(f"127.0.0.1:{first.bind_port}")
        for a in self.agents[1:]:
            a.wait_running()
        self.wait_converged()

    def wait_converged(self, timeout_s=60):
        def check():
            agents = [a for a in self.agents if a.alive()]
            want = {a.name for a in agents}
            for a in agents:
                seen = a.alive_members()
                if seen is None or not want <= seen:
                    return False
            return True
        wait_until(check, timeout_s, "serf convergence", 0.2)

    def replace(self, agent, restarts):
        """A fresh agent (new name, new ports) in the slot of a killed one."""
        fresh = SerfAgent(self.bench, agent.slot, f"s{agent.slot}r{restarts}",
                          agent.statsd_port, self.root)
        self.agents[self.agents.index(agent)] = fresh
        fresh.start(f"127.0.0.1:{self.agents[0].bind_port}")
        fresh.wait_running()

    def down(self):
        self.sink.stop = True
        for a in self.agents:
            if a.alive():
                a.proc.kill()
                a.proc.wait()


# --- the benchmark ----------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        build = args.build
        if not os.path.isabs(build) and not os.path.isdir(build):
            build = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", build)
        self.raind = os.path.abspath(os.path.join(build, "daemon", "raind"))
        self.rainctl_bin = os.path.abspath(os.path.join(build, "ctl", "rainctl"))
        for b in (self.raind, self.rainctl_bin):
            if not os.access(b, os.X_OK):
                sys.exit(f"bench_membership.py: no executable {b} (build first, or pass --build)")
        self.root = tempfile.mkdtemp(prefix="rainstorm-bench.")
        self.children = []

    def rainctl(self, node, *cmd, json_out=True):
        argv = [self.rainctl_bin, "--node", node.addr, "--timeout", "2000", *node.ctl_flags]
        if json_out:
            argv.append("--json")
        r = subprocess.run(argv + list(cmd), capture_output=True, text=True)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout) if json_out else r.stdout

    def stats_bytes(self, node):
        s = self.rainctl(node, "stats")
        return None if s is None else (s["bytes_sent"], s["bytes_received"])

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            log(f"kept data dirs in {self.root}")

    def start_cluster(self, tag, root, n, sets, attempts=3):
        return start_cluster(self, tag, root, n, sets, attempts)

    def rejoin(self, tag, cluster, node, attempts=3):
        """Restarts a killed node as a new member until the cluster converges; returns how
        many rejoins did not converge."""
        for attempt in range(1, attempts + 1):
            cluster.restart(node)
            try:
                cluster.wait_converged()
                return attempt - 1
            except TimeoutError as e:
                log(f"{tag}: rejoin of {node.name} did not converge: {e}")
                node.kill()
                if attempt == attempts:
                    raise

    # Detection + usage for one raind configuration.
    def run_raind_config(self, n, protocol, suspicion, plain=False):
        """With plain, the cluster runs in plain text (insecure=true) instead of CurveZMQ."""
        tag = (f"raind N={n} {protocol} suspicion={'on' if suspicion else 'off'}"
               + (" plain text" if plain else ""))
        root = os.path.join(self.root, f"n{n}-{protocol}-{'sus' if suspicion else 'nosus'}"
                            + ("-plain" if plain else ""))
        sets = [f"protocol={protocol}", f"suspicion={str(suspicion).lower()}"] + self.args.set
        if plain:
            sets.append("insecure=true")
        cluster = None
        try:
            cluster, start_failures = self.start_cluster(tag, root, n, sets)
            rejoin_failures = 0
            time.sleep(self.args.settle)
            log(f"{tag}: quiet window {self.args.quiet_window:g}s")
            usage = measure_usage([(nd.pid, lambda nd=nd: self.stats_bytes(nd))
                                   for nd in cluster.nodes], self.args.quiet_window)
            trials, victim_ids = [], set()
            # Fail events before the first kill: while the cluster formed (a concurrent start)
            # and in the quiet window. Every one is false.
            cluster.poll_logs()
            at_start = {nd.name: len(nd.events) for nd in cluster.nodes}
            start_false = sum(1 for nd in cluster.nodes for _, ev, _ in nd.events if ev == "fail")
            for t in range(self.args.trials):
                victim = cluster.nodes[1 + t % (n - 1)]
                survivors = [nd for nd in cluster.alive_nodes() if nd is not victim]
                cluster.poll_logs()  # skip what was logged before the kill
                victim_id = victim.id
                victim_ids.add(victim_id)
                kill_ms = time.time() * 1000
                victim.kill()
                detected = {}

                def all_detected():
                    for nd in survivors:
                        for ms, ev, member in nd.poll_log():
                            if ev == "fail" and member == victim_id:
                                detected.setdefault(nd.name, ms - kill_ms)
                    return len(detected) == len(survivors)

                try:
                    wait_until(all_detected, self.args.detect_timeout, "detection")
                except TimeoutError:
                    pass
                per = [detected.get(nd.name) for nd in survivors]
                trials.append(per)
                seen = [d for d in per if d is not None]
                log(f"{tag}: trial {t + 1}/{self.args.trials}: killed {victim.name}; first "
                    f"{fmt_ms(min(seen) if seen else None)} ms, last "
                    f"{fmt_ms(max(seen) if len(seen) == len(per) else None)} ms "
                    f"({len(seen)}/{len(per)} survivors)")
                rejoin_failures += self.rejoin(tag, cluster, victim)
                time.sleep(self.args.settle)
            # Fail events about a node that was never killed are false failures.
            cluster.poll_logs()
            result = summarize_detection(trials)
            result["false_fails"] = sum(1 for nd in cluster.nodes
                                        for _, ev, member in nd.events[at_start[nd.name]:]
                                        if ev == "fail" and member not in victim_ids)
            result["false_at_start"] = start_false
            result["usage"] = usage
            result["unconverged"] = (start_failures, rejoin_failures)
            return result
        except (RuntimeError, TimeoutError) as e:
            log(f"{tag}: ERROR {e}")
            return {"error": str(e)}
        finally:
            if cluster:
                cluster.down()

    def run_drop(self, n, protocol, suspicion, rates, window_s):
        tag = f"raind N={n} {protocol} suspicion={'on' if suspicion else 'off'} drop"
        root = os.path.join(self.root, f"drop-n{n}-{protocol}-{'sus' if suspicion else 'nosus'}")
        sets = [f"protocol={protocol}", f"suspicion={str(suspicion).lower()}"] + self.args.set
        rows = []
        cluster = None
        try:
            cluster, _ = self.start_cluster(tag, root, n, sets)
            for rate in rates:
                time.sleep(self.args.settle)
                for nd in cluster.alive_nodes():
                    if self.rainctl(nd, "drop", str(rate), json_out=False) is None:
                        raise RuntimeError(f"rainctl drop {rate} failed on {nd.name}")
                cluster.poll_logs()
                start_ms = time.time() * 1000
                log(f"{tag}: {rate}% for {window_s:g}s")
                time.sleep(window_s)
                end_ms = time.time() * 1000
                for nd in cluster.alive_nodes():
                    self.rainctl(nd, "drop", "0", json_out=False)
                cluster.poll_logs()
                fails = [(nd.name, member) for nd in cluster.nodes
                         for ms, ev, member in nd.events
                         if ev == "fail" and start_ms <= ms <= end_ms]
                suspects = sum(1 for nd in cluster.nodes for ms, ev, _ in nd.events
                               if ev == "suspect" and start_ms <= ms <= end_ms)
                distinct = len({m for _, m in fails})
                hours = (end_ms - start_ms) / 3.6e6
                # With the loss gone, does the cluster heal by itself (every node lists every
                # running node alive again)? If not, the next rate gets a fresh cluster.
                t0 = time.monotonic()
                try:
                    cluster.wait_converged()
                    healed = f"yes, {time.monotonic() - t0:.1f}s"
                except TimeoutError as e:
                    healed = "NO"
                    log(f"{tag}: after {rate}%, no recovery: {e}")
                    cluster.down()
                    cluster = None
                    if rate != rates[-1]:
                        cluster, _ = self.start_cluster(tag, f"{root}-after{rate}", n, sets)
                rows.append({"rate": rate, "window_s": (end_ms - start_ms) / 1000,
                             "distinct": distinct, "events": len(fails), "suspects": suspects,
                             "per_hour": distinct / hours, "healed": healed})
                log(f"{tag}: {rate}%: {distinct} member(s) falsely failed, {len(fails)} fail "
                    f"events, {suspects} suspect events; healed after loss stopped: {healed}")
        except (RuntimeError, TimeoutError) as e:
            log(f"{tag}: ERROR {e}")
            rows.append({"rate": "error", "error": str(e)})
        finally:
            if cluster:
                cluster.down()
        return rows

    def run_serf(self, n):
        tag = f"serf N={n}"
        root = os.path.join(self.root, f"serf-n{n}")
        os.makedirs(root, exist_ok=True)
        cluster = SerfCluster(self, root, n)
        log(f"{tag}: starting agents")
        try:
            cluster.up()
            time.sleep(self.args.settle)
            log(f"{tag}: quiet window {self.args.quiet_window:g}s")
            usage = measure_usage([(a.proc.pid, lambda a=a: cluster.sink.bytes(a.slot))
                                   for a in cluster.agents], self.args.quiet_window)
            trials, false_fails = [], 0
            for t in range(self.args.serf_trials):
                victim = cluster.agents[1 + t % (n - 1)]
                survivors = [a for a in cluster.agents if a.alive() and a is not victim]
                marks = {a.name: len(a.lines) for a in survivors}
                needle = f"EventMemberFailed: {victim.name} "
                kill_s = time.time()
                victim.proc.kill()
                victim.proc.wait()

                def times():
                    return {a.name: a.first_line(needle) for a in survivors}
                try:
                    wait_until(lambda: all(v is not None for v in times().values()),
                               self.args.serf_detect_timeout, "serf detection")
                except TimeoutError:
                    pass
                per = [None if v is None else (v - kill_s) * 1000 for v in times().values()]
                for a in survivors:
                    with a.lock:
                        false_fails += sum(1 for _, l in a.lines[marks[a.name]:]
                                           if "EventMemberFailed:" in l and needle not in l)
                trials.append(per)
                seen = [d for d in per if d is not None]
                log(f"{tag}: trial {t + 1}/{self.args.serf_trials}: killed {victim.name}; first "
                    f"{fmt_ms(min(seen) if seen else None)} ms, last "
                    f"{fmt_ms(max(seen) if len(seen) == len(per) else None)} ms "
                    f"({len(seen)}/{len(per)} survivors)")
                cluster.replace(victim, t + 1)
                cluster.wait_converged()
                time.sleep(self.args.settle)
            result = summarize_detection(trials)
            result["false_fails"] = false_fails
            result["usage"] = usage
            return result
        except (RuntimeError, TimeoutError) as e:
            log(f"{tag}: ERROR {e}")
            return {"error": str(e)}
        finally:
            cluster.down()

    def run(self):
        a = self.args
        started = time.monotonic()
        self.machine_before = machine_line(self.root)
        log(self.machine_before)
        configs = [(p, s) for p in a.protocols.split(",") for s in (True, False)]
        detection, plain = {}, {}
        for n in (a.sizes if "detect" in a.parts else []):
            for protocol, suspicion in configs:
                detection[(n, protocol, suspicion)] = self.run_raind_config(n, protocol, suspicion)
                if n in a.plain_sizes:  # the same right after, in plain text
                    plain[(n, protocol, suspicion)] = self.run_raind_config(n, protocol,
                                                                            suspicion, True)

        serf = {}
        serf_note = None
        if a.no_serf or "serf" not in a.parts:
            serf_note = "serf: skipped (--no-serf or --parts)"
        elif shutil.which("serf") is None:
            serf_note = "serf not installed: skipped"
        else:
            for n in a.sizes:
                serf[n] = self.run_serf(n)
        if serf_note:
            log(serf_note)

        drop = {}
        for protocol, suspicion in (a.drop_configs if "drop" in a.parts else []):
            drop[(protocol, suspicion)] = self.run_drop(a.drop_size, protocol, suspicion,
                                                        a.drop_rates, a.drop_window)

        self.report(detection, plain, serf, serf_note, drop, time.monotonic() - started)

    def report(self, detection, plain, serf, serf_note, drop, elapsed_s):
        a = self.args
        on_off = lambda s: "on" if s else "off"
        print_run_header("Membership", f"{elapsed_s / 60:.1f} min", " ".join(sys.argv),
                         self.machine_before)

        rows, errors = [], []
        blank = [""] * 9
        runs = [(k, r, "") for k, r in detection.items()]
        runs += [(k, r, ", plain text") for k, r in plain.items()]
        for (n, protocol, suspicion), r, kind in runs:
            name = f"raind {protocol}{kind}"
            if "error" in r:
                rows.append([n, name, on_off(suspicion), "error"] + blank)
                errors.append(f"error, N={n} {name} suspicion {on_off(suspicion)}: {r['error']}")
                continue
            target = TARGET_DETECT_MS[suspicion]
            verdict = "-" if n < 10 else ("met" if r["last_med"] is not None and
                                          r["last_med"] <= target and r["missed"] == 0
                                          else "MISSED")
            rows.append([n, name, on_off(suspicion), r["trials"], fmt_ms(r["first_med"]),
                         fmt_ms(r["first_max"]), fmt_ms(r["last_med"]), fmt_ms(r["last_max"]),
                         r["missed"], r["false_at_start"], r["false_fails"],
                         "%d/%d" % r["unconverged"], f"<= {target} ({verdict})"])
        for n, r in serf.items():
            if "error" in r:
                rows.append([n, "serf (lan)", "on", "error"] + blank)
                errors.append(f"error, serf N={n}: {r['error']}")
                continue
            rows.append([n, "serf (lan)", "on", r["trials"], fmt_ms(r["first_med"]),
                         fmt_ms(r["first_max"]), fmt_ms(r["last_med"]), fmt_ms(r["last_max"]),
                         r["missed"], "-", r["false_fails"], "-", "-"])
        rows.sort(key=lambda r: (r[0], r[1].startswith("serf"), r[1], r[2] == "off"))
        notes = ["first/last: time from SIGKILL until the first/last survivor logged the node "
                 "failed (ms; median and max over trials). missed: survivor-trials not detected "
                 f"within {a.detect_timeout:g}s (raind) / {a.serf_detect_timeout:g}s (serf). "
                 "false at start: fail events before the first kill (all false: while the "
                 "cluster formed, every node joining at once, and in the quiet window). "
                 "false: fail events about a node that was not killed, during the trials. "
                 "unconverged: cluster starts / rejoins after which some node never listed every "
                 "member alive within 30s (each retried; a retried start joins nodes one at a "
                 "time). Target: last survivor's median, "
                 "N = 10..20, default knob values."] + errors
        if serf_note:
            notes.append(serf_note)
        if rows:
            print_table("Failure detection after SIGKILL",
                        ["N", "system", "suspicion", "trials", "first med", "first max",
                         "last med", "last max", "missed", "false at start", "false",
                         "unconverged",
                         "target last med (ms)"],
                        rows, notes)
        elif serf_note:
            print(f"\n{serf_note}")

        if plain:
            rows = []
            for key, p in plain.items():
                c = detection.get(key, {})
                n, protocol, suspicion = key
                cells = []
                for field in ("first_med", "last_med", "last_max"):
                    cv, pv = c.get(field), p.get(field)
                    cells += [fmt_ms(cv), fmt_ms(pv),
                              "-" if cv is None or pv is None else f"{cv - pv:+.0f}"]
                rows.append([n, f"raind {protocol}", on_off(suspicion)] + cells)
            print_table("Detection with CurveZMQ against plain text (ms)",
                        ["N", "system", "suspicion", "first med CURVE", "first med plain",
                         "diff", "last med CURVE", "last med plain", "diff", "last max CURVE",
                         "last max plain", "diff"], rows,
                        ["CURVE: the default cluster (keys made for it, every socket CurveZMQ). "
                         "plain: the same configuration with insecure=true, run right after it "
                         "(--plain-sizes). diff: CURVE - plain."])

        rows = []
        for (n, protocol, suspicion), r, kind in runs:
            if "usage" in r and r["usage"]:
                rows.append(self.usage_row(n, f"raind {protocol}{kind}", on_off(suspicion),
                                           r["usage"]))
        for n, r in serf.items():
            if "usage" in r and r["usage"]:
                rows.append(self.usage_row(n, "serf (lan)", "on", r["usage"]))
        rows.sort(key=lambda r: (r[0], r[1].startswith("serf"), r[1], r[2] == "off"))
        if rows:
            print_table(f"Traffic and CPU per node (quiet cluster, {a.quiet_window:g}s window)",
                        ["N", "system", "suspicion", "sent B/s mean", "sent B/s max",
                         "recv B/s mean", "CPU % mean", "CPU % max",
                         f"target sent <= {TARGET_BYTES_PER_S} B/s"],
                        rows,
                        ["bytes: membership datagram payload counted by the daemon (raind: rainctl "
                         "stats; serf: memberlist.udp/tcp counters via statsd); CPU: utime+stime "
                         "of the process / wall time (100% = one core)."])

        for (protocol, suspicion), rs in drop.items():
            rows, errs = [], []
            for r in rs:
                if "error" in r:
                    rows.append(["error", "", "", "", "", "", "", ""])
                    errs.append(f"error: {r['error']}")
                    continue
                target = "-"
                if r["rate"] == TARGET_FALSE_FAIL_DROP and suspicion:
                    target = "0 (" + ("met" if r["distinct"] == 0 else "MISSED") + ")"
                rows.append([f"{r['rate']}%", f"{r['window_s']:.0f}", r["suspects"], r["events"],
                             r["distinct"], f"{r['per_hour']:.0f}", r["healed"], target])
            print_table(f"False failures under loss (N={a.drop_size}, {protocol}, suspicion "
                        f"{on_off(suspicion)}, no kills)",
                        ["drop", "window s", "suspect events", "fail events", "nodes failed",
                         "nodes failed / hour (extrapolated)", "healed", "target"],
                        rows,
                        ["drop: % of membership datagrams each node drops on receipt (rainctl "
                         "drop). fail events: all observers; nodes failed: distinct member ids "
                         "declared failed (a falsely failed node rejoins under a new id). Per "
                         "hour = nodes failed x 3600 / window, extrapolated from one window. "
                         "healed: once drop is back to 0, every node lists every running node "
                         "alive again within 30s (if not, the next rate starts a fresh cluster)."]
                        + errs)

    @staticmethod
    def usage_row(n, system, suspicion, usage):
        sent = [u[0] for u in usage]
        recv = [u[1] for u in usage]
        cpu = [u[2] for u in usage]
        verdict = "met" if max(sent) <= TARGET_BYTES_PER_S else "MISSED"
        return [n, system, suspicion, f"{statistics.mean(sent):.0f}", f"{max(sent):.0f}",
                f"{statistics.mean(recv):.0f}", f"{statistics.mean(cpu):.2f}",
                f"{max(cpu):.2f}", verdict]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="build dir holding daemon/raind, ctl/rainctl")
    p.add_argument("--quick", action="store_true",
                   help="N=5,10, 3 trials, short windows (~3 min)")
    p.add_argument("--sizes", help="cluster sizes, comma-separated (default 5,10,20)")
    p.add_argument("--trials", type=int, help="kills per configuration (default 10)")
    p.add_argument("--serf-trials", type=int,
                   help="kills per serf cluster (default: --trials; 2 with --quick)")
    p.add_argument("--drop-rates", default="0,5,10,20", help="drop %% per window")
    p.add_argument("--drop-window", type=float, help="seconds per drop rate (default 60)")
    p.add_argument("--drop-size", type=int, default=10, help="cluster size of the drop test")
    p.add_argument("--drop-configs", default="ping:on",
                   help="PROTOCOL:SUSPICION list for the drop test (default ping:on; none: skip)")
    p.add_argument("--quiet-window", type=float, help="seconds of the traffic/CPU window")
    p.add_argument("--detect-timeout", type=float, default=20.0)
    p.add_argument("--serf-detect-timeout", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds to let join gossip drain after convergence")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra raind setting for every cluster, repeatable")
    p.add_argument("--protocols", default="ping,gossip", help="raind protocols to measure")
    p.add_argument("--plain-sizes", default="10",
                   help="sizes at which each raind configuration also runs in plain text "
                        "(insecure=true) beside CurveZMQ (default 10; none: skip)")
    p.add_argument("--no-serf", action="store_true", help="skip the serf comparison")
    p.add_argument("--parts", default="detect,serf,drop",
                   help="which parts to run (default detect,serf,drop)")
    p.add_argument("--keep", action="store_true", help="keep the data dirs (logs)")
    a = p.parse_args()
    a.sizes = [int(x) for x in (a.sizes or ("5,10" if a.quick else "5,10,20")).split(",")]
    if any(n < 2 for n in a.sizes):
        p.error("--sizes: every size must be at least 2")
    try:
        a.plain_sizes = ([] if a.plain_sizes == "none"
                         else [int(x) for x in a.plain_sizes.split(",")])
    except ValueError:
        p.error(f"--plain-sizes: want sizes like 10 or 10,20 (or none), got '{a.plain_sizes}'")
    a.parts = set(a.parts.split(","))
    if not a.parts <= {"detect", "serf", "drop"}:
        p.error("--parts: want a list of detect, serf, drop")
    a.trials = a.trials or (3 if a.quick else 10)
    a.serf_trials = a.serf_trials or (2 if a.quick else a.trials)
    a.drop_window = a.drop_window or (8.0 if a.quick else 60.0)
    a.quiet_window = a.quiet_window or (2.0 if a.quick else 10.0)
    a.drop_rates = [int(x) if float(x).is_integer() else float(x)
                    for x in a.drop_rates.split(",")]
    configs = []
    for c in ([] if a.drop_configs == "none" else a.drop_configs.split(",")):
        proto, _, sus = c.partition(":")
        if proto not in ("ping", "gossip") or sus not in ("on", "off"):
            p.error(f"--drop-configs: want ping|gossip:on|off, got '{c}'")
        configs.append((proto, sus == "on"))
    a.drop_configs = configs
    return a


def main():
    args = parse_args()
    bench = Bench(args)
    # SIGTERM/SIGINT: unwind through cleanup so no daemon is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
