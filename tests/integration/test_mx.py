"""MX routing (docs/design/outbound.md, route `mx:domain`; RFC 5321 5.1,
RFC 7505) against a real DNS server - dnsmasq from Debian on a loopback
port - and scripted peers on 127.0.0.2 and 127.0.0.3 sharing one port
(`[delivery] mx_port`):

    mx1.test     MX 20 b.mx1.test (127.0.0.3), MX 10 a.mx1.test (127.0.0.2)
                 (dnsmasq answers the 20 first: the order must come from
                 the preference, not from the answer)
    mx3.test     MX 5 ghost.mx3.test (no address), MX 10 b.mx1.test
    aonly.test   no MX, A 127.0.0.2 (the implicit MX)
    mx4.test     MX 10 multi.mx4.test (127.0.0.2 and 127.0.0.3)
    nullmx.test  MX 0 .  (null MX: bounce at once, 5.1.10)
    missing.test NXDOMAIN (bounce at once, 5.1.2)
"""
import shutil
import socket
import subprocess

import pytest

from postern_test import free_port, poll
from smtp_peer import (ALICE, Dsn, Peer, message, outbound_server,
                       queue_list, read_message, submit)

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if shutil.which("/usr/sbin/dnsmasq") else None)
pytestmark = pytest.mark.skipif(DNSMASQ is None,
                                reason="dnsmasq is not installed")

T = 40.0
RECORDS = [
    "--mx-host=mx1.test,b.mx1.test,20",
    "--mx-host=mx1.test,a.mx1.test,10",
    "--host-record=a.mx1.test,127.0.0.2",
    "--host-record=b.mx1.test,127.0.0.3",
    "--mx-host=mx3.test,ghost.mx3.test,5",
    "--mx-host=mx3.test,b.mx1.test,10",
    "--host-record=aonly.test,127.0.0.2",
    "--mx-host=nullmx.test,.,0",
    "--mx-host=mx4.test,multi.mx4.test,10",
    "--host-record=multi.mx4.test,127.0.0.2",
    "--host-record=multi.mx4.test,127.0.0.3",
]


@pytest.fixture
def dnsmasq(tmp_path):
    port = free_port()
    p = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", f"--port={port}",
         "--listen-address=127.0.0.1", "--bind-interfaces",
         f"--pid-file={tmp_path}/dnsmasq.pid", "--local=/test/", *RECORDS],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        assert p.poll() is None, "dnsmasq exited"
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    poll(up, what="dnsmasq to listen")
    yield port
    p.terminate()
    p.wait(10)


def common_port():
    """A port free on both 127.0.0.2 and 127.0.0.3."""
    for _ in range(20):
        port = free_port("127.0.0.2")
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.3", port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on both 127.0.0.2 and 127.0.0.3")


@pytest.fixture
def mx(make_server, dnsmasq):
    """mx(hosts=("127.0.0.2", "127.0.0.3"), **peer_kw) -> (srv, peers):
    peers (a dict by address) listen on the hosts named, on one port;
    an address left out refuses connections."""
    started = []

    def make(hosts=("127.0.0.2", "127.0.0.3"), scripts=None, **peer_kw):
        port = common_port()
        peers = {}
        for h in hosts:
            kw = dict(peer_kw)
            kw.update((scripts or {}).get(h, {}))
            peers[h] = Peer(host=h, port=port, **kw).start()
            started.append(peers[h])
        srv = outbound_server(
            make_server, delivery={"mx_port": port},
            dns={"servers": f"127.0.0.1:{dnsmasq}", "timeout": 3})
        return srv, peers
    yield make
    for p in started:
        p.stop()
    for p in started:
        p.assert_clean()


def wait_queue_empty(srv):
    poll(lambda: queue_list(srv) == {}, T, interval=0.2,
         what="the queue to be empty")


def test_the_lowest_preference_is_tried_first(mx):
    srv, peers = mx()
    submit(srv, ["bob@mx1.test"], message("pref", to="bob@mx1.test"))
    [t] = peers["127.0.0.2"].wait_messages(1, T)
    assert t.delivered_to == ["bob@mx1.test"]
    assert b"Subject: pref" in t.data
    wait_queue_empty(srv)
    assert peers["127.0.0.3"].connections == []


def test_the_next_mx_gets_it_when_the_first_refuses_connections(mx):
    srv, peers = mx(hosts=("127.0.0.3",))      # 127.0.0.2 refuses
    submit(srv, ["bob@mx1.test"], message("fallback", to="bob@mx1.test"))
    [t] = peers["127.0.0.3"].wait_messages(1, T)
    assert t.delivered_to == ["bob@mx1.test"]
    wait_queue_empty(srv)
    assert srv.message_files(ALICE) == []


