"""A spool disk that fills up, for real (REPLY-CODES.md rows 452 and
451): a tmpfs of 512 KiB mounted as the spool.  Below [spool] reserve,
MAIL gets 452 4.3.1; a SIZE= larger than what is free gets 452 4.3.1; a
write that fails for lack of space answers 452 4.3.1 and stores nothing;
once space is back, mail flows, and every message acknowledged before
is delivered exactly once.
"""
import os
import subprocess

import pytest

from postern_test import queue_id


@pytest.fixture
def small_spool(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs",
                        str(d)], capture_output=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): "
                    + p.stderr.decode().strip())
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(d, leave):
    """Fills the file system at d until about leave octets are free."""
    st = os.statvfs(d)
    free = st.f_bavail * st.f_frsize
    junk = d / "junk"
    with open(junk, "ab") as f:
        f.write(b"\0" * max(0, free - leave))
    return junk


def send(srv, size=4096):
    with srv.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@x.test>")
        if r.code != 250:
            return r
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        line = b"y" * 76 + b"\r\n"
        c.send(b"Subject: fill\r\n\r\n" + line * (size // len(line)) +
               b".\r\n")
        return c.reply()


def test_below_reserve_mail_gets_452_4_3_1(make_server, small_spool):
    srv = make_server(spool={"dir": str(small_spool), "reserve": 262144})
    assert send(srv).code == 250
    junk = fill(small_spool, 200 * 1024)
    r = send(srv)
    assert (r.code, r.enh) == (452, "4.3.1"), r
    junk.unlink()
    assert send(srv).code == 250
    srv.wait_messages("alice@example.test", 2)


def test_size_larger_than_free_space_gets_452_4_3_1(make_server,
                                                     small_spool):
    srv = make_server(spool={"dir": str(small_spool), "reserve": 0})
    with srv.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@x.test> SIZE=10000000")
        assert (r.code, r.enh) == (452, "4.3.1"), r
        assert c.cmd("MAIL FROM:<s@x.test> SIZE=1000").code == 250


def test_full_disk_write_gets_452_stores_nothing_and_loses_nothing(
        make_server, small_spool):
    srv = make_server(spool={"dir": str(small_spool), "reserve": 0})
    acked = [queue_id(send(srv)) for _ in range(3)]
    srv.wait_messages("alice@example.test", 3)
    junk = fill(small_spool, 16 * 1024)
    r = send(srv, size=64 * 1024)
    assert (r.code, r.enh) == (452, "4.3.1"), r  # ENOSPC: no room
    srv.wait_log(r"ev=spool_write_failed|ev=spool_failed")
    junk.unlink()
    acked.append(queue_id(send(srv, size=64 * 1024)))
    files = srv.wait_messages("alice@example.test", 4)
    names = " ".join(f.name for f in files)
    for qid in acked:
        assert names.count(f"Q{qid}R") == 1
    # A restart delivers nothing twice.
    srv.stop()
    srv.start()
    srv.wait_log(r"ev=started", count=2)
    assert len(srv.message_files("alice@example.test")) == 4
