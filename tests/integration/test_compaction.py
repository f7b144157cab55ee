"""The spool holds what the queue holds (issue 14; docs/design/spool.md).

One message waits for a destination that refuses every connection while
more than two segments' worth of local mail is delivered: the spool's
files stay within what the queue needs + one segment ([spool]
segment_size) + the batch being written, `postern queue stats` says so
in figures that match the files, and the waiting message survives a
restart, once.
"""
import re

from postern_test import poll, spool_octets
from smtp_peer import outbound_server, queue, queue_list, submit

SEGMENT = 65536  # the smallest [spool] segment_size
BODY = b"Subject: local\r\n\r\n" + (b"x" * 98 + b"\r\n") * 20
N_LOCAL = 110  # about 3.5 segments of SEGMENT


def spool_files(srv):
    return spool_octets(srv.spool)


def stats(srv):
    out = queue(srv, "stats", check=0).stdout
    got = dict(re.findall(r"^spool (needed|on disk|compaction copied): "
                          r"(\d+) octets", out, re.M))
    assert set(got) == {"needed", "on disk", "compaction copied"}, out
    return {k: int(v) for k, v in got.items()}


def test_one_deferred_message_does_not_keep_delivered_mail(make_server,
                                                          dead_port):
    srv = outbound_server(make_server,  # every connection is refused
                          routes={"remote.test": f"127.0.0.1:{dead_port}"},
                          delivery={"retry": "3600"},
                          spool={"segment_size": SEGMENT})
    submit(srv, "far@remote.test")
    poll(lambda: queue_list(srv), what="the message deferred in the queue")
    most = 0
    with srv.client() as c:
        c.ehlo()
        for n in range(1, N_LOCAL + 1):
            assert c.mail_txn("a@x.test", ["alice@example.test"],
                              BODY).code == 250
            most = max(most, spool_files(srv))
            # Each message delivered before the next: then the queue
            # needs only the waiting message, however loaded the machine
            # (a delivery that lags keeps its segment, rightly).
            srv.wait_messages("alice@example.test", n)
    # The waiting message's record is a few hundred octets: the bound
    # is one segment beyond it, with one message's batch on top.
    batch = len(BODY) + 1024
    assert most <= 1024 + SEGMENT + batch, most

    # The waiting message's segment is compacted once it has been closed
    # a second (or sooner, when the dead octets pass a quarter segment).
    def settled():
        st = stats(srv)
        return st if st["on disk"] == spool_files(srv) and \
            st["needed"] < 1024 and st["compaction copied"] > 0 else None
    st = poll(settled, what="the waiting message's segment compacted, "
              "the figures matching the files")
    assert spool_files(srv) <= st["needed"] + SEGMENT, st
    srv.stop()
    srv.start()
    q = queue_list(srv)
    assert len(q) == 1 and "far@remote.test" in next(iter(q.values()))[
        "rcpts"], q
    assert len(srv.message_files("alice@example.test")) == N_LOCAL
