"""Recipients: local users, subaddresses, forwards, no open relay.

REPLY-CODES.md rows 550 (5.1.1 / 5.7.1), 551 5.1.6, 251 2.1.5, 452 4.5.3;
RFC 5321 3.6 and Appendix C (source routes), 4.5.1 (Postmaster),
4.5.3.1.10 (recipients accepted before a 452 stay accepted).
"""
import subprocess

import pytest

from postern_test import DOMAIN, POSTERN, queue_id, split_message

RELAY = ("550 5.7.1 Relaying denied: <{}> is not a local domain and you are "
         "not authenticated")
ROUTING = "550 5.7.1 Source routing with % or ! is not accepted: <{}>"
UNKNOWN = "550 5.1.1 Mailbox <{}> does not exist"


def rcpt(server, path):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        return c.cmd(f"RCPT TO:{path}")


def deliver(server, path, body=b"Subject: t\r\n\r\nbody\r\n"):
    """One message to path; returns (rcpt reply, data reply)."""
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        r = c.cmd(f"RCPT TO:{path}")
        assert r.code in (250, 251), r
        assert c.cmd("DATA").code == 354
        c.send(body + b".\r\n")
        return r, c.reply()


def test_local_user_is_accepted_with_250_2_1_5(server):
    assert rcpt(server, "<alice@example.test>").last == (
        "250 2.1.5 Recipient <alice@example.test> OK")


def test_unknown_user_gets_550_5_1_1(server):
    assert rcpt(server, "<nobody@example.test>").last == \
        UNKNOWN.format("nobody@example.test")


def test_unknown_user_with_subaddress_gets_550_5_1_1(server):
    assert rcpt(server, "<nobody+tag@example.test>").last == \
        UNKNOWN.format("nobody+tag@example.test")


@pytest.mark.parametrize("addr", [
    "someone@elsewhere.test", "alice@example.test.evil.test",
    "alice@sub.example.test", "alice@[127.0.0.1]", "alice@[IPv6:::1]",
    "postmaster@elsewhere.test",
])
def test_relay_to_non_local_domain_gets_550_5_7_1(server, addr):
    assert rcpt(server, f"<{addr}>").last == RELAY.format(addr)


@pytest.mark.parametrize("addr", [
    "alice%evil.test@example.test", "evil.test!alice@example.test",
    "alice%evil.test%other.test@example.test", "a!b!alice@example.test",
])
def test_percent_and_bang_routing_gets_550_5_7_1(server, addr):
    assert rcpt(server, f"<{addr}>").last == ROUTING.format(addr)


def test_source_route_is_dropped_and_mail_delivered_locally(server):
    r, d = deliver(server, "<@x.test,@y.test:alice@example.test>")
    assert r.last == "250 2.1.5 Recipient <alice@example.test> OK"
    queue_id(d)
    [f] = server.wait_messages("alice@example.test", 1)
    assert b"Delivered-To: alice@example.test\n" in f.read_bytes()


def test_source_route_to_a_foreign_mailbox_is_still_relaying(server):
    assert rcpt(server, "<@example.test:bob@elsewhere.test>").last == \
        RELAY.format("bob@elsewhere.test")


def test_subaddress_is_delivered_into_the_users_maildir(server):
    r, d = deliver(server, "<alice+tag@example.test>")
    assert r.last == "250 2.1.5 Recipient <alice+tag@example.test> OK"
    queue_id(d)
    [f] = server.wait_messages("alice@example.test", 1)
    data = f.read_bytes()
    assert b"Delivered-To: alice@example.test\n" in data
    assert b"\tfor <alice+tag@example.test>;" in data
    assert not server.maildir("alice+tag@example.test").exists()


def test_user_and_domain_are_case_insensitive(server):
    r, d = deliver(server, "<ALICE@Example.TEST>")
    assert r.code == 250
    queue_id(d)
    server.wait_messages("alice@example.test", 1)


def test_postmaster_alone_is_accepted_and_delivered(server):
    r, d = deliver(server, "<Postmaster>")
    assert r.last == "250 2.1.5 Recipient <Postmaster> OK"
    queue_id(d)
    server.wait_messages("postmaster@example.test", 1)


def test_quoted_local_part_is_never_relayed(server):
    r = rcpt(server, '<"alice"@elsewhere.test>')
    assert (r.code, r.enh) == (550, "5.7.1")
    r = rcpt(server, '<"alice@elsewhere.test"@example.test>')
    assert (r.code, r.enh) in ((550, "5.7.1"), (550, "5.1.1")), r


def test_quoted_local_part_is_the_same_user(server):
    r, d = deliver(server, '<"alice"@example.test>')
    assert r.code == 250
    queue_id(d)
    server.wait_messages("alice@example.test", 1)


def test_forward_gets_251_and_is_delivered_to_the_new_address(server):
    r, d = deliver(server, "<carol@example.test>")
    assert r.last == ("251 2.1.5 User not local; will forward to "
                      "<bob@example.test>")
    qid = queue_id(d)
    [f] = server.wait_messages("bob@example.test", 1)
    assert f"Q{qid}R0" in f.name
    data = f.read_bytes()
    assert b"Delivered-To: bob@example.test\n" in data
    assert b"\tfor <carol@example.test>;" in data
    assert not server.maildir("carol@example.test").exists()


