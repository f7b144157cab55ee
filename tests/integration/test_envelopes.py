"""What real senders put in MAIL FROM and RCPT TO (issue 18, item 4).

Long VERP and SRS senders have local parts past RFC 5321's 64 octets
(4.5.3.1.1), and some clients write `MAIL FROM:a@b` without the angle
brackets; Postfix (strict_rfc821_envelopes = no, its default) and Exim
take both.  So does postern unless [server] strict_envelopes = true,
which gives them the 501 they got before.  The bare form reads the
address up to the first space and never lets it swallow a parameter or a
second recipient; source routes and the relay rules are what they were.
Real clients: swaks (always writes brackets) for the long sender,
smtplib's docmd for the bare form, `postern send -f`, and the sending
side towards a scripted peer (smtp_peer).
"""
import email
import email.policy
import shutil
import smtplib
import subprocess

import pytest

from postern_test import POSTERN
from smtp_peer import Peer, outbound_server, submit

# A VERP sender of 200 octets in its local part, as list managers write
# them: the list's bounce address with the recipient folded in.
VERP_LOCAL = "list-bounces+" + "m" * 175 + "=remote.test"
VERP = VERP_LOCAL + "@lists.x.test"
assert len(VERP_LOCAL) == 200
# An SRS0 sender, as a forwarder rewrites one: hash, time stamp, the
# original domain and the original local part, here a long one.
SRS = "SRS0=HHH=TT=orig.example=" + "o" * 80 + "@fwd.x.test"
SENDER_SYNTAX = "501 5.1.7 Bad sender address syntax: "
RCPT_SYNTAX = "501 5.1.3 Bad recipient address syntax: "

needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None,
                                 reason="swaks not installed")


def strict(make_server):
    return make_server(server={"strict_envelopes": "true"})


def read(path):
    return email.message_from_bytes(path.read_bytes(),
                                    policy=email.policy.default)


def swaks(srv, sender, to="alice@example.test"):
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{srv.port}", "--from", sender,
         "--to", to, "--helo", "swaks.test", "--header", "Subject: verp",
         "--body", "a bounce address of 200 octets"],
        capture_output=True, text=True, timeout=60)


# --- long local parts ---------------------------------------------------------

@needs_swaks
def test_swaks_delivers_a_200_octet_verp_sender(server):
    p = swaks(server, VERP)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"<-  250 2.1.0 Sender <{VERP}> OK" in p.stdout
    [f] = server.wait_messages("alice@example.test", 1)
    m = read(f)
    assert m["Return-Path"] == f"<{VERP}>"
    assert m["Subject"] == "verp"


@needs_swaks
def test_strict_envelopes_refuses_the_verp_sender_as_before(make_server):
    srv = strict(make_server)
    p = swaks(srv, VERP)
    assert p.returncode == 23, p.stdout + p.stderr  # swaks: MAIL refused
    assert f"<** {SENDER_SYNTAX}<{VERP}>" in p.stdout
    assert srv.total_messages() == 0


def test_smtplib_delivers_srs_sender_to_a_long_local_recipient(make_server):
    long_user = "u" * 240 + "@example.test"
    srv = make_server(users=["postmaster@example.test",
                             "alice@example.test", long_user])
    with smtplib.SMTP(srv.host, srv.port, timeout=30) as s:
        s.ehlo("client.test")
        s.sendmail(SRS, [long_user, "alice@example.test"],
                   b"Subject: srs\r\n\r\nforwarded\r\n")
    for rcpt in (long_user, "alice@example.test"):
        [f] = srv.wait_messages(rcpt, 1)
        assert read(f)["Return-Path"] == f"<{SRS}>"


def test_local_part_up_to_the_path_limit_and_no_further(server):
    # "<" 252 "@" 1 ">" is the 256-octet path of RFC 5321 4.5.3.1.3.
    with server.client() as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{'s' * 252}@x>").code == 250
        # "<" 241 "@example.test>" is 256 octets too.
        r = c.cmd(f"RCPT TO:<{'a' * 241}@example.test>")
        assert (r.code, r.enh) == (550, "5.1.1"), r
        r = c.cmd(f"RCPT TO:<{'a' * 242}@example.test>")
        assert r.last.startswith(RCPT_SYNTAX), r
        assert c.cmd("RSET").code == 250
        r = c.cmd(f"MAIL FROM:<{'s' * 253}@x>")
        assert r.last.startswith(SENDER_SYNTAX), r
        r = c.cmd(f"MAIL FROM:<s@{'d' * 60}.{'d' * 60}.{'d' * 60}.x>")
        assert r.code == 250, r     # 193-octet domain: as before
        assert c.cmd("RSET").code == 250
        r = c.cmd(f"MAIL FROM:<s@{'d' * 64}.x>")
        assert r.last.startswith(SENDER_SYNTAX), r  # label limit stays


