"""Prometheus for the tests: promtool's linter, and a real Prometheus
server that scrapes loopback targets and answers PromQL.

    problems = promtool_check(text)     # [] when promtool has nothing to say
    with Prometheus(tmp_path, ["127.0.0.1:8025"]) as prom:
        prom.wait_value("postern_sessions_opened_total", 3)
        prom.query('rate(postern_replies_total[1m])')   # the API's result

promtool_check runs `promtool check metrics` (Debian's package
`prometheus`) on an exposition: it reports parse errors and also lints
names the way Prometheus's conventions ask (a counter ends in _total,
units are base units such as _seconds and _bytes, snake_case, HELP
present).  promtool_check_config does the same for a configuration file.

Prometheus runs /usr/bin/prometheus in a directory of its own (config,
TSDB, log) on 127.0.0.1 and a free port, scraping every target every
second, with no remote read or write and nothing on other addresses.
start() returns once /-/ready answers 200 (about a second); every wait
polls with a deadline, and a wait that times out says what the targets
page says (health, last scrape error).  stop() ends the server and
removes its directory.
"""
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from postern_test import DEFAULT_TIMEOUT, free_port, poll

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# Loopback only: never through a proxy the environment may name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def have_promtool():
    return os.access(PROMTOOL, os.X_OK)


def have_prometheus():
    return os.access(PROMETHEUS, os.X_OK)


def _promtool(args, stdin=None):
    """promtool's lines (stdout and stderr) and exit status."""
    r = subprocess.run([PROMTOOL, *args], input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    return [ln.strip() for ln in out.splitlines() if ln.strip()], \
        r.returncode


def promtool_check(text):
    """The problems `promtool check metrics` finds in text (str or
    bytes), one line each, e.g. 'x counter metrics should have "_total"
    suffix'; [] when it accepts the text without a word.  promtool exits
    3 for lint problems and 1 for a text it cannot parse; either way the
    lines are returned (a silent failure becomes one line naming the
    exit status)."""
    if isinstance(text, str):
        text = text.encode()
    lines, rc = _promtool(["check", "metrics"], text)
    if rc == 0:
        return lines
    return lines or [f"promtool check metrics exited {rc}"]


def promtool_check_config(path):
    """[] when `promtool check config PATH` passes, else its lines."""
    lines, rc = _promtool(["check", "config", str(path)])
    return [] if rc == 0 else lines or [f"promtool check config exited {rc}"]


def _yaml_str(s):
    """s as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(str(s))


class PrometheusError(AssertionError):
    pass


class Prometheus:
    """A private Prometheus scraping targets ("host:port" strings) at
    metrics_path every scrape_interval."""

    def __init__(self, tmp_path=None, targets=(), metrics_path="/metrics",
                 scrape_interval="1s", job="postern"):
        self.dir = tempfile.mkdtemp(prefix="prometheus-",
                                    dir=str(tmp_path) if tmp_path else None)
        self.targets = list(targets)
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval
        self.job = job
        self.port = None
        self.proc = None
        self.config = os.path.join(self.dir, "prometheus.yml")
        self.log = os.path.join(self.dir, "prometheus.log")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self):
        targets = ", ".join(_yaml_str(t) for t in self.targets)
        iv = _yaml_str(self.scrape_interval)
        with open(self.config, "w") as f:
            f.write("global:\n"
                    f"  scrape_interval: {iv}\n"
                    f"  scrape_timeout: {iv}\n"
                    f"  evaluation_interval: {iv}\n"
                    "scrape_configs:\n"
                    f"  - job_name: {_yaml_str(self.job)}\n"
                    f"    metrics_path: {_yaml_str(self.metrics_path)}\n"
                    "    static_configs:\n"
                    f"      - targets: [{targets}]\n")

    def start(self, timeout=DEFAULT_TIMEOUT):
        """Starts the server and waits for /-/ready.  A port that was
        free a moment ago may be taken meanwhile; then it tries another."""
        self._write_config()
        for _ in range(3):
            self.port = free_port()
            if self._start_once(timeout):
                return self
        raise PrometheusError("prometheus did not start:\n" + self.log_tail())

    def _start_once(self, timeout):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}",
                 f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h",
                 "--log.level=info"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.dir)
        exited = []

        def ready():
            if self.proc.poll() is not None:
                exited.append(self.proc.returncode)
                return True
            try:
                with _OPENER.open(self.url + "/-/ready", timeout=1) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False
        poll(ready, timeout=timeout, interval=0.05,
             what="prometheus /-/ready")
        if exited:
            self.proc = None
            return False
        return True

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, lines=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _api(self, path, params=None):
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with _OPENER.open(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            # A bad query answers 400 with the same JSON envelope.
            body = json.load(e)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}"
                                  f": {body.get('error')}")
        return body["data"]

    def query(self, promql):
        """The instant query's result at the current time, as the HTTP API
        gives it: for a vector a list of {"metric": {labels},
        "value": [ts, "v"]}, for a scalar [ts, "v"]."""
        return self._api("/api/v1/query", {"query": promql})["result"]

    def value(self, promql):
        """The query's single value as a float, None when the vector is
        empty; more than one series is an error."""
        res = self.query(promql)
        if res and not isinstance(res[0], dict):  # scalar or string
            return float(res[1])
        if not res:
            return None
        if len(res) > 1:
            raise PrometheusError(f"{promql}: {len(res)} series, wanted 1: "
                                  f"{[r['metric'] for r in res]}")
        return float(res[0]["value"][1])

    def targets_health(self):
        """[(scrapeUrl, health, lastError)] of the active targets."""
        return [(t.get("scrapeUrl"), t.get("health"), t.get("lastError"))
                for t in self._api("/api/v1/targets")["activeTargets"]]

    def wait_value(self, promql, expected, timeout=DEFAULT_TIMEOUT):
        """Polls until value(promql) equals expected (a number: equal
        within 1e-9 relative; a callable: it returns true for the value)
        and returns the value."""
        if callable(expected):
            ok = expected
        else:
            def ok(v):
                return v is not None and math.isclose(
                    v, expected, rel_tol=1e-9, abs_tol=1e-12)
        last = [None]
        deadline = time.monotonic() + timeout
        while True:
            v = last[0] = self.value(promql)
            if ok(v):
                return v
            if time.monotonic() > deadline:
                raise PrometheusError(
                    f"{promql}: {last[0]!r} after {timeout}s, wanted "
                    f"{expected!r}; targets: {self.targets_health()}")
            time.sleep(0.1)
