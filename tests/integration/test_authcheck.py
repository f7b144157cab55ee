"""SPF, DKIM and DMARC of mail received on the smtp port ([auth]), end to
end: a real postern, its DNS from a real server (dnsmasq) with the
senders' records, messages signed by an independent implementation
(dkimpy, Debian python3-dkim).  REPLY-CODES.md rows 451 4.4.3, 550 5.7.26,
550 5.7.23.

The test client connects from 127.0.0.1, so that is the address SPF
judges: good.test allows it, bank.test and signed.test do not.
"""
import base64
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

from dnszone import DnsZone  # noqa: E402
from postern_test import POSTERN, split_message  # noqa: E402

dkim = pytest.importorskip("dkim")

pytestmark = pytest.mark.xdist_group("authcheck")

ALICE = "alice@example.test"


def rsa_key(d, name="rsa.pem"):
    """A 2048-bit RSA key (PEM) and its public key as DKIM's p=."""
    path = d / name
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(path)], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return path.read_bytes(), base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    d = tmp_path_factory.mktemp("authdns")
    pem, pub = rsa_key(d)
    z = DnsZone(d, txt={
        # SPF allows only 192.0.2.0/24: a forger on loopback fails
        "bank.test": ["v=spf1 ip4:192.0.2.0/24 -all"],
        "_dmarc.bank.test": ["v=DMARC1; p=reject"],
        # allows the test client
        "good.test": ["v=spf1 ip4:127.0.0.1 -all"],
        "_dmarc.good.test": ["v=DMARC1; p=reject"],
        "shop.test": ["v=spf1 -all"],
        "_dmarc.shop.test": ["v=DMARC1; p=quarantine"],
        # SPF fails, a DKIM signature of the From: domain passes
        "signed.test": ["v=spf1 -all"],
        "_dmarc.signed.test": ["v=DMARC1; p=reject"],
        "s1._domainkey.signed.test": [f"v=DKIM1; k=rsa; p={pub}"],
        "nodmarc.test": ["v=spf1 -all"],
    }).start()
    z.pem = pem
    yield z
    z.stop()


def auth_server(make_server, zone, **auth):
    keys = {"spf": "on", "dkim": "on", "dmarc": "on"}
    keys.update(auth)
    return make_server(dns={"servers": f"127.0.0.1:{zone.port}",
                            "timeout": 2},
                       auth=keys)


def msg(sender_header, subject="hello", extra=""):
    return (f"From: <{sender_header}>\r\nTo: <{ALICE}>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@x.test>\r\n"
            f"{extra}\r\nHello.\r\n").encode()


def deliver(srv, sender, body, ehlo="client.test"):
    """One transaction; returns the reply to the final dot."""
    with srv.client() as c:
        c.ehlo(ehlo)
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body + b".\r\n")
        return c.reply()


def stored_header(srv):
    files = srv.wait_messages(ALICE, 1)
    head, _ = split_message(files[-1].read_bytes())
    return head.decode()


def ar_of(head):
    """The Authentication-Results field of a stored header, unfolded."""
    lines = head.splitlines()
    for i, ln in enumerate(lines):
        if ln.lower().startswith("authentication-results:"):
            out = ln
            for cont in lines[i + 1:]:
                if not cont[:1] in (" ", "\t"):
                    break
                out += " " + cont.strip()
            return out
    return None


def test_forged_from_under_p_reject_gets_550_5_7_26_and_nothing_is_stored(
        make_server, zone):
    srv = auth_server(make_server, zone)
    r = deliver(srv, "ceo@bank.test", msg("ceo@bank.test"))
    assert r.code == 550 and r.last.startswith("550 5.7.26"), r
    assert "bank.test" in r.last
    assert srv.total_messages() == 0
    srv.wait_log(r"ev=authchecked .*spf=fail .*dmarc=fail")


def test_aligned_spf_pass_is_accepted_with_the_results_on_top(
        make_server, zone):
    srv = auth_server(make_server, zone)
    r = deliver(srv, "news@good.test", msg("news@good.test"))
    assert r.code == 250, r
    head = stored_header(srv)
    # on top of what came: above our Received: (delivery adds Return-Path
    # and Delivered-To above it)
    assert head.index("\nAuthentication-Results: mx.example.test;") < \
        head.index("\nReceived: "), head
    ar = ar_of(head)
    assert "spf=pass smtp.mailfrom=good.test" in ar, ar
    assert "dkim=none" in ar
    assert "dmarc=pass" in ar and "header.from=good.test" in ar