def test_strict_envelopes_keeps_the_64_octet_local_part(make_server):
    srv = strict(make_server)
    with srv.client() as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{'s' * 64}@x.test>").code == 250
        r = c.cmd(f"RCPT TO:<{'a' * 64}@example.test>")
        assert (r.code, r.enh) == (550, "5.1.1"), r
        r = c.cmd(f"RCPT TO:<{'a' * 65}@example.test>")
        assert r.last == f"{RCPT_SYNTAX}<{'a' * 65}@example.test>", r
        assert c.cmd("RSET").code == 250
        r = c.cmd(f"MAIL FROM:<{'s' * 65}@x.test>")
        assert r.last == f"{SENDER_SYNTAX}<{'s' * 65}@x.test>", r


# --- MAIL FROM:addr without angle brackets ------------------------------------

def test_bare_mail_and_rcpt_with_parameters_deliver(server):
    with smtplib.SMTP(server.host, server.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.docmd("MAIL", "FROM:s@x.test SIZE=100 BODY=8BITMIME") == \
            (250, b"2.1.0 Sender <s@x.test> OK")
        assert s.docmd("RCPT", "TO:alice@example.test NOTIFY=FAILURE") == \
            (250, b"2.1.5 Recipient <alice@example.test> OK")
        code, _ = s.data(b"Subject: bare\r\n\r\nno brackets\r\n")
        assert code == 250
    [f] = server.wait_messages("alice@example.test", 1)
    assert read(f)["Return-Path"] == "<s@x.test>"


@pytest.mark.parametrize("line", [
    "MAIL FROM:s@x.test", "MAIL FROM: s@x.test", "MAIL FROM:  s@x.test  ",
    "MAIL FROM:s@x.test  SIZE=10", "mail from:S@X.test",
    f"MAIL FROM:{VERP} BODY=7BIT",
], ids=["bare", "space_after_colon", "spaces_around", "two_spaces_to_param",
        "lower_case", "bare_verp"])
def test_bare_sender_forms_postfix_takes_are_accepted(server, line):
    with server.client() as c:
        c.ehlo()
        r = c.cmd(line)
        assert (r.code, r.enh) == (250, "2.1.0"), r
        assert r.last.endswith("> OK") and " Sender <" in r.last


def test_bare_null_path_is_refused_with_the_usage(server):
    # "MAIL FROM:" with nothing is a client that lost its address more
    # likely than a bounce; Postfix refuses it too.  "<>" is the null path.
    usage = "501 5.5.4 Syntax error in arguments; usage: MAIL FROM:<address>"
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:").last == usage
        assert c.cmd("MAIL FROM: ").last == usage
        r = c.cmd("MAIL FROM: SIZE=10")
        assert r.last == f"{SENDER_SYNTAX}SIZE=10", r
        assert c.cmd("MAIL FROM:<> SIZE=10").code == 250


@pytest.mark.parametrize("arg", [
    "alice@example.test,bob@example.test",   # two mailboxes, one word
    "alice@example.test>",                   # half a path
    "alice@example.test<bob@example.test>",
    '"alice bob"@example.test',              # space inside quotes: bare, no
    '"x NOTIFY=NEVER"@example.test',
    "@example.test:alice@example.test",      # bare source route
    "alice@example.test@example.test",
    "alice@example.test\tNOTIFY=NEVER",      # only a space ends the address
], ids=lambda a: a.replace(" ", "_").replace("\t", "TAB"))
def test_bare_rcpt_that_could_be_read_two_ways_gets_501(server, arg):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:s@x.test").code == 250
        r = c.cmd(f"RCPT TO:{arg}")
        assert r.last.startswith(RCPT_SYNTAX), r
        assert c.cmd("DATA").last == (
            "554 5.5.1 Transaction failed: no valid recipients")
    assert server.total_messages() == 0


def test_a_second_path_after_a_bare_one_is_a_bad_parameter(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:s@x.test").code == 250
        # Neither is a parameter (esmtp-keyword has no "<" or "@").
        for arg in ("alice@example.test <bob@example.test>",
                    "alice@example.test bob@example.test"):
            r = c.cmd(f"RCPT TO:{arg}")
            assert r.last == ("501 5.5.4 Syntax error in parameter: RCPT "
                              "TO parameters"), r
        assert c.cmd("DATA").code == 554
    assert server.total_messages() == 0


def test_bare_rcpt_obeys_the_relay_rules(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:s@x.test").code == 250
        r = c.cmd("RCPT TO:victim@elsewhere.test")
        assert (r.code, r.enh) == (550, "5.7.1"), r
        r = c.cmd("RCPT TO:<victim@elsewhere.test>")
        assert (r.code, r.enh) == (550, "5.7.1"), r
        bare = c.cmd("RCPT TO:victim%elsewhere.test@example.test")
        inside = c.cmd("RCPT TO:<victim%elsewhere.test@example.test>")
        assert bare.code == inside.code == 550, (bare, inside)
        assert bare.enh == inside.enh
        assert c.cmd("DATA").code == 554
    assert server.total_messages() == 0


def test_bracketed_source_route_is_still_dropped(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<@relay.test:s@x.test>")
        assert r.last == "250 2.1.0 Sender <s@x.test> OK"
        r = c.cmd("RCPT TO:<@relay.test,@b.test:alice@example.test>")
        assert r.last == "250 2.1.5 Recipient <alice@example.test> OK"


def test_strict_envelopes_refuses_bare_paths_as_before(make_server):
    srv = strict(make_server)
    with smtplib.SMTP(srv.host, srv.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.docmd("MAIL", "FROM:s@x.test SIZE=100") == (
            501, b"5.1.7 Bad sender address syntax: s@x.test SIZE=100")
        assert s.docmd("MAIL", "FROM: s@x.test") == (
            501, b"5.1.7 Bad sender address syntax: s@x.test")
        assert s.docmd("MAIL", "FROM:<s@x.test>")[0] == 250
        assert s.docmd("RCPT", "TO:alice@example.test") == (
            501, b"5.1.3 Bad recipient address syntax: alice@example.test")
        assert s.docmd("RCPT", "TO:postmaster") == (
            501, b"5.1.3 Bad recipient address syntax: postmaster")
    assert srv.total_messages() == 0


def test_bare_postmaster_is_a_recipient(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:s@x.test").code == 250
        assert c.cmd("RCPT TO:Postmaster").last == (
            "250 2.1.5 Recipient <Postmaster> OK")


def test_strict_envelopes_is_reread_on_reload(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:s@x.test").code == 250
    server.sections["server"]["strict_envelopes"] = "true"
    server.write_config()
    r = subprocess.run([POSTERN, "ctl", "reload", "-c", str(server.conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:s@x.test").last == (
            f"{SENDER_SYNTAX}s@x.test")


# --- the sending side ----------------------------------------------------------

@pytest.fixture
def peer():
    p = Peer().start()
    yield p
    p.stop()
    p.assert_clean()


def test_long_verp_sender_and_recipient_are_sent_on_in_brackets(
        make_server, peer):
    # alice's own VERP address (a subaddress), as a list manager on the
    # submission port would send it, to a recipient with a long local part.
    sender = "alice+" + "b" * 190 + "=remote.test@example.test"
    rcpt = "r" * 200 + "@remote.test"
    srv = outbound_server(make_server, routes={"remote.test": peer.address})
    submit(srv, rcpt, sender=sender)
    [t] = peer.wait_messages(1)
    assert t.mail_from == sender
    assert [r.address for r in t.rcpts] == [rcpt]
    cmds = [c.line for c in t.conn.commands
            if c.verb in ("MAIL", "RCPT")]
    assert cmds[0].startswith(f"MAIL FROM:<{sender}>"), cmds
    assert cmds[1].startswith(f"RCPT TO:<{rcpt}>"), cmds


def test_postern_send_takes_a_long_verp_sender(server):
    r = subprocess.run([POSTERN, "send", "-c", str(server.conf), "-f", VERP,
                        "alice@example.test"],
                       input=b"Subject: hi\n\nhello\n", capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r
    [f] = server.wait_messages("alice@example.test", 1)
    assert f.read_bytes().startswith(b"Return-Path: <%s>\n" % VERP.encode())
    r = subprocess.run([POSTERN, "send", "-c", str(server.conf), "-f",
                        "s" * 253 + "@x", "alice@example.test"],
                       input=b"Subject: hi\n\nhello\n", capture_output=True,
                       timeout=60)
    assert r.returncode == 1 and b"not a valid address" in r.stderr, r
