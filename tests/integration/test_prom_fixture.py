"""The Prometheus fixture itself (tests/pylib/prometheus.py), before the
/metrics tests lean on it, and the examples under contrib/.

A tiny http.server serves a fixed exposition in postern's names, so no
postern is needed: a real Prometheus scrapes it, PromQL sees the counter,
a label value with every escape read back as written, a quantile over the
histogram buckets, and a changed value on a later scrape.  promtool
accepts the good text and names each problem in a bad one.  The contrib
Prometheus config passes `promtool check config`, and the Grafana
dashboard is JSON whose queries Prometheus parses and which use only the
metric names postern emits.
"""
import http.server
import json
import re
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

import prometheus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# The names postern emits (issue 19); the dashboard may use no other.
POSTERN_METRICS = {
    "postern_sessions_opened_total", "postern_sessions_open",
    "postern_replies_total", "postern_messages_accepted_total",
    "postern_messages_delivered_total", "postern_messages_deferred_total",
    "postern_messages_bounced_total", "postern_queue_recipients",
    "postern_queue_destination_recipients", "postern_spool_free_bytes",
    "postern_spool_reserve_bytes", "postern_greylist_hits_total",
    "postern_tls_sessions_total", "postern_spool_fsync_seconds",
    "postern_data_to_reply_seconds", "postern_delivery_seconds",
    "postern_uptime_seconds", "postern_build_info",
}

GOOD = """\
# HELP postern_sessions_opened_total SMTP sessions opened.
# TYPE postern_sessions_opened_total counter
postern_sessions_opened_total {opened}
# HELP postern_replies_total Replies sent.
# TYPE postern_replies_total counter
postern_replies_total{{code="250",enhanced="2.0.0",reason="ok"}} 12
postern_replies_total{{code="450",enhanced="4.2.0",reason="greylisted"}} 3
# HELP postern_queue_destination_recipients Queued recipients by destination.
# TYPE postern_queue_destination_recipients gauge
postern_queue_destination_recipients{{destination="a\\"b\\\\c\\n"}} 1
# HELP postern_spool_fsync_seconds Group-commit fsync time.
# TYPE postern_spool_fsync_seconds histogram
postern_spool_fsync_seconds_bucket{{le="0.001"}} 1
postern_spool_fsync_seconds_bucket{{le="0.01"}} 3
postern_spool_fsync_seconds_bucket{{le="0.1"}} 3
postern_spool_fsync_seconds_bucket{{le="+Inf"}} 4
postern_spool_fsync_seconds_sum 2.0166015625
postern_spool_fsync_seconds_count 4
"""

BAD = """\
# HELP postern_sessions_opened Sessions opened, without _total.
# TYPE postern_sessions_opened counter
postern_sessions_opened 1
# HELP postern_fsync_milliseconds Not a base unit.
# TYPE postern_fsync_milliseconds gauge
postern_fsync_milliseconds 2
# TYPE postern_queueSize gauge
postern_queueSize 3
"""

pytestmark = pytest.mark.skipif(not prometheus.have_promtool(),
                                reason="promtool (Debian prometheus) missing")


class _Exposition(http.server.ThreadingHTTPServer):
    """Serves self.body at /metrics; 404 elsewhere."""
    daemon_threads = True
    body = b""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type",
                         "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def exposition():
    srv = _Exposition(("127.0.0.1", 0), _Handler)
    srv.body = GOOD.format(opened=7).encode()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_promtool_accepts_good_text():
    assert prometheus.promtool_check(GOOD.format(opened=7)) == []


def test_promtool_names_each_problem():
    problems = "\n".join(prometheus.promtool_check(BAD))
    assert 'postern_sessions_opened counter metrics should have "_total"' \
        in problems
    assert "postern_fsync_milliseconds" in problems
    assert '"seconds"' in problems
    assert "postern_queueSize" in problems and "snake_case" in problems


def test_promtool_reports_unparsable_text():
    bad = b'# TYPE x_total counter\nx_total{a="\xff"} 1\n'
    problems = prometheus.promtool_check(bad)
    assert problems and "parsing error" in problems[-1]


@pytest.mark.skipif(not prometheus.have_prometheus(),
                    reason="prometheus missing")
def test_prometheus_scrapes_and_answers(tmp_path, exposition):
    target = f"127.0.0.1:{exposition.server_address[1]}"
    with prometheus.Prometheus(tmp_path, [target]) as prom:
        prom.wait_value(f'up{{instance="{target}"}}', 1)
        prom.wait_value("postern_sessions_opened_total", 7)

        grey = prom.query('postern_replies_total{code="450"}')
        assert [r["metric"]["reason"] for r in grey] == ["greylisted"]
        dest = prom.query("postern_queue_destination_recipients")
        assert dest[0]["metric"]["destination"] == 'a"b\\c\n'
        # Rank 2 of 4 falls halfway into the (0.001, 0.01] bucket.
        assert prom.value("histogram_quantile(0.5, "
                          "postern_spool_fsync_seconds_bucket)") == \
            pytest.approx(0.0055)
        assert prom.value("postern_build_info") is None

        exposition.body = GOOD.format(opened=9).encode()
        prom.wait_value("postern_sessions_opened_total", 9)
        with pytest.raises(prometheus.PrometheusError):
            prom.query("rate(")

        # Every query of the contrib dashboard parses (a bad one raises).
        for expr in _exprs(_dashboard()["panels"]):
            prom.query(expr.replace("$instance", ".*"))
    assert not Path(prom.dir).exists()


def test_contrib_prometheus_config_is_valid():
    path = REPO / "contrib" / "prometheus" / "prometheus.yml"
    assert prometheus.promtool_check_config(path) == []
    assert "127.0.0.1:8025" in path.read_text()


def _exprs(panels):
    for p in panels:
        yield from _exprs(p.get("panels", []))
        for t in p.get("targets", []):
            yield t["expr"]


def _dashboard():
    path = REPO / "contrib" / "grafana" / "postern-dashboard.json"
    return json.loads(path.read_text())


def test_contrib_dashboard_uses_postern_names():
    dash = _dashboard()
    assert dash["schemaVersion"] >= 39
    exprs = list(_exprs(dash["panels"]))
    assert exprs
    used = set()
    for e in exprs:
        for name in re.findall(r"\bpostern_[a-z_]+", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            used.add(base if base in POSTERN_METRICS else name)
    assert used <= POSTERN_METRICS, used - POSTERN_METRICS
    for h in ("postern_spool_fsync_seconds", "postern_data_to_reply_seconds",
              "postern_delivery_seconds"):
        assert any("histogram_quantile(0.99" in e and h + "_bucket" in e
                   for e in exprs), h
