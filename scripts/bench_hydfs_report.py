"""bench_hydfs.py's figures: units, targets and the report (its tables, targets and notes)."""

import os
import statistics
import sys

from bench_cluster import print_run_header, print_table

MIB = 1 << 20
GIB = 1 << 30

# Targets from the issue, printed beside the measurements.
TARGET_GET_OF_RAW = 0.50       # get of 1 GiB, fraction of the acked raw stream rate
TARGET_CREATE_OF_RAW = 0.25    # create of 1 GiB (3 replicas)
TARGET_RSS_MIB = 200           # every raind's peak while 1 GiB moves
TARGET_REREPLICATE_S = 10.0    # 1 GiB back on 3 replicas after a SIGKILL, from the kill
TARGET_WARM_GET_MS = 1.0       # cached 1 MiB get, client-observed median
TARGET_GET_CURVE_OF_PLAIN = 0.7  # 1 GiB get with CurveZMQ, fraction of the plain-text get


def label(size):
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    if size >= MIB:
        return f"{size // MIB} MiB"
    return f"{size // 1024} KiB"


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, digits=0, unit=""):
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def rate(size, seconds):
    return size / MIB / seconds if seconds else None


def print_report(bench, elapsed_s):
    a = bench.args
    r = bench.results
    print_run_header("HyDFS", f"{elapsed_s / 60:.1f} min, {a.nodes} nodes", " ".join(sys.argv),
                     bench.machine_before)
    curves = a.curves
    main = curves[-1]
    both = len(curves) == 2
    refs = {c: r["reference"][c]["acked"]["rate"] for c in curves}
    ref = refs[main]
    targets = []
    name = {"off": "plain", "on": "CURVE"}
    print(f"main cluster: CURVE {main} (latency, merge, re-replication and RSS ran on it)")

    # One column of MiB/s per cluster, then (with both) CURVE / plain. "of raw" compares
    # each figure with the raw stream of its own kind: a CURVE get with the CURVE stream.
    head = ["operation", "size", "runs"] + [f"{name[c]} MiB/s" for c in curves]
    head += (["CURVE / plain"] if both else []) + [f"node MiB/s ({name[main]})",
                                                   f"of raw ({name[main]})", "target"]
    rows = []
    for c in curves:
        for mode in ("acked", "plain"):
            x = r["reference"][c][mode]
            cells = [fmt(r["reference"][k][mode]["rate"]) if k == c else "-" for k in curves]
            rows.append([f"raw stream {name[c]}, {mode if mode == 'acked' else 'bare'}"
                         + (" (reference)" if mode == "acked" else ""), label(a.big),
                         x["runs"]] + cells + (["-"] if both else [])
                        + ["-", f"{100 * x['rate'] / refs[c]:.0f}%", "-"])
    if both:
        for mode in ("acked", "plain"):
            ratio = (r["reference"]["on"][mode]["rate"] / r["reference"]["off"][mode]["rate"])
            rows[2 + (0 if mode == "acked" else 1)][3 + len(curves)] = f"{ratio:.2f}"
    for what, v in r["disk"].items():
        rows.append([f"disk copy, {what}", label(a.big), 1, fmt(v)]
                    + ["-"] * (len(curves) - 1) + (["-"] if both else [])
                    + ["-", f"{100 * v / ref:.0f}%", "-"])
    tp = r.get("throughput", {})
    for size in a.sizes if main in tp else []:
        for op in ("create", "get", "get to /dev/null", "append"):
            rates = {}
            for c in curves:
                if c in tp:
                    rates[c] = rate(size, med([s for s, _ in tp[c][size][op]]))
            res = tp[main][size]
            mibs = rates[main]
            node = med([n for _, n in res[op] if n is not None])
            target = []
            if size == a.big and op in ("get", "get to /dev/null", "create"):
                frac = TARGET_CREATE_OF_RAW if op == "create" else TARGET_GET_OF_RAW
                ok = mibs >= frac * ref
                target.append(f">= {frac * 100:.0f}% of raw ({'PASS' if ok else 'MISS'})")
                targets.append([f"{op} {label(size)} >= {frac * 100:.0f}% of the raw stream "
                                f"({name[main]})",
                                f"{mibs:.0f} MiB/s = {100 * mibs / ref:.0f}% of {ref:.0f}",
                                "PASS" if ok else "MISS"])
            ratio = None
            if both and "off" in rates and rates["off"]:
                ratio = rates["on"] / rates["off"]  # one run each, minutes apart: see pair
            rows.append([f"hydfs {op}", label(size), len(res[op])]
                        + [fmt(rates.get(c)) for c in curves]
                        + ([fmt(ratio, 2)] if both else [])
                        + [fmt(rate(size, node)), f"{100 * mibs / ref:.0f}%",
                           "; ".join(target) or "-"])
    print_table("Throughput (MiB/s, median of runs)", head, rows,
                ["MiB/s: size / wall time of the whole rainctl process (or of the copy). node "
                 "MiB/s: size / the node's elapsed_us. raw: the acked ZeroMQ stream of the "
                 "same kind (plain or CURVE) measured in this run. The plain cluster runs "
                 "with insecure=true and rainctl --insecure; the CURVE cluster is the default "
                 "(keys made for it). create/append go through node1; get through a node "
                 "holding no replica, into a local file (compared with the source "
                 "afterwards); 'get to /dev/null' repeats it through another such node with "
                 "rainctl writing to a discarded stdout (no local file). Append adds SIZE "
                 "bytes to a 1-byte file. sync before each step. The get target is shown "
                 "twice: into a local file (bounded by this machine's page-cache write rate, "
                 "see 'dd bs=1M') and as the transfer alone (stdout discarded)."])

    if "pair" in r:
        p = r["pair"]
        rows = []
        for op in ("create", "get", "get to /dev/null"):
            plain = rate(a.big, med(p["off"][op]))
            curve = rate(a.big, med(p["on"][op]))
            ratio = curve / plain
            target = "-"
            if op != "create":
                ok = ratio >= TARGET_GET_CURVE_OF_PLAIN
                target = f">= {TARGET_GET_CURVE_OF_PLAIN:g} ({'PASS' if ok else 'MISS'})"
                targets.append([f"{op} {label(a.big)}: CURVE >= "
                                f"{TARGET_GET_CURVE_OF_PLAIN:g} x plain (in turns)",
                                f"{curve:.0f} / {plain:.0f} MiB/s = {ratio:.2f}",
                                "PASS" if ok else "MISS"])
            runs = lambda c: " ".join(f"{rate(a.big, s):.0f}" for s in p[c][op])
            rows.append([f"hydfs {op}", label(a.big), len(p["on"][op]), fmt(plain),
                         fmt(curve), f"{ratio:.2f}", runs("off"), runs("on"), target])
        print_table(f"CurveZMQ against plain text, in turns ({label(a.big)}, MiB/s, median "
                    "of runs)",
                    ["operation", "size", "runs", "plain", "CURVE", "CURVE / plain",
                     "plain runs", "CURVE runs", "target"], rows,
                    [f"Two clusters of {a.pair_nodes} nodes, one plain text (insecure=true) "
                     "and one CurveZMQ, up at once. Each run creates a fresh file in both "
                     "and gets it through a node holding no replica into a local file "
                     "(compared with the source), then through another to /dev/null; the "
                     "clusters take turns, the order swapping every run."])
        cores = os.cpu_count() or 1
        rows = []
        for op in ("get", "get to /dev/null"):
            if not p["on"].get(op + " cpu"):
                continue
            plain_cpu, curve_cpu = med(p["off"][op + " cpu"]), med(p["on"][op + " cpu"])
            plain_s = med(p["off"][op])
            # No get can take less wall time than its CPU time spread over every core.
            bound = plain_s / max(plain_s, curve_cpu / cores)
            rows.append([f"hydfs {op}", label(a.big), f"{plain_cpu:.2f}", f"{curve_cpu:.2f}",
                         f"{curve_cpu - plain_cpu:.2f}", f"{plain_s:.2f}",
                         f"{curve_cpu / cores:.2f}", f"{bound:.2f}"])
        if rows:
            print_table("What the gets cost in CPU (core-seconds, median of the runs above)",
                        ["operation", "size", "plain CPU", "CURVE CPU", "CURVE - plain",
                         "plain wall s", f"CURVE CPU / {cores} cores", "best CURVE / plain"],
                        rows,
                        ["CPU: utime + stime of every raind of the cluster and of rainctl during "
                         "the get. A get cannot take less wall time than its CPU time spread "
                         f"over all {cores} cores of this machine, so 'best CURVE / plain' = "
                         "plain wall s / (CURVE CPU / cores) is the highest ratio any schedule "
                         "could reach here, with replicas and reader on one host. Between "
                         "hosts, the replica's encryption and the reader's decryption each run "
                         "on their own host's cores."])

    if getattr(bench, "rss", None):
        steps = list(bench.rss)
        step_rss = {}
        for x in r.get("rerep", []):
            if x["files"] == 1:
                step_rss[f"repair {label(x['bytes'])}"] = x["rss"]
        steps += list(step_rss)
        all_rss = dict(bench.rss, **step_rss)
        rows = []
        peak = 0
        for n in bench.cluster.nodes:
            cells = []
            for st in steps:
                v = all_rss[st].get(n.name)
                cells.append(fmt(v / 1024 if v else None, 1))
                peak = max(peak, v or 0)
            rows.append([n.name] + cells)
        rows.append(["rainctl"] + [fmt(bench.ctl_rss.get(st.split()[0], 0) / 1024, 1)
                                   if st.split()[0] in bench.ctl_rss else "-" for st in steps])
        ok = peak / 1024 < TARGET_RSS_MIB
        targets.append([f"raind peak RSS < {TARGET_RSS_MIB} MiB while 1 GiB moves",
                        f"max {peak / 1024:.1f} MiB", "PASS" if ok else "MISS"])
        print_table("Peak RSS during the 1 GiB steps (MiB, VmHWM reset before each step)",
                    ["process"] + steps, rows,
                    ["Each column: VmHWM of every raind, reset (clear_refs) just before the "
                     "step; '-' = the node was not running. repair: from the SIGKILL until "
                     "the file was back on 3 replicas. rainctl: its peak from wait4()."
                     + ("" if bench.rss_reset_works else
                        " WARNING: clear_refs failed; values are peaks since start.")])

    if "latency" in r:
        lat = r["latency"]
        rows = []
        for key in ("cold", "warm"):
            s = lat[key]
            for who in ("client_us", "node_us"):
                q = s[who]
                rows.append([key, "client (Download call)" if who == "client_us"
                             else "node (elapsed_us)", s["n"], s["cached"],
                             f"{q['min'] / 1000:.2f}", f"{q['p50'] / 1000:.2f}",
                             f"{q['p90'] / 1000:.2f}", f"{q['max'] / 1000:.2f}"])
        # The node is the HyDFS client: its elapsed_us is the get. The client column adds
        # what a one-shot rainctl connection costs (bind, connect, handshakes) per call.
        warm = lat["warm"]["node_us"]["p50"] / 1000
        ok = warm < TARGET_WARM_GET_MS
        targets.append([f"cached {label(lat['size'])} get < {TARGET_WARM_GET_MS:g} ms "
                        "(node median)",
                        f"{warm:.2f} ms (through a new rainctl connection: "
                        f"{lat['warm']['client_us']['p50'] / 1000:.2f} ms)",
                        "PASS" if ok else "MISS"])
        print_table(f"Get latency of a {label(lat['size'])} file (ms), through "
                    f"{lat['reader']}",
                    ["cache", "measured by", "gets", "served from cache", "min", "median",
                     "p90", "max"], rows,
                    ["cold: a fresh file each time (created through node1 just before). warm: "
                     "one file got again and again. client: rs::ctl::Download in one process "
                     "(control request, data-plane sockets, chunks, CRC); node: elapsed_us "
                     "in the reply."])

    if r.get("rerep"):
        rows = []
        for x in r["rerep"]:
            target = "-"
            if x["files"] == 1:
                ok = x["done_s"] is not None and x["done_s"] <= TARGET_REREPLICATE_S
                target = f"<= {TARGET_REREPLICATE_S:g} s ({'PASS' if ok else 'MISS'})"
                targets.append([f"re-replication of {label(x['bytes'])} <= "
                                f"{TARGET_REREPLICATE_S:g} s after SIGKILL",
                                fmt(x["done_s"], 2, " s"), "PASS" if ok else "MISS"])
            rows.append([x["tag"], x["victim"], fmt(x["detect_first"]), fmt(x["detect_last"]),
                         fmt(x["repair_start"]), fmt(x["done_s"], 2),
                         label(x["moved"]) if x["moved"] else "0",
                         "yes" if x["verified"] else "NO", target])
        print_table("Re-replication after one SIGKILL",
                    ["files", "killed", "detected first ms", "detected last ms",
                     "first repair_start ms", "all back on 3 s", "moved (repair_done)",
                     "verified", "target"], rows,
                    ["All times from the SIGKILL. detected: survivors' `event=fail` log lines "
                     "(default membership: ping + suspicion). all back on 3: every file held, "
                     "with its version, by the 3 nodes the survivors' ring places it on "
                     "(polled via liststore). verified: `rainctl ls` agrees afterwards "
                     "(a sample of up to 10 files). Timeout: "
                     f"{a.repair_timeout:g} s."])

    if r.get("merge"):
        rows = [[label(x["size"]), x["k"], x["runs"], fmt(x["append_ms"]), fmt(x["client_ms"]),
                 fmt(x["node_ms"]), f"{x['changed']:g}", label(x["moved"]) if x["moved"]
                 else "0"] for x in r["merge"]]
        print_table("Merge after concurrent appends (ms, median of runs)",
                    ["append size", "concurrent appends", "runs", "multiappend ms",
                     "merge ms (client)", "merge ms (node)", "replicas changed",
                     "moved bytes"], rows,
                    ["k appends of one size at once through k different nodes (rainctl "
                     "multiappend), then `rainctl merge` through node1 right away. client: "
                     "the rainctl process; node: elapsed_ms of the reply."])

    print_table("Targets", ["target", "measured", "verdict"], targets,
                bench.notes + ["Noise: every process shares the machine's cores with the "
                              "daemons; rerun on a quiet machine before quoting figures."])
