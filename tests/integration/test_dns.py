"""The sender-domain check (REPLY-CODES.md row 451, [dns]
check_sender_domain) against a real DNS server, dnsmasq on loopback, and
against a UDP socket that swallows every query: a domain that exists
passes, one that does not (or has a null MX, RFC 7505) gets 550 5.1.8, a
lookup that times out gets 451 4.4.3 and a log line naming DNS.
"""
import shutil
import socket
import subprocess
import time

import pytest

from postern_test import free_port, poll

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if shutil.which("/usr/sbin/dnsmasq") else None)


@pytest.fixture
def dnsmasq(tmp_path):
    port = free_port()
    p = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", f"--port={port}",
         "--listen-address=127.0.0.1", "--bind-interfaces",
         f"--pid-file={tmp_path}/dnsmasq.pid", "--local=/test/",
         "--mx-host=good.test,mail.good.test,10",
         "--host-record=mail.good.test,127.0.0.2",
         "--host-record=aonly.test,127.0.0.3",
         "--mx-host=nullmx.test,.,0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    poll(up, what="dnsmasq to listen")
    yield port
    p.terminate()
    p.wait(10)


def mail(srv, sender):
    with srv.client() as c:
        c.ehlo()
        return c.cmd(f"MAIL FROM:<{sender}>")


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq is not installed")
def test_sender_domain_verdicts_from_a_real_dns_server(make_server,
                                                       dnsmasq):
    srv = make_server(dns={"servers": f"127.0.0.1:{dnsmasq}", "timeout": 3,
                           "check_sender_domain": "true"})
    assert mail(srv, "a@good.test").code == 250
    assert mail(srv, "a@aonly.test").code == 250  # implicit MX
    r = mail(srv, "a@nxdomain.test")
    assert r.last == ("550 5.1.8 Sender address rejected: domain "
                      "nxdomain.test does not accept mail")
    r = mail(srv, "a@nullmx.test")
    assert (r.code, r.enh) == (550, "5.1.8"), r
    assert mail(srv, "").code == 250  # the null sender is never looked up


def test_dns_timeout_gives_451_4_4_3(make_server):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # takes queries, answers none
    port = sink.getsockname()[1]
    try:
        srv = make_server(dns={"servers": f"127.0.0.1:{port}",
                               "timeout": 1,
                               "check_sender_domain": "true"})
        t0 = time.monotonic()
        r = mail(srv, "a@good.test")
        assert r.last == ("451 4.4.3 Local error in processing: DNS lookup "
                          "of good.test failed; try again later")
        assert time.monotonic() - t0 < 5
        srv.wait_log(r"ev=local_error .*part=dns domain=good.test")
        # The session goes on: a later transaction works without DNS.
        with srv.client() as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<>").code == 250
    finally:
        sink.close()
