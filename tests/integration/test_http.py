"""[http] listen (issue 19): /metrics in the Prometheus text format,
checked by promtool and scraped by a real Prometheus whose PromQL answer
matches the traffic the test sent; the status page in headless
Chromium with the queue and a provoked 4xx explained; counters that
survive a reload; a login and TLS anywhere but loopback.
"""
import base64
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from postern_test import POSTERN, USERS, free_port, poll
from prometheus import Prometheus, promtool_check
from smtp_peer import outbound_server, submit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
T = 30.0
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
HELD = "carla@example.test"


def http_server(make_server, **kw):
    port = free_port()
    srv = make_server(users=USERS + [f"{HELD} hold"],
                      http={"listen": f"127.0.0.1:{port}"}, **kw)
    srv.http = f"http://127.0.0.1:{port}"
    return srv


def get(url, headers=None, context=None):
    req = urllib.request.Request(url, headers=headers or {})
    if context is not None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=context))
    else:
        opener = OPENER
    with opener.open(req, timeout=T) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def send_local(srv, n):
    """n messages to alice, and one RCPT to the held user (450 4.2.1)."""
    with srv.client() as c:
        c.ehlo()
        for i in range(n):
            r = c.mail_txn("s@sender.test", ["alice@example.test"],
                           f"Subject: m{i}\r\n\r\nbody {i}\r\n")
            assert r.code == 250, r
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd(f"RCPT TO:<{HELD}>").code == 450
        c.cmd("RSET")


def metric(text, name, **labels):
    """The value of one sample of the exposition text."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def test_metrics_pass_promtool_and_count_the_traffic(make_server):
    srv = http_server(make_server)
    send_local(srv, 3)
    poll(lambda: metric(get(srv.http + "/metrics")[2],
                        "postern_messages_delivered_total",
                        via="local") == 3, T, what="3 local deliveries")
    status, ctype, text = get(srv.http + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert promtool_check(text) == [], text
    assert metric(text, "postern_messages_accepted_total") == 3
    assert metric(text, "postern_replies_total", code="450",
                  enhanced="4.2.1") == 1
    assert metric(text, "postern_sessions_opened_total") >= 1
    assert metric(text, "postern_spool_fsync_seconds_count") >= 1
    assert metric(text, "postern_data_to_reply_seconds_count") == 3
    assert metric(text, "postern_spool_free_bytes") > 0
    # The buckets are cumulative and end in +Inf = _count.
    inf = metric(text, "postern_data_to_reply_seconds_bucket", le="+Inf")
    assert inf == metric(text, "postern_data_to_reply_seconds_count")


def test_prometheus_scrapes_it_and_promql_agrees(make_server, tmp_path):
    srv = http_server(make_server)
    send_local(srv, 4)
    with Prometheus(tmp_path, [srv.http[len("http://"):]]) as prom:
        prom.wait_value('sum(postern_messages_delivered_total'
                        '{via="local"})', 4, timeout=T)
        prom.wait_value('postern_replies_total{code="450"}', 1, timeout=T)


def test_counters_survive_a_reload(make_server):
    srv = http_server(make_server)
    send_local(srv, 2)
    before = get(srv.http + "/metrics")[2]
    p = subprocess.run([POSTERN, "ctl", "reload", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == "ok reloaded\n"
    after = get(srv.http + "/metrics")[2]
    for name in ("postern_messages_accepted_total",
                 "postern_sessions_opened_total"):
        assert metric(after, name) >= metric(before, name) > 0, name


def test_status_page_and_api_explain_the_4xx_and_the_queue(make_server,
                                                           tmp_path):
    peer_port = free_port()   # nobody listens: the mail waits, deferred
    srv = outbound_server(
        make_server, routes={"remote.test": f"127.0.0.1:{peer_port}"},
        start=False, users=USERS + [f"{HELD} hold",
                                    f"alice@example.test: "
                                    f"{_alice_hash()}"])
    port = free_port()
    srv.sections["http"] = {"listen": f"127.0.0.1:{port}"}
    from smtp_peer import start_with_submission
    start_with_submission(srv)
    base = f"http://127.0.0.1:{port}"
    submit(srv, "bob@remote.test")
    send_local(srv, 1)
    poll(lambda: json.loads(get(base + "/api/queue")[2]).get("queue")
         or json.loads(get(base + "/api/queue")[2]).get("dests"), T,
         what="the queue in /api/queue")
    replies = json.loads(get(base + "/api/replies",
                             {"Accept-Language": "fr-CA, fr;q=0.9"})[2])
    assert "450" in json.dumps(replies)
    status, ctype, page = get(base + "/", {"Accept-Language": "fr"})
    assert status == 200 and ctype.startswith("text/html")
    assert 'lang="fr"' in page and "<svg" in page
    assert "route:127.0.0.1" in page           # the queue's destination
    assert "4.2.1" in page                      # the provoked 4xx
    if CHROMIUM is None:
        pytest.fail("headless chromium is needed for the status page test")
    shot = tmp_path / "status.png"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox",
                        "--disable-gpu", f"--screenshot={shot}",
                        "--window-size=1200,1500", base + "/"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and shot.stat().st_size > 10000
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox",
                        "--disable-gpu", "--dump-dom", base + "/"],
                       capture_output=True, timeout=120, text=True)
    dom = r.stdout
    assert "route:127.0.0.1" in dom and "4.2.1" in dom and "<svg" in dom
    keep = Path(__file__).resolve().parents[2] / "build" / "status-page.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(shot, keep)   # `make` keeps the last one: docs/ has a copy


def _alice_hash():
    from smtp_peer import _alice_hash as h
    return h()


def test_other_addresses_need_tls_and_a_login(make_server):
    port = free_port()
    users = ["postmaster@example.test",
             f"alice@example.test: {_alice_hash()}"]
    srv = make_server(users=users, http={"listen": f"0.0.0.0:{port}"},
                      start=False)
    from postern_test import make_cert
    make_cert(srv.dir)
    srv.sections["tls"] = {"cert": str(srv.dir / "cert.pem"),
                           "key": str(srv.dir / "key.pem")}
    srv.write_config()
    srv.start()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{port}/metrics"
    with pytest.raises(urllib.error.HTTPError) as e:
        get(url, context=ctx)
    assert e.value.code == 401
    good = base64.b64encode(b"alice@example.test:alice-password").decode()
    status, _, text = get(url, {"Authorization": f"Basic {good}"}, ctx)
    assert status == 200 and "postern_uptime_seconds" in text
    bad = base64.b64encode(b"alice@example.test:nope").decode()
    with pytest.raises(urllib.error.HTTPError) as e:
        get(url, {"Authorization": f"Basic {bad}"}, ctx)
    assert e.value.code == 401


def test_a_non_loopback_address_without_tls_is_a_config_error(
        make_server):
    srv = make_server(http={"listen": f"0.0.0.0:{free_port()}"},
                      start=False)
    srv.write_config()
    p = subprocess.run([POSTERN, "check", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "[http] listen" in p.stderr