def test_forward_applies_to_subaddresses_too(server):
    r, d = deliver(server, "<carol+x@example.test>")
    assert r.last == ("251 2.1.5 User not local; will forward to "
                      "<bob@example.test>")
    queue_id(d)
    server.wait_messages("bob@example.test", 1)


def test_refused_forward_gets_551_5_1_6_naming_the_new_address(server):
    r = rcpt(server, "<dave@example.test>")
    assert r.last == ("551 5.1.6 User not local; please try "
                      "<dave@elsewhere.example>")


def test_forward_to_an_unknown_local_user_gets_550_5_1_1(make_server):
    srv = make_server(forwards=["eve@example.test nobody@example.test "
                                "forward"])
    r = rcpt(srv, "<eve@example.test>")
    assert (r.code, r.enh) == (550, "5.1.1"), r


def test_same_recipient_twice_is_delivered_once(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        for path in ("<alice@example.test>", "<ALICE@example.test>",
                     "<alice+x@example.test>"):
            assert c.cmd(f"RCPT TO:{path}").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"x\r\n.\r\n")
        queue_id(c.reply())
    server.wait_messages("alice@example.test", 1)
    server.stop()
    assert len(server.message_files("alice@example.test")) == 1


def test_mixed_recipients_only_the_accepted_ones_get_the_message(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        assert c.cmd("RCPT TO:<x@elsewhere.test>").code == 550
        assert c.cmd("RCPT TO:<dave@example.test>").code == 551
        assert c.cmd("RCPT TO:<carol@example.test>").code == 251
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: mixed\r\n\r\nmixed\r\n.\r\n")
        qid = queue_id(c.reply())
    fa = server.wait_messages("alice@example.test", 1)
    fb = server.wait_messages("bob@example.test", 1)
    assert f"Q{qid}R0" in fa[0].name and f"Q{qid}R1" in fb[0].name
    for f in fa + fb:
        assert split_message(f.read_bytes())[1] == b"mixed\n"
    server.stop()
    assert server.total_messages() == 2


def test_rcpt_101st_gets_452_4_5_3_and_the_first_100_are_delivered(
        make_server):
    users = [f"u{i}@{DOMAIN}" for i in range(1, 102)]
    srv = make_server(users=users)
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        batch = b"".join(b"RCPT TO:<%s>\r\n" % u.encode() for u in users)
        c.send(batch)
        for u in users[:100]:
            assert c.reply().last == f"250 2.1.5 Recipient <{u}> OK"
        assert c.reply().last == ("452 4.5.3 Too many recipients in this "
                                  "transaction; send the rest in another")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: many\r\n\r\nto a hundred\r\n.\r\n")
        queue_id(c.reply())
    for u in users[:100]:
        srv.wait_messages(u, 1)
    srv.stop()
    assert srv.message_files(users[100]) == []
    assert srv.total_messages() == 100


def test_max_recipients_2_third_gets_452_and_the_452_is_not_fatal(
        make_server):
    srv = make_server(server={"max_recipients": 2})
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.cmd("RCPT TO:<postmaster@example.test>")
        assert (r.code, r.enh) == (452, "4.5.3")
        queue_id(_finish(c))
        # The next transaction may have two recipients again.
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<postmaster@example.test>").code == 250
    srv.wait_messages("alice@example.test", 1)
    srv.wait_messages("bob@example.test", 1)
    assert srv.message_files("postmaster@example.test") == []


def _finish(c):
    assert c.cmd("DATA").code == 354
    c.send(b"x\r\n.\r\n")
    return c.reply()


def test_users_file_comments_and_blank_lines_are_ignored(make_server):
    srv = make_server(users=["# a comment", "", "  ", "alice@example.test",
                             "bob@example.test: $6$saltsalt$hash"])
    assert rcpt(srv, "<alice@example.test>").code == 250
    assert rcpt(srv, "<bob@example.test>").code == 250
    assert rcpt(srv, "<#@example.test>").code == 550


def test_second_local_domain_is_local(make_server):
    srv = make_server(local={"domains": "example.test, example.org"},
                      users=["alice@example.test", "zed@example.org"])
    r, d = deliver(srv, "<zed@example.org>")
    assert r.code == 250
    queue_id(d)
    srv.wait_messages("zed@example.org", 1)
    assert rcpt(srv, "<alice@example.org>").code == 550
    assert rcpt(srv, "<alice@example.org>").enh == "5.1.1"


def test_forward_and_its_target_in_one_transaction_deliver_once(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<carol@example.test>").code == 251
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"x\r\n.\r\n")
        queue_id(c.reply())
    server.wait_messages("bob@example.test", 1)
    server.stop()
    assert len(server.message_files("bob@example.test")) == 1


def test_postmaster_is_always_accepted_or_check_requires_it(make_server):
    srv = make_server(users=["alice@example.test"])
    check = subprocess.run([POSTERN, "check", "-c", str(srv.conf)],
                           capture_output=True, text=True, timeout=30)
    if check.returncode == 1:
        assert "postmaster" in check.stderr.lower()
        return
    r = rcpt(srv, "<Postmaster>")
    assert (r.code, r.enh) == (250, "2.1.5"), r
