"""MTA-STS on the sending side (issue 17 item 3, RFC 8461): the policy of
sts.test is announced by dnsmasq (`_mta-sts` TXT, MX, the policy host's
address), served over HTTPS by stshttps with a certificate of a CA made
in the test, and the MX host is an aiosmtpd server with STARTTLS.  In
enforce mode only a verified MX host the policy names gets the mail;
testing delivers and counts the failure for the TLS report; a policy is
fetched once and cached until its id changes.
"""
import email
import email.policy
import gzip
import json
import mailbox
import subprocess

import pytest

from dnszone import DnsZone
from postern_test import poll
from smarthost import SmartHost
from smtp_peer import POSTERN, outbound_server, queue, submit
from stshttps import StsServer, policy_text
from testca import TestCA

T = 40.0
RCPT = "dora@sts.test"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


class World:
    """dnsmasq + the policy server + an MX host, and a sending postern."""

    def __init__(self, make_server, tmp_path, ca, mode="enforce",
                 mx_cert_names=("mx.sts.test",), policy_mx=("mx.sts.test",),
                 txt_id="20261204", rua=None):
        self.ca = ca
        self.sts = StsServer(ca, ["sts.test"])
        self.sts.policies["sts.test"] = policy_text(mode=mode,
                                                    mx=list(policy_mx))
        cert, key = ca.issue(list(mx_cert_names))
        self.mx = SmartHost(cert, key, auth=False, mode="starttls",
                            hostname="mx.sts.test")
        self.tmp = tmp_path
        txt = self.txt(txt_id)
        if rua:
            txt["_smtp._tls.sts.test"] = [f"v=TLSRPTv1; rua={rua}"]
        self.dns = DnsZone(tmp_path, txt=txt,
                           a={"mx.sts.test": "127.0.0.1",
                              "mta-sts.sts.test": "127.0.0.1"},
                           mx={"sts.test": [(10, "mx.sts.test")]}).start()
        self.srv = outbound_server(
            make_server,
            delivery={"mx_port": self.mx.port, "tls_ca": str(ca.cert_path),
                      "mta_sts_port": self.sts.port},
            dns={"servers": f"127.0.0.1:{self.dns.port}", "timeout": 2})

    @staticmethod
    def txt(txt_id):
        return {"_mta-sts.sts.test": [f"v=STSv1; id={txt_id}"]}

    def close(self):
        for x in (self.mx, self.sts):
            x.stop()
        self.dns.stop()


@pytest.fixture
def world(make_server, tmp_path, ca, request):
    worlds = []

    def make(**kw):
        d = tmp_path / f"w{len(worlds)}"
        d.mkdir()
        w = World(make_server, d, ca, **kw)
        worlds.append(w)
        return w
    yield make
    for w in worlds:
        w.close()


def show(srv, qid):
    return queue(srv, "show", qid, check=0).stdout


