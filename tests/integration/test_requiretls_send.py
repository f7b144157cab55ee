"""REQUIRETLS end to end (issue 17 item 6, RFC 8689): alice submits with
`MAIL FROM:<...> REQUIRETLS`; the sending postern passes the message on
only over TLS it verified, to a receiving postern that offers REQUIRETLS,
and says REQUIRETLS there too; to a route it cannot verify, the message
comes back to alice with 5.7.30.  `TLS-Required: No` lets a message
through where verification fails.
"""
import mailbox

import pytest

from postern_test import poll
from smtp_peer import message, outbound_server, submit
from testca import TestCA

T = 40.0
BOB = "bob@remote.test"


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    return (TestCA(tmp_path_factory.mktemp("ca")),
            TestCA(tmp_path_factory.mktemp("other"), name="other CA"))


def receiver(make_server, ca):
    cert, key = ca.issue(["127.0.0.1"])
    return make_server(users=["postmaster@remote.test", BOB],
                       local={"domains": "remote.test"},
                       tls={"cert": str(cert), "key": str(key)})


def sender(make_server, rcv, ca, tls):
    line = f"127.0.0.1:{rcv.port}" + (f" tls={tls}" if tls else "")
    return outbound_server(make_server, routes={"remote.test": line},
                           delivery={"tls_ca": str(ca.cert_path)})


def box(srv, domain, user):
    d = srv.mail_root / domain / user
    if not (d / "new").is_dir():
        return []
    return list(mailbox.Maildir(str(d), create=False))


def test_requiretls_over_verified_tls_to_a_peer_that_offers_it(make_server,
                                                               cas):
    ca, _ = cas
    rcv = receiver(make_server, ca)
    snd = sender(make_server, rcv, ca, "verify")
    submit(snd, BOB, mail_options=["REQUIRETLS"])
    poll(lambda: len(box(rcv, "remote.test", "bob")) == 1, T,
         what="delivery with REQUIRETLS")
    # The receiver got MAIL FROM ... REQUIRETLS (its ev=mail says so).
    rcv.wait_log(r"ev=mail .*requiretls=yes")


def test_requiretls_without_verification_comes_back_with_5_7_30(make_server,
                                                                 cas):
    ca, _ = cas
    rcv = receiver(make_server, ca)
    snd = sender(make_server, rcv, ca, None)   # opportunistic only
    submit(snd, BOB, mail_options=["REQUIRETLS"])
    poll(lambda: len(box(snd, "example.test", "alice")) == 1, T,
         what="the bounce to alice")
    bounce = box(snd, "example.test", "alice")[0].as_string()
    assert "5.7.30" in bounce and "REQUIRETLS" in bounce
    assert box(rcv, "remote.test", "bob") == []


def test_tls_required_no_goes_where_verification_fails(make_server, cas):
    ca, other = cas
    rcv = receiver(make_server, other)        # a CA the sender does not trust
    snd = sender(make_server, rcv, ca, "verify")
    submit(snd, BOB, message(extra="TLS-Required: No\r\n"))
    poll(lambda: len(box(rcv, "remote.test", "bob")) == 1, T,
         what="delivery despite the unverified certificate")
    snd.wait_log(r"ev=tls_policy_waived ")
    # Without the header the same route defers.
    submit(snd, BOB)
    snd.wait_log(r"ev=tls_verify_failed .*reason=")
    assert len(box(rcv, "remote.test", "bob")) == 1
