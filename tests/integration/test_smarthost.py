"""Sending through a smart host (issue 17 items 1 and 2): postern logs in
to an aiosmtpd relay with AUTH PLAIN or LOGIN over STARTTLS, or over
implicit TLS (smtps:), verifies the relay's certificate with
`[delivery] tls = verify` against a CA made in the test, and defers with
the reason in `postern queue show` when the CA, the name, the password or
the relay's AUTH is wrong - never sending the password or the mail in
clear text.
"""
import os
import subprocess

import pytest

from dnszone import DnsZone
from smarthost import SmartHost
from smtp_peer import POSTERN, outbound_server, queue, submit
from testca import TestCA

T = 40.0
RCPT = "carol@far.test"
USER, PASSWORD = "relay@example.test", "s3cret"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("other-ca"), name="another CA")


def password_file(srv, password=PASSWORD, mode=0o600):
    p = srv.dir / "relay-password"
    p.write_text(password + "\n")
    os.chmod(p, mode)
    return p


def sender(make_server, relayhost, ca_path=None, tls="verify",
           password=PASSWORD, user=USER, dns=None, mode=0o600, start=True):
    """A postern that sends everything to relayhost, logging in as user."""
    dl = {"tls": tls}
    if ca_path is not None:
        dl["tls_ca"] = str(ca_path)
    extra = {}
    if dns is not None:
        extra["dns"] = {"servers": f"127.0.0.1:{dns.port}", "timeout": 2}
    srv = outbound_server(make_server, relayhost=relayhost, delivery=dl,
                          start=False, **extra)
    if user is not None:
        pw = password_file(srv, password, mode)
        srv.sections["delivery"]["relay_user"] = user
        srv.sections["delivery"]["relay_password_file"] = str(pw)
    if start:
        from smtp_peer import start_with_submission
        start_with_submission(srv)
    return srv


def check(srv):
    """`postern check` of srv's config."""
    return subprocess.run([POSTERN, "check", "-c", str(srv.conf)],
                          capture_output=True, text=True, timeout=60)


def queue_show(srv, qid):
    return queue(srv, "show", qid, check=0).stdout


def wait_deferred(srv, qid, text):
    """Polls `postern queue show` until the last reply holds text."""
    from postern_test import poll
    poll(lambda: text in queue_show(srv, qid), T,
         what=f"{text!r} in queue show")
    return queue_show(srv, qid)


@pytest.mark.parametrize("mechs", [("PLAIN", "LOGIN"), ("LOGIN",)])
def test_starttls_login_and_verified_certificate(make_server, ca, mechs):
    cert, key = ca.issue(["127.0.0.1"])
    with SmartHost(cert, key, mechanisms=mechs) as sh:
        srv = sender(make_server, f"127.0.0.1:{sh.port}", ca.cert_path)
        submit(srv, RCPT)
        sh.wait_messages(1, T)
        m = sh.messages[0]
        assert (m.login, m.is_tls) == (USER, True)
        assert m.rcpt_tos == [RCPT]
        want = "PLAIN" if "PLAIN" in mechs else "LOGIN"
        assert [a.mechanism for a in sh.auth_attempts] == [want]
        srv.wait_log(r"ev=relay_auth .*user=relay@example\.test")
        srv.wait_log(r"ev=sent .*rcpt=carol@far\.test")
        assert PASSWORD not in srv.log()


def test_implicit_tls_relayhost_by_name(make_server, ca, tmp_path):
    cert, key = ca.issue(["smtp.relay.test"])
    with SmartHost(cert, key, mode="implicit") as sh, \
            DnsZone(tmp_path, a={"smtp.relay.test": "127.0.0.1"}) as dns:
        srv = sender(make_server, f"smtps:smtp.relay.test:{sh.port}",
                     ca.cert_path, dns=dns)
        submit(srv, RCPT)
        sh.wait_messages(1, T)
        assert (sh.messages[0].login, sh.messages[0].is_tls) == (USER, True)


def test_wrong_ca_defers_with_4_7_5_and_sends_nothing(make_server, ca,
                                                        other_ca):
    cert, key = other_ca.issue(["127.0.0.1"])
    with SmartHost(cert, key) as sh:
        srv = sender(make_server, f"127.0.0.1:{sh.port}", ca.cert_path)
        qid = submit(srv, RCPT)
        shown = wait_deferred(srv, qid, "4.7.5")
        assert "did not verify" in shown and "certificate" in shown
        assert sh.messages == [] and sh.auth_attempts == []
        srv.wait_log(r"ev=tls_verify_failed .*reason=")


def test_wrong_name_defers_with_4_7_5(make_server, ca, tmp_path):
    cert, key = ca.issue(["not-the-relay.test"])
    with SmartHost(cert, key) as sh, \
            DnsZone(tmp_path, a={"smtp.relay.test": "127.0.0.1"}) as dns:
        srv = sender(make_server, f"smtp.relay.test:{sh.port}",
                     ca.cert_path, dns=dns)
        qid = submit(srv, RCPT)
        shown = wait_deferred(srv, qid, "4.7.5")
        assert "smtp.relay.test" in shown
        assert "hostname mismatch" in shown
        assert sh.messages == [] and sh.auth_attempts == []


def test_wrong_password_defers_and_names_the_configuration(make_server, ca):
    cert, key = ca.issue(["127.0.0.1"])
    with SmartHost(cert, key) as sh:
        srv = sender(make_server, f"127.0.0.1:{sh.port}", ca.cert_path,
                     password="n0t-Th3-Pa55")
        qid = submit(srv, RCPT)
        shown = wait_deferred(srv, qid, "535")
        assert "relay_password_file" in shown
        srv.wait_log(r"ev=relay_auth_failed .*reply=\"?535")
        # Deferred, never bounced: the recipient is still queued.
        assert RCPT in queue(srv, "list", check=0).stdout
        assert sh.messages == []
        assert "n0t-Th3-Pa55" not in srv.log()


def test_relay_without_auth_defers(make_server, ca):
    cert, key = ca.issue(["127.0.0.1"])
    with SmartHost(cert, key, auth=False) as sh:
        srv = sender(make_server, f"127.0.0.1:{sh.port}", ca.cert_path)
        qid = submit(srv, RCPT)
        shown = wait_deferred(srv, qid, "offers no AUTH")
        assert "4.7.0" in shown
        assert sh.messages == []


def test_password_is_never_sent_in_clear(make_server):
    """A relay offering AUTH without TLS: with relay_user set, TLS is
    required, so nothing is sent."""
    with SmartHost(None, None, mode="plain", auth=True) as sh:
        srv = sender(make_server, f"127.0.0.1:{sh.port}",
                     tls="opportunistic")
        qid = submit(srv, RCPT)
        shown = wait_deferred(srv, qid, "4.7.5")
        assert "STARTTLS" in shown
        assert sh.auth_attempts == [] and sh.messages == []


def test_password_file_readable_by_others_stops_the_start(make_server):
    srv = sender(make_server, "127.0.0.1:2", mode=0o644, start=False)
    srv.write_config()
    p = check(srv)
    assert p.returncode != 0
    assert "relay_password_file" in p.stderr and "chmod 600" in p.stderr


def test_relay_user_without_relayhost_is_a_config_error(make_server):
    srv = make_server(start=False, delivery={
        "relay_user": USER, "relay_password_file": "pw"})
    srv.write_config()
    p = check(srv)
    assert p.returncode != 0 and "relayhost" in p.stderr
