"""A headless Chromium driven over the DevTools protocol through a pipe (--remote-debugging-pipe:
the browser reads commands on fd 3 and writes answers on fd 4, NUL-terminated JSON), so the
console's browser test needs nothing beyond Debian's `chromium` and python3. One page; evaluate
JavaScript in it, wait for a condition, take screenshots. The browser runs in a process group of
its own, killed with it when the driver closes; it gets SIGKILL if the driver dies first.

    with Browser() as b:
        b.open("http://127.0.0.1:8080/")
        b.wait("document.querySelectorAll('[data-member-id]').length == 3", timeout_s=10)
        b.screenshot("/tmp/console.png")
"""
import base64
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time


PR_SET_PDEATHSIG = 1


class BrowserError(Exception):
    pass


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, width=1400, height=1000, binary=None):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("no chromium on PATH (Debian: apt-get install chromium)")
        self.width, self.height = width, height
        self.proc = None
        self.profile = None
        self.next_id = 0
        self.session = None
        self.buffer = b""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self.profile = tempfile.mkdtemp(prefix="rs-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def child_fds():
            # Above every fd in use first, so that neither dup2 overwrites the other's source.
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.setpgid(0, 0)
            # SIGKILL when the driver dies (a test killed at its timeout leaves no browser).
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

        args = [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=child_fds,
                                     close_fds=False)  # os.pipe fds are not inherited; 3, 4 are
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.wfd, self.rfd = to_browser_w, from_browser_r
        os.set_blocking(self.rfd, True)

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        for fd in (getattr(self, "wfd", None), getattr(self, "rfd", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    # --- the protocol ------------------------------------------------------------------------

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed its pipe (it exited)")
            self.buffer += chunk
        msg, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout_s=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    # --- what tests use ----------------------------------------------------------------------

    def open(self, url):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False})
        self.call("Page.navigate", {"url": url})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    def wait(self, expression, timeout_s, interval_s=0.1):
        """Seconds until `expression` is truthy in the page; BrowserError at the timeout."""
        start = time.monotonic()
        last = None
        while True:
            try:
                last = self.eval(expression)
                if last:
                    return time.monotonic() - start
            except BrowserError as e:
                last = str(e)
            if time.monotonic() - start > timeout_s:
                raise BrowserError(f"not true within {timeout_s:g} s: {expression} "
                                   f"(last: {last!r:.200})")
            time.sleep(interval_s)

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
