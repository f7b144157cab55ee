"""Mail that leaves: DKIM signatures on mail from our domains, judged by
dkimpy (Debian python3-dkim) with the key `postern dkim keygen` made and
the record it printed, served by a real DNS server, and by OpenDKIM; and SRS on forwards to
another host, whose bounce comes back through postern to the original
sender.  REPLY-CODES.md: 550 5.1.1 for an SRS address that does not
verify.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

from dkim_judges import dnsfunc_for, verify_with_opendkim  # noqa: E402
from dnszone import DnsZone  # noqa: E402
from postern_test import POSTERN  # noqa: E402
from smtp_peer import Peer, message, outbound_server, submit  # noqa: E402

dkim = pytest.importorskip("dkim")

SECRET = "a-test-secret-of-enough-length"


@pytest.fixture
def peers():
    started = []

    def make(**kw):
        p = Peer(**kw).start()
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()


def keygen(conf, domain, selector, kind):
    r = subprocess.run([POSTERN, "dkim", "keygen", domain, "--selector",
                        selector, "--type", kind, "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout


def record_of(printed):
    """The TXT value from keygen's zone-file lines ("..." "...")."""
    return "".join(re.findall(r'"([^"]*)"', printed))


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_submitted_mail_is_signed_and_dkimpy_verifies_it(
        make_server, peers, tmp_path, kind):
    peer = peers()
    srv = outbound_server(make_server, routes={"remote.test": peer.address},
                          start=False, dkim={"keys": "dkim"})
    (srv.dir / "dkim").mkdir()
    srv.write_config()
    printed = keygen(srv.conf, "example.test", "s1", kind)
    key = srv.dir / "dkim" / "example.test.s1.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "s1._domainkey.example.test" in printed
    txt = record_of(printed)
    assert txt.startswith("v=DKIM1;") and f"k={kind}" in txt
    with DnsZone(tmp_path, txt={"s1._domainkey.example.test": [txt]}) as z:
        from smtp_peer import start_with_submission
        start_with_submission(srv)
        msg = message(subject="signed", to="bob@remote.test",
                      extra="List-Unsubscribe: <https://example.test/u>\r\n"
                            "List-Unsubscribe-Post: List-Unsubscribe="
                            "One-Click\r\n")
        submit(srv, "bob@remote.test", msg)
        t = peer.wait_messages(1)[0]
        data = t.data
        assert data.startswith(b"DKIM-Signature:"), data[:200]
        sig = data.split(b"\r\n\r\n", 1)[0]
        h = re.search(rb"\bh=([^;]*)", sig.replace(b"\r\n\t", b"")).group(1)
        names = [n.strip().lower() for n in h.replace(b" ", b"").split(b":")]
        assert b"list-unsubscribe" in names
        assert b"list-unsubscribe-post" in names
        assert names.count(b"from") == 2  # over-signed
        assert dkim.verify(data, dnsfunc=dnsfunc_for(z.port)), data[:600]
        # OpenDKIM, the second judge
        assert verify_with_opendkim(
            data, {"s1._domainkey.example.test": txt},
            tmp_path / "opendkim") == ["pass"]
        # and what the receiver can change breaks it
        assert not dkim.verify(data.replace(b"Hello.", b"Hello!"),
                               dnsfunc=dnsfunc_for(z.port))


def test_keygen_refuses_to_overwrite_and_names_the_fix(make_server):
    srv = make_server(start=False, dkim={"keys": "dkim"})
    (srv.dir / "dkim").mkdir()
    srv.write_config()
    keygen(srv.conf, "example.test", "s1", "ed25519")
    r = subprocess.run([POSTERN, "dkim", "keygen", "example.test",
                        "--selector", "s1", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "example.test.s1.key" in r.stderr and "selector" in r.stderr


def test_mail_from_outside_is_not_signed(make_server, peers, tmp_path):
    peer = peers()
    srv = outbound_server(make_server, routes={"remote.test": peer.address},
                          start=False, dkim={"keys": "dkim"},
                          srs={"secret": SECRET},
                          forwards=None)
    (srv.dir / "dkim").mkdir()
    (srv.dir / "forwards").write_text(
        "fwd@example.test friend@remote.test forward\n")
    srv.write_config()
    keygen(srv.conf, "example.test", "s1", "ed25519")
    srv.start()
    with srv.client() as c:
        c.ehlo()
        # a From: of ours, from outside, forwarded: not ours to sign
        r = c.mail_txn("x@outside.test", ["fwd@example.test"],
                       message(sender="alice@example.test",
                               to="fwd@example.test"))
        assert r.code == 250, r
    t = peer.wait_messages(1)[0]
    assert b"DKIM-Signature" not in t.data.split(b"\r\n\r\n")[0]


def test_a_forward_is_sent_with_an_srs_sender_and_its_bounce_comes_back(
        make_server, peers):
    friend = peers()     # remote.test: where the forward goes
    origin = peers()     # outside.test: the original sender's host
    srv = outbound_server(make_server,
                          routes={"remote.test": friend.address,
                                  "outside.test": origin.address},
                          start=False, srs={"secret": SECRET})
    (srv.dir / "forwards").write_text(
        "fwd@example.test friend@remote.test forward\n")
    from smtp_peer import start_with_submission
    start_with_submission(srv)
    with srv.client() as c:
        c.ehlo()
        r = c.mail_txn("sender@outside.test", ["fwd@example.test"],
                       message(sender="sender@outside.test",
                               to="fwd@example.test"))
        assert r.code == 250, r
    t = friend.wait_messages(1)[0]
    assert t.accepted_rcpts == ["friend@remote.test"]
    srs = t.mail_from
    assert re.fullmatch(r"SRS0=[^=]{4}=[A-Z2-7]{2}=outside\.test=sender"
                        r"@example\.test", srs, re.I), srs
    # the forward target bounces: the DSN goes to the SRS address
    with srv.client() as c:
        c.ehlo("peer.test")
        assert c.cmd("MAIL FROM:<>").code == 250
        assert c.cmd(f"RCPT TO:<{srs}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"From: MAILER-DAEMON@remote.test\r\nSubject: bounce\r\n"
               b"\r\nundeliverable\r\n.\r\n")
        assert c.reply().code == 250
    back = origin.wait_messages(1)[0]
    assert back.accepted_rcpts == ["sender@outside.test"]
    assert back.mail_from == ""


def test_a_forged_or_expired_srs_address_gets_550_5_1_1(make_server):
    srv = make_server(srs={"secret": SECRET})
    with srv.client() as c:
        c.ehlo("peer.test")
        assert c.cmd("MAIL FROM:<>").code == 250
        r = c.cmd("RCPT TO:<SRS0=abcd=AB=outside.test=sender@example.test>")
        assert r.last.startswith("550 5.1.1"), r
        assert "SRS" in r.last
