#!/usr/bin/env bash
# Runs every meson test in BUILD and ends with one line "N passed, N failed" (what CI reads).
# Exit status: 0 when nothing failed.
set -uo pipefail
build=${1:-build}
shift || true
meson test -C "$build" --print-errorlogs "$@"
status=$?
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = skipped = 0
failures = []  # (name, result, the Catch2 failure lines of its output)
try:
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            r = t.get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
                failures.append((t.get("name", "?"), r, t.get("stdout") or ""))
except FileNotFoundError:
    failed = 1
# A failed test's assertions, again, at the very end: a CI log is often read from its tail,
# and a failing cluster test prints its nodes' logs after them.
if failures:
    print("\nWhat failed (each test's first failed assertions; its whole output is above):")
    for name, result, out in failures:
        print(f"== {name}: {result}")
        lines = out.splitlines()
        shown = 0
        for i, l in enumerate(lines):
            if re.search(r"(FAILED|failed with|FATAL ERROR|was thrown)", l) and shown < 3:
                context = lines[max(0, i - 7):i + 8]
                print("\n".join("   " + c[:300] for c in context))
                shown += 1
        if shown == 0:
            print("   (no assertion failed: " + (lines[-1][:300] if lines else "no output") + ")")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
