"""Self-tests of the TLS fixtures the sending side's tests use
(tests/pylib/testca.py, smarthost.py, stshttps.py), with Python's own
clients (smtplib, http.client) and no postern: a CA made in the test and
the certificates it issues, a smart host that wants AUTH after STARTTLS
or on implicit TLS, and the MTA-STS policy server.  A failure here is a
broken fixture, not a broken postern.
"""
import datetime
import smtplib
import ssl

import pytest
from cryptography import x509

from postern_test import poll
from smarthost import AuthAttempt, SmartHost
from stshttps import StsServer, fetch_policy, policy_text
from testca import TestCA, cert_sha256, default_ca, spki_sha256

USER = "relay@example.test"
PASSWORD = "s3cret"
MSG = b"Subject: relayed\r\n\r\n.leading dot\r\nbody\r\n"
T = 5.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca-other"), name="another CA")


@pytest.fixture(scope="module")
def host_pair(ca):
    # The IP SAN lets smtplib check the name it dialled, 127.0.0.1.
    return ca.issue(["smarthost.test", "127.0.0.1"])


def trusting(ca):
    """A client context that trusts ca only and checks names."""
    return ssl.create_default_context(cafile=str(ca.cert_path))


# --------------------------------------------------------------------------
# The CA


def test_issued_leaf_has_the_names_and_chains_to_its_ca(ca, other_ca):
    cert_path, key_path = ca.issue(["mx.remote.test", "127.0.0.1", "::1"])
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mx.remote.test"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == \
        ["127.0.0.1", "::1"]
    assert cert.issuer == ca.cert.subject != other_ca.cert.subject
    assert ca.issue(["mx.remote.test", "127.0.0.1", "::1"]) == \
        (cert_path, key_path), "the same arguments are cached"


def test_expired_rsa_and_chain_variants(ca):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    old, _ = ca.issue(["old.test"], expired=True)
    assert x509.load_pem_x509_certificate(old.read_bytes()) \
        .not_valid_after < now
    rsa_cert, rsa_key = ca.issue(["rsa.test"], key_type="rsa")
    assert b"BEGIN PRIVATE KEY" in rsa_key.read_bytes()
    assert spki_sha256(rsa_cert) != spki_sha256(ca.issue(["rsa.test"])[0])
    chained, _ = ca.issue(["chain.test"], chain=True)
    assert chained.read_bytes().count(b"BEGIN CERTIFICATE") == 2
    assert ca.cert_pem in chained.read_bytes()
    assert len(cert_sha256(ca.cert_path)) == 64
    assert default_ca() is default_ca()


