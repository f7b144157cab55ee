"""Local submission: `postern send` and the same program called as
`sendmail` (docs/design/outbound.md, "postern send / sendmail").  The
message goes through SPOOL/maildrop, the server picks it up (at once when
poked through the control socket, else within 5 s) and it lands in the
Maildir like mail from the submission port.
"""
import os
import subprocess

from postern_test import POSTERN, poll

ALICE = "alice@example.test"
BOB = "bob@example.test"


def send(srv, *args, data=b"Subject: hi\n\nhello\n", prog=None):
    argv = [prog or POSTERN] + ([] if prog else ["send"])
    return subprocess.run(argv + ["-c", str(srv.conf), *args], input=data,
                          capture_output=True, timeout=60)


def delivered(srv, address, n=1):
    return [p.read_bytes() for p in srv.wait_messages(address, n)]


def header_block(msg):
    return msg.partition(b"\n\n")[0]


def maildrop_files(srv):
    d = srv.spool / "maildrop"
    return sorted(p.name for p in d.iterdir() if p.is_file()) \
        if d.is_dir() else []


def test_send_lands_in_the_maildir_with_the_headers_it_adds(server):
    r = send(server, ALICE, data=b"Subject: hi\r\n\r\nline one\nline two\n")
    assert r.returncode == 0, r
    assert r.stdout == b"" and r.stderr == b""
    [msg] = delivered(server, ALICE)
    head = header_block(msg)
    assert head.startswith(b"Return-Path: <")
    assert b"\nReceived: by mx.example.test (postern send, uid %d);" % \
        os.getuid() in head
    for name in (b"From:", b"Date:", b"Message-ID:", b"Subject: hi"):
        assert b"\n" + name in head, head
    assert msg.endswith(b"\n\nline one\nline two\n")
    assert b"\r" not in msg
    server.wait_log(r"ev=pickup qid=\S+ file=\S+ from=\S+ rcpts=1")
    poll(lambda: maildrop_files(server) == [], what="the file removed")


def test_existing_from_date_and_message_id_are_kept(server):
    text = (b"From: Someone <some@one.test>\nDate: Mon, 1 Jan 2024 "
            b"00:00:00 +0000\nMessage-ID: <mine@one.test>\n\nbody\n")
    assert send(server, ALICE, data=text).returncode == 0
    [msg] = delivered(server, ALICE)
    head = header_block(msg)
    assert head.count(b"\nFrom:") == 1 and b"Someone" in head
    assert head.count(b"\nDate:") == 1
    assert head.count(b"\nMessage-ID:") == 1 and b"<mine@one.test>" in head


def test_t_takes_to_cc_and_bcc_and_removes_bcc(server):
    text = (b"To: Alice <alice@example.test>,\n  \"Doe, B\" <bob@example.test>"
            b"\nCc: postmaster (the boss)\nBcc: carol@example.test\n"
            b"Subject: three\n\nbody\n")
    r = send(server, "-t", data=text)
    assert r.returncode == 0, r
    [a] = delivered(server, ALICE)
    # carol is forwarded to bob: bob gets one copy for each.
    bobs = delivered(server, BOB, 2)
    [pm] = delivered(server, "postmaster@example.test")
    for msg in [a, pm] + bobs:
        assert b"Bcc" not in msg
        assert b"carol" not in msg
        assert b"Subject: three" in msg


def test_t_with_no_recipient_is_a_usage_error(server):
    r = send(server, "-t", data=b"Subject: nobody\n\nx\n")
    assert r.returncode == 2
    assert b"no recipients" in r.stderr
    assert maildrop_files(server) == []


def test_f_sets_the_envelope_sender_and_F_the_from_name(server):
    r = send(server, "-f", "robot@example.test", "-F", "The Robot", ALICE)
    assert r.returncode == 0, r
    [msg] = delivered(server, ALICE)
    assert msg.startswith(b"Return-Path: <robot@example.test>\n")
    assert b"\nFrom: \"The Robot\" <robot@example.test>\n" in msg


def test_default_sender_is_the_user_at_the_first_local_domain(server):
    import pwd
    me = pwd.getpwuid(os.getuid()).pw_name
    assert send(server, ALICE).returncode == 0
    [msg] = delivered(server, ALICE)
    assert msg.startswith(b"Return-Path: <%s@example.test>\n" % me.encode())


