"""Postfix's smtp-source against postern: 1,000 messages over 10 sessions
must all land in Maildir, each read back by a real reader (Python's
mailbox.Maildir) with the body intact byte for byte (issue 3, Tests).
Speed is measured in bench/, not here; the timeouts are only a safety net.
"""
import email.utils
import mailbox
import os
import shutil
import socket
import subprocess
import threading

import pytest

from postern_test import POSTERN, queue_id

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
pytestmark = pytest.mark.skipif(not os.access(SMTP_SOURCE, os.X_OK),
                                reason="smtp-source (postfix) not installed")


def smtp_source_body(length):
    """The text smtp-source -l LENGTH sends after its headers, with LF line
    ends as postern stores it: lines of a digit and 77 X, the digit
    counting lines mod 10, then the remaining X and a final line end
    (postfix src/smtpstone/smtp-source.c)."""
    data = bytearray(b"X" * length)
    for i in range(80, length, 80):
        data[i - 80] = ord("0123456789"[(i // 80) % 10])
        data[i - 2:i] = b"\r\n"
    return (bytes(data) + b"\r\n").replace(b"\r\n", b"\n")


def test_smtp_source_1000_messages_over_10_sessions_all_intact(make_server):
    srv = make_server()
    length = 4096
    p = subprocess.run(
        [SMTP_SOURCE, "-s", "10", "-m", "1000", "-l", str(length),
         "-f", "a@x.test", "-t", "alice@example.test",
         f"127.0.0.1:{srv.port}"],
        capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    srv.wait_messages("alice@example.test", 1000, timeout=300)
    md = mailbox.Maildir(str(srv.maildir("alice@example.test")),
                         create=False)
    msgs = {key: md[key] for key in md.keys()}
    assert len(msgs) == 1000
    want = smtp_source_body(length)
    qids, message_ids = set(), set()
    for key, m in msgs.items():
        assert m["Return-Path"] == "<a@x.test>"
        assert m["Delivered-To"] == "alice@example.test"
        assert m["From"] == "<a@x.test>"
        assert m["To"] == "<alice@example.test>"
        assert email.utils.parsedate_to_datetime(m["Date"]) is not None
        received = " ".join(m["Received"].split())
        assert " (postern) with SMTP id " in received, received
        qids.add(received.split(" id ")[1].split()[0].rstrip(";"))
        message_ids.add(m["Message-Id"])
        body = md.get_bytes(key).split(b"\n\n", 1)[1]
        assert body == want, f"{key}: body differs"
    assert len(qids) == 1000
    assert len(message_ids) == 1000
    srv.stop()
    assert srv.log_count(r"ev=queued ") == 1000
    assert srv.log_count(r"ev=delivered ") == 1000


def test_many_concurrent_sessions_each_get_their_own_replies(make_server):
    """50 sessions at once, each sending 5 messages with its own marker:
    every reply belongs to its own session and every body to its QID."""
    srv = make_server(server={"max_connections_per_client": 100})
    results, errors = {}, []

    def run(n):
        try:
            with srv.client() as c:
                c.ehlo(f"client{n}.test")
                for i in range(5):
                    body = f"Subject: {n}-{i}\r\n\r\nsession {n} message {i}\r\n"
                    results[queue_id(c.mail_txn(
                        f"s{n}@x.test", ["bob@example.test"], body))] = (n, i)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(results) == 250
    srv.wait_messages("bob@example.test", 250, timeout=120)
    for qid, (n, i) in results.items():
        [f] = [f for f in srv.message_files("bob@example.test")
               if f".Q{qid}R0." in f.name]
        data = f.read_bytes()
        assert data.startswith(f"Return-Path: <s{n}@x.test>\n".encode())
        assert f"Received: from client{n}.test ".encode() in data
        assert data.endswith(f"session {n} message {i}\n".encode())


def test_a_client_that_never_reads_its_replies_does_not_stall_others(
        make_server):
    srv = make_server()
    hog = socket.create_connection((srv.host, srv.port))
    try:
        hog.settimeout(5)
        hog.recv(1024)  # banner
        hog.sendall(b"EHLO hog.test\r\n")
        hog.recv(4096)
        # Thousands of pipelined NOOPs whose replies are never read.
        blob = b"NOOP\r\n" * 20000
        hog.setblocking(False)
        try:
            hog.send(blob)
        except BlockingIOError:
            pass
        with srv.client() as c:
            c.ehlo()
            queue_id(c.mail_txn("s@x.test", ["alice@example.test"], b"x\r\n"))
        srv.wait_messages("alice@example.test", 1)
    finally:
        hog.close()


def is_asan(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(is_asan(POSTERN), reason="ASan's quarantine holds freed "
                    "memory, so RSS says nothing about postern's own use")
def test_oversized_data_and_bdat_keep_memory_bounded(make_server):
    """Text past max_message_size is counted, not kept (session.c)."""
    srv = make_server(server={"max_message_size": 1 << 20})
    chunk = (b"x" * 78 + b"\r\n") * 1000  # 80 kB
    with srv.client() as c:
        c.ehlo()
        before = rss_kib(srv.proc.pid)
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        for _ in range(600):  # 48 MB
            c.send(chunk)
        c.send(b".\r\n")
        assert c.reply().code == 552
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT 100000000000 LAST\r\n")
        for _ in range(600):
            c.send(chunk)
        with srv.client() as d:  # the loop still serves others
            assert d.cmd("NOOP").code == 250
        grown = rss_kib(srv.proc.pid) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB for 96 MB of text"