# --------------------------------------------------------------------------
# The smart host


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_then_auth_relays(ca, host_pair, mechanism):
    with SmartHost(*host_pair) as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        assert not c.has_extn("auth"), "AUTH offered before TLS"
        assert c.docmd("AUTH", "PLAIN AHJlbGF5AHMzY3JldA==")[0] == 538
        assert c.docmd("MAIL", "FROM:<a@example.test>")[0] == 530
        c.starttls(context=trusting(ca))
        c.ehlo("client.test")
        assert set(c.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        c.user, c.password = USER, PASSWORD
        code, _ = c.auth(mechanism, getattr(c, f"auth_{mechanism.lower()}"))
        assert code == 235
        c.sendmail("a@example.test", ["x@remote.test"], MSG)
        sh.wait_messages(1, T)
    m = sh.messages[0]
    assert m == ("a@example.test", ["x@remote.test"], MSG, USER, True)
    assert sh.auth_attempts == [AuthAttempt(mechanism, USER, True)]
    assert sh.ehlo_names == ["client.test", "client.test"]


def test_wrong_password_gets_535(ca, host_pair):
    with SmartHost(*host_pair) as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        c.starttls(context=trusting(ca))
        c.ehlo()
        c.user, c.password = USER, "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.auth("PLAIN", c.auth_plain)
        assert (e.value.smtp_code, e.value.smtp_error[:5]) == (535, b"5.7.8")
        assert c.docmd("MAIL", "FROM:<a@example.test>")[0] == 530
    assert sh.auth_attempts == [AuthAttempt("PLAIN", USER, False)]
    assert sh.messages == []


def test_login_only_offers_login(ca, host_pair):
    with SmartHost(*host_pair, mechanisms=("LOGIN",)) as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        c.starttls(context=trusting(ca))
        c.ehlo()
        assert c.esmtp_features["auth"].split() == ["LOGIN"]
        assert c.docmd("AUTH", "PLAIN AHJlbGF5AHMzY3JldA==")[0] == 504
        c.login(USER, PASSWORD)
    assert sh.auth_attempts == [AuthAttempt("LOGIN", USER, True)]


def test_starttls_fails_against_another_ca(other_ca, host_pair):
    with SmartHost(*host_pair) as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        with pytest.raises(ssl.SSLCertVerificationError):
            c.starttls(context=trusting(other_ca))


def test_implicit_tls_relays(ca, host_pair):
    with SmartHost(*host_pair, mode="implicit") as sh, \
            smtplib.SMTP_SSL("127.0.0.1", sh.port, timeout=T,
                             context=trusting(ca)) as c:
        c.ehlo()
        assert not c.has_extn("starttls")
        assert c.has_extn("auth")
        assert c.docmd("MAIL", "FROM:<a@example.test>")[0] == 530
        c.rset()
        c.login(USER, PASSWORD)
        c.sendmail("a@example.test", ["x@remote.test"], MSG)
        sh.wait_messages(1, T)
    assert sh.messages[0].login == USER and sh.messages[0].is_tls


def test_plain_without_auth_takes_mail_in_clear():
    with SmartHost(mode="plain", auth=False) as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        c.ehlo()
        assert not c.has_extn("starttls") and not c.has_extn("auth")
        c.sendmail("a@example.test", ["x@remote.test"], MSG)
        sh.wait_messages(1, T)
    assert sh.messages[0][3:] == (None, False)


def test_plain_with_auth_offers_auth_in_clear_and_wants_it():
    with SmartHost(mode="plain") as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        c.ehlo()
        assert c.has_extn("auth") and not c.has_extn("starttls")
        assert c.docmd("MAIL", "FROM:<a@example.test>")[0] == 530


def test_data_reply_refuses_and_records_nothing(ca, host_pair):
    with SmartHost(*host_pair, auth=False) as sh, \
            smtplib.SMTP("127.0.0.1", sh.port, timeout=T) as c:
        sh.data_reply = "451 4.3.0 try later"
        c.starttls(context=trusting(ca))
        c.ehlo()
        assert not c.has_extn("auth")
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@example.test", ["x@remote.test"], MSG)
        assert e.value.smtp_code == 451
    assert sh.messages == []


# --------------------------------------------------------------------------
# The MTA-STS policy server


def test_policy_served_and_verified_against_the_test_ca(ca, other_ca):
    text = policy_text(mx=["mx.sts.test", "*.sts.test"])
    with StsServer(ca, ["sts.test", "gone.test"],
                   policies={"sts.test": text}) as sts:
        status, ctype, body = fetch_policy("sts.test", sts.port, ca.cert_path)
        assert (status, ctype, body) == (200, "text/plain; charset=utf-8",
                                         text)
        assert body.startswith("version: STSv1\r\nmode: enforce\r\n")
        assert fetch_policy("gone.test", sts.port, ca.cert_path)[0] == 404
        sts.status["sts.test"] = 503
        assert fetch_policy("sts.test", sts.port, ca.cert_path)[0] == 503
        with pytest.raises(ssl.SSLCertVerificationError):
            fetch_policy("sts.test", sts.port, other_ca.cert_path)
        assert sts.hits_for("sts.test") == 2
        assert sts.hits_for("gone.test") == 1
        assert sts.hits[0] == (f"mta-sts.sts.test:{sts.port}",
                               "/.well-known/mta-sts.txt")
        assert sts.sni_names.count("mta-sts.sts.test") == 3
        poll(lambda: len(sts.tls_errors) == 1, T, what="the failed handshake")


def test_policy_changes_at_run_time_and_names_are_checked(ca):
    with StsServer(ca, ["sts.test"]) as sts:
        assert fetch_policy("sts.test", sts.port, ca.cert_path)[0] == 404
        sts.policies["sts.test"] = policy_text(mode="testing")
        sts.content_types["sts.test"] = "text/html"
        status, ctype, body = fetch_policy("sts.test", sts.port,
                                           ca.cert_path)
        assert (status, ctype) == (200, "text/html")
        assert "mode: testing\r\n" in body
        # The certificate names only mta-sts.sts.test.
        with pytest.raises(ssl.SSLCertVerificationError):
            fetch_policy("elsewhere.test", sts.port, ca.cert_path)