def test_a_lone_dot_ends_the_input_unless_i(server):
    text = b"Subject: dots\n\nbefore\n.\nafter\n"
    assert send(server, ALICE, data=text).returncode == 0
    [msg] = delivered(server, ALICE)
    assert msg.endswith(b"\n\nbefore\n")
    assert send(server, "-i", ALICE, data=text).returncode == 0
    assert send(server, "-oi", ALICE, data=text).returncode == 0
    msgs = [m for m in delivered(server, ALICE, 3) if m != msg]
    assert len(msgs) == 2
    for m in msgs:
        assert m.endswith(b"\n\nbefore\n.\nafter\n")


def test_unknown_local_user_exits_1_with_one_line(server):
    r = send(server, "nobody@example.test")
    assert r.returncode == 1
    assert r.stderr.decode() == (
        "postern send: no such user nobody@example.test: add them to "
        f"{server.dir / 'users'} or fix the address\n")
    assert maildrop_files(server) == []


def test_refusals_exit_1_and_usage_errors_exit_2(server):
    r = send(server, "dave@example.test")         # forwards: refuse
    assert r.returncode == 1 and b"has moved to dave@elsewhere" in r.stderr
    r = send(server, "not an address@@")
    assert r.returncode == 1 and b"not a valid address" in r.stderr
    r = send(server, ALICE, data=b"Subject: x\n\nnul\0here\n")
    assert r.returncode == 1 and b"NUL" in r.stderr
    assert send(server).returncode == 2           # no recipient
    assert send(server, "-X", ALICE).returncode == 2
    assert send(server, "-bs").returncode == 2
    h = subprocess.run([POSTERN, "send", "--help"], capture_output=True)
    assert h.returncode == 0 and b"-t " in h.stdout and b"-oi" in h.stdout
    assert maildrop_files(server) == []


def test_over_max_message_size_exits_1(make_server):
    srv = make_server(server={"max_message_size": 2048})
    r = send(srv, ALICE, data=b"Subject: big\n\n" + (b"x" * 60 + b"\n") * 100)
    assert r.returncode == 1
    assert b"max_message_size" in r.stderr
    assert maildrop_files(srv) == []


def test_options_programs_pass_are_accepted(server):
    r = send(server, "-odi", "-oem", "-em", "-U", "-B", "8BITMIME", "-oi",
             "--", ALICE)
    assert r.returncode == 0, r
    delivered(server, ALICE)


def test_queued_while_stopped_is_delivered_after_start(make_server):
    srv = make_server(start=False)
    r = send(srv, ALICE)
    assert r.returncode == 0, r
    assert r.stderr == b""                        # not a terminal: quiet
    assert len(maildrop_files(srv)) == 1
    srv.start()
    delivered(srv, ALICE)
    poll(lambda: maildrop_files(srv) == [], what="the file removed")


def test_invoked_through_a_symlink_named_sendmail(server, tmp_path):
    link = tmp_path / "sendmail"
    link.symlink_to(POSTERN)
    r = subprocess.run([str(link), "-C", str(server.conf), "-t", "-i"],
                       input=b"To: alice@example.test\nSubject: s\n\nok\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    [msg] = delivered(server, ALICE)
    assert msg.endswith(b"\n\nok\n")
    r = subprocess.run([str(link), "-C", str(server.conf), "zed"],
                       input=b"x\n", capture_output=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith(b"sendmail: no such user zed@example.test")


def test_recipient_refused_at_pickup_is_dropped_others_delivered(server):
    d = server.spool / "maildrop"
    (d / "tmp" / "race").write_bytes(
        b"postern-maildrop 1\nsender a@example.test\n"
        b"rcpt gone@example.test\nrcpt alice@example.test\n\n"
        b"Subject: race\r\n\r\nx\r\n")
    os.rename(d / "tmp" / "race", d / "race")
    delivered(server, ALICE)
    server.wait_log(r"err ev=pickup_rcpt_refused file=race "
                    r"rcpt=gone@example.test reason=user_unknown")


def test_damaged_maildrop_file_moves_to_bad(server):
    d = server.spool / "maildrop"
    (d / "junk").write_bytes(b"hello\n")
    server.wait_log(r"err ev=pickup_bad file=junk reason=")
    assert (d / "bad" / "junk").read_bytes() == b"hello\n"
    assert maildrop_files(server) == []