def tls_report(srv, *args):
    p = subprocess.run([POSTERN, "tls-report", *args, "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p.stdout


def test_enforce_delivers_to_a_verified_mx_and_caches_the_policy(world):
    w = world()
    submit(w.srv, RCPT)
    w.mx.wait_messages(1, T)
    assert w.mx.messages[0].is_tls
    assert w.sts.hits_for("sts.test") == 1
    w.srv.wait_log(r"ev=mta_sts_policy domain=sts\.test .*mode=enforce")
    submit(w.srv, RCPT)
    w.mx.wait_messages(2, T)
    # Same id in the TXT record: the cached policy, no second fetch.
    assert w.sts.hits_for("sts.test") == 1
    report = json.loads(tls_report(w.srv, "--domain", "sts.test",
                                   "--json"))
    pol = report["policies"][0]
    assert pol["policy"]["policy-type"] == "sts"
    assert pol["summary"]["total-successful-session-count"] >= 1
    assert pol["summary"]["total-failure-session-count"] == 0


def test_enforce_defers_a_certificate_that_does_not_verify(world):
    w = world(mx_cert_names=("someone-else.test",))
    qid = submit(w.srv, RCPT)
    poll(lambda: "4.7.5" in show(w.srv, qid), T, what="4.7.5 deferral")
    text = show(w.srv, qid)
    assert "MTA-STS" in text and "hostname mismatch" in text
    assert w.mx.messages == []
    report = json.loads(tls_report(w.srv, "--domain", "sts.test",
                                   "--json"))
    fails = report["policies"][0]["failure-details"]
    assert fails[0]["result-type"] == "certificate-host-mismatch"
    assert fails[0]["receiving-mx-hostname"] == "mx.sts.test"


def test_enforce_skips_an_mx_the_policy_does_not_name(world):
    w = world(policy_mx=("mx2.sts.test",))
    qid = submit(w.srv, RCPT)
    poll(lambda: "not an MX host" in show(w.srv, qid), T,
         what="MX not in policy")
    assert "4.7.5" in show(w.srv, qid)
    assert w.mx.messages == []


def test_testing_mode_delivers_and_reports(world):
    w = world(mode="testing", mx_cert_names=("someone-else.test",))
    submit(w.srv, RCPT)
    w.mx.wait_messages(1, T)
    report = json.loads(tls_report(w.srv, "--domain", "sts.test",
                                   "--json"))
    pol = report["policies"][0]
    assert pol["policy"]["policy-type"] == "sts"
    assert "mode: testing" in pol["policy"]["policy-string"]
    assert pol["summary"]["total-failure-session-count"] == 1
    assert pol["failure-details"][0]["result-type"] == \
        "certificate-host-mismatch"


def test_a_new_policy_id_fetches_again(world):
    w = world()
    submit(w.srv, RCPT)
    w.mx.wait_messages(1, T)
    assert w.sts.hits_for("sts.test") == 1
    # The domain moves its MX: new policy, new id.
    w.sts.policies["sts.test"] = policy_text(mode="enforce",
                                             mx=["mx2.sts.test"])
    w.dns.set_txt("_mta-sts.sts.test", ["v=STSv1; id=20261205"])
    qid = submit(w.srv, RCPT)
    poll(lambda: "not an MX host" in show(w.srv, qid), T,
         what="the new policy applied")
    assert w.sts.hits_for("sts.test") == 2


def test_no_policy_server_and_no_cache_sends_as_before(world):
    w = world()
    w.sts.status["sts.test"] = 404
    submit(w.srv, RCPT)
    w.mx.wait_messages(1, T)
    w.srv.wait_log(r"ev=mta_sts_fetch_failed domain=sts\.test")


def test_the_days_report_goes_to_the_rua(world):
    """RFC 8460 5.3: a multipart/report (report-type tlsrpt) with the
    gzip'd JSON, to the mailto: address of _smtp._tls.sts.test."""
    w = world(mode="testing", mx_cert_names=("someone-else.test",),
              rua="mailto:bob@example.test")
    submit(w.srv, RCPT)
    w.mx.wait_messages(1, T)
    p = subprocess.run([POSTERN, "ctl", "tls-report", "send", "-c",
                        str(w.srv.conf)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    bob = w.srv.mail_root / "example.test" / "bob"
    poll(lambda: (bob / "new").is_dir() and len(list(
        mailbox.Maildir(str(bob), create=False))) == 1, T,
        what="the report in bob's mailbox")
    raw = next(iter(mailbox.Maildir(str(bob), create=False))).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "tlsrpt"
    assert msg["TLS-Report-Domain"] == "sts.test"
    assert msg["Subject"].startswith("Report Domain: sts.test Submitter: ")
    att = [part for part in msg.iter_parts()
           if part.get_content_type() == "application/tlsrpt+gzip"][0]
    assert att.get_filename().endswith(".json.gz")
    assert att.get_filename().count("!") == 4
    report = json.loads(gzip.decompress(att.get_content()))
    for key in ("organization-name", "date-range", "contact-info",
                "report-id", "policies"):
        assert key in report, key
    assert set(report["date-range"]) == {"start-datetime", "end-datetime"}
    pol = report["policies"][0]
    assert pol["policy"]["policy-domain"] == "sts.test"
    assert pol["summary"]["total-failure-session-count"] == 1
    assert pol["failure-details"][0]["failed-session-count"] == 1
    # Sent once: asking again sends nothing new.
    subprocess.run([POSTERN, "ctl", "tls-report", "send", "-c",
                    str(w.srv.conf)], capture_output=True, timeout=60)
    w.srv.wait_log(r"ev=tlsrpt_sent domain=sts\.test")
    assert w.srv.log_count(r"ev=tlsrpt_sent ") == 1