def test_a_421_greeting_from_the_first_mx_moves_on_to_the_next(mx):
    srv, peers = mx(scripts={"127.0.0.2": {
        "script": {"greeting": ["421 4.3.2 a.mx1.test busy"]}}})
    submit(srv, ["bob@mx1.test"], message("next", to="bob@mx1.test"))
    [t] = peers["127.0.0.3"].wait_messages(1, T)
    assert t.delivered_to == ["bob@mx1.test"]
    assert len(peers["127.0.0.2"].connections) >= 1
    assert peers["127.0.0.2"].messages == []


def test_an_mx_host_without_an_address_is_skipped(mx):
    srv, peers = mx()
    submit(srv, ["bob@mx3.test"], message("ghost", to="bob@mx3.test"))
    [t] = peers["127.0.0.3"].wait_messages(1, T)
    assert t.delivered_to == ["bob@mx3.test"]
    wait_queue_empty(srv)
    assert peers["127.0.0.2"].connections == []


def test_a_domain_without_mx_uses_its_address(mx):
    srv, peers = mx()
    submit(srv, ["bob@aonly.test"], message("implicit", to="bob@aonly.test"))
    [t] = peers["127.0.0.2"].wait_messages(1, T)
    assert t.delivered_to == ["bob@aonly.test"]
    wait_queue_empty(srv)


@pytest.mark.parametrize("domain,status", [("nullmx.test", "5.1.10"),
                                           ("missing.test", "5.1.2")])
def test_null_mx_and_nxdomain_bounce_at_once(mx, domain, status):
    srv, peers = mx()
    rcpt = f"bob@{domain}"
    submit(srv, [rcpt], message("nowhere", to=rcpt))
    [f] = srv.wait_messages(ALICE, 1, T)
    d = Dsn(read_message(f))
    r = d.recipient(rcpt)
    assert r["action"] == "failed", r
    assert r["status"] == status, r
    assert b"Subject: nowhere" in d.original_text()
    wait_queue_empty(srv)
    assert all(p.connections == [] for p in peers.values())


def test_one_bounce_for_the_bad_domain_the_good_one_is_delivered(mx):
    srv, peers = mx()
    submit(srv, ["bob@missing.test", "bob@mx1.test"],
           message("half", to="bob@mx1.test"))
    [t] = peers["127.0.0.2"].wait_messages(1, T)
    assert t.delivered_to == ["bob@mx1.test"]
    [f] = srv.wait_messages(ALICE, 1, T)
    assert Dsn(read_message(f)).final_recipients() == ["bob@missing.test"]


def wait_deferred(srv, rcpt):
    def ok():
        for m in queue_list(srv).values():
            r = m["rcpts"].get(rcpt)
            if r and r["state"] == "deferred" and r["attempts"] >= 1:
                return r
        return None
    return poll(ok, T, interval=0.2, what=f"{rcpt} deferred")


def test_every_mx_refusing_defers_and_a_flush_delivers_later(mx):
    from smtp_peer import queue
    srv, peers = mx(hosts=())                  # nobody listens
    submit(srv, ["bob@mx1.test"], message("later", to="bob@mx1.test"))
    r = wait_deferred(srv, "bob@mx1.test")
    assert r["last"], r                        # says why
    assert srv.message_files(ALICE) == []      # deferred, not bounced
    port = int(srv.sections["delivery"]["mx_port"])
    p = Peer(host="127.0.0.3", port=port).start()
    try:
        queue(srv, "flush", check=0)
        [t] = p.wait_messages(1, T)
        assert t.delivered_to == ["bob@mx1.test"]
    finally:
        p.stop()


def test_a_dns_timeout_defers_and_does_not_bounce(make_server):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))               # takes queries, answers none
    try:
        srv = outbound_server(
            make_server, delivery={"retry": "600"},
            dns={"servers": f"127.0.0.1:{sink.getsockname()[1]}",
                 "timeout": 1})
        submit(srv, ["bob@mx1.test"], message("no dns", to="bob@mx1.test"))
        wait_deferred(srv, "bob@mx1.test")
        assert srv.message_files(ALICE) == []
    finally:
        sink.close()


def test_the_next_address_of_one_mx_host_is_tried(mx):
    srv, peers = mx(hosts=("127.0.0.3",))      # 127.0.0.2 refuses
    submit(srv, ["bob@mx4.test"], message("second a", to="bob@mx4.test"))
    [t] = peers["127.0.0.3"].wait_messages(1, T)
    assert t.delivered_to == ["bob@mx4.test"]
    wait_queue_empty(srv)
