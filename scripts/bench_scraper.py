"""What watching a cluster costs (issue 16): a thread that, once a second, does what a
Prometheus server scraping every node and an open web console do: GET /metrics on every node,
and on the first node the console's JSON (list_mem, hydfs.lsall, job.list, and job.status and
job.tasks of every running job). Requests go to 127.0.0.1 (loopback: reads need no token)."""
import json
import threading
import time
import urllib.error
import urllib.request


class Scraper:
    def __init__(self, http_ports, interval_s=1.0, jobs=()):
        self.ports = list(http_ports)  # the console's node first
        self.interval_s = interval_s
        self.jobs = list(jobs)  # also asked for each round, running or not
        self.requests = 0
        self.errors = 0
        self.bytes = 0
        self.rounds = 0
        self.slowest_round_s = 0.0
        self.cpu_s = 0.0  # this thread's own CPU (the client side of the scrapes)
        self._stop = threading.Event()
        self._thread = None

    def _get(self, port, path):
        self.requests += 1
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                body = r.read()
        except (urllib.error.URLError, OSError):
            self.errors += 1
            return None
        self.bytes += len(body)
        return body

    def _round(self):
        for port in self.ports:
            self._get(port, "/metrics")
        console = self.ports[0]
        for cmd in ("list_mem", "hydfs.lsall"):
            self._get(console, f"/api/v1/cmd/{cmd}")
        body = self._get(console, "/api/v1/cmd/job.list")
        try:
            jobs = json.loads(body)["jobs"] if body else []
        except (ValueError, KeyError, TypeError):
            jobs = []
        shown = [j["job"] for j in jobs if j.get("state") in ("starting", "running")]
        for job in shown + [j for j in self.jobs if j not in shown]:
            self._get(console, f"/api/v1/cmd/job.status?job={job}")
            self._get(console, f"/api/v1/cmd/job.tasks?job={job}")

    def _loop(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            c0 = time.thread_time()
            self._round()
            self.cpu_s += time.thread_time() - c0
            self.rounds += 1
            took = time.monotonic() - t0
            self.slowest_round_s = max(self.slowest_round_s, took)
            self._stop.wait(max(0.0, self.interval_s - took))

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        return {"rounds": self.rounds, "requests": self.requests, "errors": self.errors,
                "bytes": self.bytes, "slowest_round_s": self.slowest_round_s,
                "cpu_s": self.cpu_s}
