"""Opportunistic STARTTLS on the sending side (issue 5 scope 3, issue 6
item 4): postern sends to another real postern that offers STARTTLS and
the message crosses encrypted; a route marked `tls=required` to a peer
without STARTTLS is deferred with 4.7.5, never sent in clear; with
`[delivery] tls = off` nothing is encrypted.
"""
import mailbox

from smtp_peer import (Peer, outbound_server, queue_list,
                       start_with_submission, submit, tls_files)
from postern_test import poll

T = 40.0
BOB = "bob@remote.test"


def receiver(make_server):
    """A second postern, the final destination for remote.test, with TLS."""
    cert, key = tls_files()
    return make_server(users=["postmaster@remote.test", BOB],
                       local={"domains": "remote.test"},
                       tls={"cert": str(cert), "key": str(key)})


def bob_messages(rcv):
    box = rcv.mail_root / "remote.test" / "bob"
    if not (box / "new").is_dir():
        return []
    return list(mailbox.Maildir(str(box), create=False))


def test_starttls_is_used_when_the_peer_offers_it(make_server):
    rcv = receiver(make_server)
    snd = outbound_server(make_server,
                          routes={"remote.test": f"127.0.0.1:{rcv.port}"})
    submit(snd, BOB)
    poll(lambda: len(bob_messages(rcv)) == 1, T, what="delivery over TLS")
    # The receiving side logged the handshake for the sender's session.
    rcv.wait_log(r"ev=tls .*version=TLSv1\.[23]")
    snd.wait_log(r"ev=sent .*rcpt=bob@remote\.test")


def test_tls_off_sends_in_clear(make_server):
    rcv = receiver(make_server)
    snd = outbound_server(make_server,
                          routes={"remote.test": f"127.0.0.1:{rcv.port}"},
                          delivery={"tls": "off"})
    submit(snd, BOB)
    poll(lambda: len(bob_messages(rcv)) == 1, T, what="delivery")
    assert "ev=tls " not in rcv.log()


def test_required_tls_without_starttls_is_deferred_not_sent(make_server):
    with Peer() as peer:  # offers no STARTTLS
        snd = outbound_server(make_server, start=False)
        (snd.dir / "routes").write_text(
            f"remote.test 127.0.0.1:{peer.port} tls=required\n")
        snd.sections.setdefault("delivery", {})["routes"] = "routes"
        start_with_submission(snd)
        qid = submit(snd, BOB)

        def deferred():
            q = queue_list(snd)
            r = q.get(qid, {}).get("rcpts", {}).get(BOB)
            return r is not None and r["attempts"] >= 1 and \
                "4.7.5" in (r["last"] or "")
        poll(deferred, T, what="a 4.7.5 deferral")
        assert peer.messages == [], "sent in clear despite tls=required"
        verbs = [v for c in peer.connections for v in c.verbs()]
        assert "MAIL" not in verbs, verbs
