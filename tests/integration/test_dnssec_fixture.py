"""The SignedDns fixture itself (tests/pylib/dnssec.py), before the DANE
tests lean on it: a signed zone validates (AD=1), an unsigned one is
insecure (AD=0), a zone or a single name with broken signatures is bogus
(SERVFAIL) while nsd still serves the data, set_records is seen at once,
and the TLSA helpers compute what openssl computes.

One SignedDns serves the module; only test_set_records changes data, in
a zone of its own (moving.test).
"""
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

from postern_test import make_cert  # noqa: E402

dnssec = pytest.importorskip("dnssec")

pytestmark = [
    pytest.mark.skipif(not all(shutil.which(t) for t in
                               (dnssec.NSD, dnssec.UNBOUND,
                                dnssec.LDNS_KEYGEN, dnssec.LDNS_SIGNZONE)),
                       reason="nsd, unbound or ldnsutils missing"),
    pytest.mark.xdist_group("dnssec"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("dane-cert")
    cert, _ = make_cert(d)
    return cert


@pytest.fixture(scope="module")
def signed_dns(tmp_path_factory, certs):
    d = tmp_path_factory.mktemp("dnssec")
    tlsa = dnssec.tlsa_3_1_1(certs)
    z = dnssec.SignedDns(d, zones={
        "dane.test": ["@ MX 10 mx",
                      "mx A 127.0.0.1",
                      f"_25._tcp.mx TLSA 3 1 1 {tlsa}",
                      # a name whose TLSA alone is bogus
                      "mx2 A 127.0.0.1",
                      "_25._tcp.mx2.dane.test. TLSA 3 1 1 " + "00" * 32],
        "insecure.test": ["@ MX 10 mx", "mx A 127.0.0.1",
                          f"_25._tcp.mx TLSA 3 1 1 {tlsa}"],
        "bogus.test": ["@ MX 10 mx", "mx A 127.0.0.1"],
        "moving.test": ["mx A 192.0.2.1"],
    }, signed={"dane.test", "moving.test"},
        bogus={"bogus.test", "_25._tcp.mx2.dane.test"})
    z.tlsa = tlsa
    z.start()
    yield z
    print("--- unbound log:\n" + z.unbound_log()[-4000:])
    z.stop()


def test_signed_zone_is_secure(signed_dns):
    dns = signed_dns
    assert dns.query("mx.dane.test", "A") == ("NOERROR", True, ["127.0.0.1"])
    assert dns.query("dane.test", "MX") == ("NOERROR", True,
                                            ["10 mx.dane.test."])
    assert dns.query("_25._tcp.mx.dane.test", "TLSA") == (
        "NOERROR", True, [f"3 1 1 {dns.tlsa}"])
    # denial of existence is proved too (NSEC)
    assert dns.query("nope.dane.test", "A") == ("NXDOMAIN", True, [])
    assert dns.query("_25._tcp.nope.dane.test", "TLSA") == (
        "NXDOMAIN", True, [])
    assert dns.query("mx.dane.test", "TLSA") == ("NOERROR", True, [])


def test_unsigned_zone_is_insecure(signed_dns):
    dns = signed_dns
    assert dns.query("mx.insecure.test", "A") == (
        "NOERROR", False, ["127.0.0.1"])
    assert dns.query("_25._tcp.mx.insecure.test", "TLSA") == (
        "NOERROR", False, [f"3 1 1 {dns.tlsa}"])


def test_bogus_zone_is_servfail(signed_dns):
    dns = signed_dns
    assert dns.query("mx.bogus.test", "A") == ("SERVFAIL", False, [])
    assert dns.query("bogus.test", "MX") == ("SERVFAIL", False, [])
    assert dns.query("nope.bogus.test", "A") == ("SERVFAIL", False, [])
    # the data is there: it is the validation that fails
    assert dns.query_nsd("mx.bogus.test", "A").answers == ["127.0.0.1"]
    assert "validation failure <mx.bogus.test. A IN>" in dns.unbound_log()


def test_bogus_name_only(signed_dns):
    dns = signed_dns
    assert dns.query("_25._tcp.mx2.dane.test", "TLSA") == (
        "SERVFAIL", False, [])
    assert dns.query("mx2.dane.test", "A") == ("NOERROR", True,
                                               ["127.0.0.1"])


def test_outside_the_zones_is_nxdomain_at_once(signed_dns):
    t0 = time.monotonic()
    assert signed_dns.query("example.com", "A").rcode == "NXDOMAIN"
    assert signed_dns.query("other.test", "MX").rcode == "NXDOMAIN"
    assert time.monotonic() - t0 < 1


def test_set_records(signed_dns):
    dns = signed_dns
    assert dns.query("mx.moving.test", "A") == ("NOERROR", True,
                                                ["192.0.2.1"])
    dns.set_records("moving.test", ["mx A 192.0.2.2", "@ MX 5 mx"])
    assert dns.query("mx.moving.test", "A") == ("NOERROR", True,
                                                ["192.0.2.2"])
    assert dns.query("moving.test", "MX") == ("NOERROR", True,
                                              ["5 mx.moving.test."])
    # twice within one second still reloads (nsd looks at mtime)
    dns.set_records("moving.test", ["mx A 192.0.2.3"],
                    bogus={"mx.moving.test"})
    assert dns.query("mx.moving.test", "A") == ("SERVFAIL", False, [])
    assert dns.query("moving.test", "MX") == ("NOERROR", True, [])
    dns.set_records("moving.test", ["mx A 192.0.2.4"], bogus=())
    assert dns.query("mx.moving.test", "A") == ("NOERROR", True,
                                                ["192.0.2.4"])
    # the other zones still validate after unbound's restart
    assert dns.query("mx.dane.test", "A").ad


def spki_sha256_by_openssl(pem):
    pub = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout",
                          "-pubkey"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def test_tlsa_helpers(certs):
    want = spki_sha256_by_openssl(certs)
    assert dnssec.tlsa_3_1_1(certs) == want
    assert dnssec.tlsa_2_1_1(certs) == want
    der = subprocess.run(["openssl", "x509", "-in", str(certs), "-outform",
                          "DER"], check=True, capture_output=True).stdout
    assert dnssec.tlsa_digest(certs, 0, 1) == hashlib.sha256(der).hexdigest()
    assert dnssec.tlsa_digest(certs, 0, 0) == der.hex()
