"""DANE on the sending side (issue 17 item 4, RFC 7672): unbound validates
zones signed in the test (tests/pylib/dnssec.py, nsd behind it) and
postern, told by `[dns] dnssec = true` to believe its AD bit, looks up
the TLSA records of the MX host.  A DANE-EE(3 1 1) record matching the
MX host's key delivers even though no CA postern trusts signed the
certificate; a mismatch defers with 4.7.5; a zone without DNSSEC falls
back to the other policies (here: opportunistic TLS); a TLSA answer that
fails validation keeps the host unused.
"""
import json
import subprocess

import pytest

from dnssec import SignedDns, tlsa_3_1_1
from postern_test import poll
from smarthost import SmartHost
from smtp_peer import POSTERN, outbound_server, queue, submit
from testca import TestCA

T = 40.0


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    """The CA postern trusts, and the one that signs the MX certificates
    (so only DANE can make them pass)."""
    return (TestCA(tmp_path_factory.mktemp("trusted")),
            TestCA(tmp_path_factory.mktemp("untrusted"), name="MX CA"))


def mx_server(ca, name):
    cert, key = ca.issue([name])
    return SmartHost(cert, key, auth=False, mode="starttls", hostname=name)


def zone_lines(port, tlsa_hex):
    return ["@ IN MX 10 mx", "mx IN A 127.0.0.1",
            f"_{port}._tcp.mx IN TLSA 3 1 1 {tlsa_hex}"]


def sender(make_server, dns, mx_port, trusted):
    return outbound_server(
        make_server,
        delivery={"mx_port": mx_port, "tls_ca": str(trusted.cert_path)},
        dns={"servers": f"127.0.0.1:{dns.port}", "timeout": 3,
             "dnssec": "true"})


def show(srv, qid):
    return queue(srv, "show", qid, check=0).stdout


def other_key_tlsa(ca):
    cert, _ = ca.issue(["unrelated.test"], key_type="rsa")
    return tlsa_3_1_1(cert)


def test_dane_ee_match_delivers_without_a_trusted_ca(make_server, tmp_path,
                                                     cas):
    trusted, mxca = cas
    with mx_server(mxca, "mx.dane.test") as mx:
        cert = mxca.issue(["mx.dane.test"])[0]
        zones = {"dane.test": zone_lines(mx.port, tlsa_3_1_1(cert))}
        with SignedDns(tmp_path, zones, signed={"dane.test"}) as dns:
            assert dns.query("dane.test", "MX").ad
            srv = sender(make_server, dns, mx.port, trusted)
            submit(srv, "erin@dane.test")
            mx.wait_messages(1, T)
            assert mx.messages[0].is_tls
            srv.wait_log(r"ev=dane host=mx\.dane\.test records=1")
            p = subprocess.run(
                [POSTERN, "tls-report", "--domain", "dane.test", "--json",
                 "-c", str(srv.conf)], capture_output=True, text=True,
                timeout=60)
            assert p.returncode == 0, p.stderr
            pol = json.loads(p.stdout)["policies"][0]
            assert pol["policy"]["policy-type"] == "tlsa"
            assert pol["summary"]["total-successful-session-count"] >= 1


def test_dane_mismatch_defers_with_4_7_5(make_server, tmp_path, cas):
    trusted, mxca = cas
    with mx_server(mxca, "mx.dane.test") as mx:
        zones = {"dane.test": zone_lines(mx.port, other_key_tlsa(mxca))}
        with SignedDns(tmp_path, zones, signed={"dane.test"}) as dns:
            srv = sender(make_server, dns, mx.port, trusted)
            qid = submit(srv, "erin@dane.test")
            poll(lambda: "4.7.5" in show(srv, qid), T, what="deferral")
            assert "DANE TLSA" in show(srv, qid)
            assert mx.messages == []


def test_unsigned_zone_falls_back_to_the_other_policies(make_server,
                                                        tmp_path, cas):
    """No DNSSEC: the TLSA record (wrong on purpose) is not believed;
    without MTA-STS the mail goes with opportunistic TLS."""
    trusted, mxca = cas
    with mx_server(mxca, "mx.insecure.test") as mx:
        zones = {"insecure.test": zone_lines(mx.port,
                                             other_key_tlsa(mxca))}
        with SignedDns(tmp_path, zones) as dns:
            assert not dns.query("insecure.test", "MX").ad
            srv = sender(make_server, dns, mx.port, trusted)
            submit(srv, "erin@insecure.test")
            mx.wait_messages(1, T)
            assert mx.messages[0].is_tls


def test_bogus_tlsa_keeps_the_host_unused(make_server, tmp_path, cas):
    trusted, mxca = cas
    with mx_server(mxca, "mx.bogus.test") as mx:
        cert = mxca.issue(["mx.bogus.test"])[0]
        zones = {"bogus.test": zone_lines(mx.port, tlsa_3_1_1(cert))}
        tlsa_name = f"_{mx.port}._tcp.mx.bogus.test"
        with SignedDns(tmp_path, zones, bogus={tlsa_name}) as dns:
            assert dns.query(tlsa_name, "TLSA").rcode == "SERVFAIL"
            srv = sender(make_server, dns, mx.port, trusted)
            qid = submit(srv, "erin@bogus.test")
            poll(lambda: "TLSA lookup" in show(srv, qid), T,
                 what="deferral for the bogus TLSA")
            assert "4.7.5" in show(srv, qid)
            assert mx.messages == []