def test_dkim_aligned_mail_passes_though_spf_fails(make_server, zone):
    srv = auth_server(make_server, zone)
    body = msg("billing@signed.test", subject="invoice")
    sig = dkim.sign(body, b"s1", b"signed.test", zone.pem,
                    include_headers=[b"from", b"to", b"subject"])
    r = deliver(srv, "bounce@signed.test", sig + body)
    assert r.code == 250, r
    ar = ar_of(stored_header(srv))
    assert "spf=fail" in ar, ar
    assert "dkim=pass header.d=signed.test header.s=s1" in ar, ar
    assert "dmarc=pass" in ar, ar


def test_a_tampered_dkim_signature_no_longer_saves_it(make_server, zone):
    srv = auth_server(make_server, zone)
    body = msg("billing@signed.test", subject="invoice")
    sig = dkim.sign(body, b"s1", b"signed.test", zone.pem,
                    include_headers=[b"from", b"to", b"subject"])
    tampered = sig + body.replace(b"Hello.", b"Pay to account 666.")
    r = deliver(srv, "bounce@signed.test", tampered)
    assert r.last.startswith("550 5.7.26"), r
    assert srv.total_messages() == 0


def test_quarantine_is_accepted_with_the_failure_in_the_header(
        make_server, zone):
    srv = auth_server(make_server, zone)
    r = deliver(srv, "x@shop.test", msg("x@shop.test"))
    assert r.code == 250, r
    ar = ar_of(stored_header(srv))
    assert "dmarc=fail" in ar and "p=quarantine" in ar, ar


def test_spf_fail_alone_is_a_header_or_with_reject_a_550_5_7_23(
        make_server, zone):
    srv = auth_server(make_server, zone, dmarc="off")
    r = deliver(srv, "x@nodmarc.test", msg("x@nodmarc.test"))
    assert r.code == 250, r
    ar = ar_of(stored_header(srv))
    assert "spf=fail" in ar and "dmarc=" not in ar, ar
    srv2 = auth_server(make_server, zone, dmarc="off", spf_fail="reject")
    r = deliver(srv2, "x@nodmarc.test", msg("x@nodmarc.test"))
    assert r.last.startswith("550 5.7.23"), r
    assert "nodmarc.test" in r.last
    assert srv2.total_messages() == 0


def test_a_dns_timeout_gives_451_4_4_3_and_nothing_is_stored(
        make_server, zone):
    srv = auth_server(make_server, zone)
    r = deliver(srv, "x@slow.test", msg("x@slow.test"))
    assert r.code == 451 and r.last.startswith("451 4.4.3"), r
    assert "DNS" in r.last
    assert srv.total_messages() == 0
    srv.wait_log(r"ev=local_error .*part=dns check=auth")


def test_our_own_results_from_outside_are_removed_others_kept(
        make_server, zone):
    srv = auth_server(make_server, zone)
    forged = ("Authentication-Results: MX.example.test; spf=pass\r\n"
              "\tsmtp.mailfrom=bank.test; dmarc=pass\r\n"
              "Authentication-Results: other.example; spf=none\r\n")
    r = deliver(srv, "news@good.test", msg("news@good.test", extra=forged))
    assert r.code == 250, r
    head = stored_header(srv)
    assert head.lower().count("authentication-results: mx.example.test") \
        == 1, head
    assert "smtp.mailfrom=bank.test" not in head
    assert "Authentication-Results: other.example; spf=none" in head


def test_lookups_are_cached_for_their_ttl(make_server, zone):
    srv = auth_server(make_server, zone)
    before = len(zone.queries())
    assert deliver(srv, "a@good.test", msg("a@good.test", "one")).code == 250
    first = len(zone.queries()) - before
    assert deliver(srv, "b@good.test", msg("b@good.test", "two")).code == 250
    second = len(zone.queries()) - before - first
    assert first >= 2 and second == 0, (first, second)


def test_auth_check_prints_the_header_and_the_reply(zone, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text("[server]\nhostname = mx.example.test\n"
                    f"[dns]\nservers = 127.0.0.1:{zone.port}\ntimeout = 2\n"
                    "[auth]\nspf = on\ndkim = on\ndmarc = on\n")
    r = subprocess.run([POSTERN, "auth", "check", "--ip", "127.0.0.1",
                        "--helo", "client.test", "--from", "ceo@bank.test",
                        "-c", str(conf)], input=msg("ceo@bank.test"),
                       capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert r.returncode == 0, r
    assert out.startswith("Authentication-Results: mx.example.test;"), out
    assert "spf=fail" in out and "dmarc=fail" in out
    assert "reply: 550 5.7.26" in out, out
