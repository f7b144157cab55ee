#!/usr/bin/python3
"""compaction.py - what compaction costs and what it saves (issue 14).

For each mix of deferred and local mail, a fresh postern with a small
[spool] segment_size takes N messages on one submission session: every
k-th goes to a destination that refuses connections (it stays queued),
the rest to a local Maildir.  The spool's files are sampled after every
250; at the end, once local delivery is done and the committer settled,
`postern queue stats` gives what queued mail needs, what is on disk and
what compaction copied.  Reported per mix: octets accepted, needed at
the end, peak on disk, peak excess (the most on disk beyond the
records of the deferred mail accepted so far and of the local mail not
yet in Maildir, sampled every 10 messages; a record's size is taken
from what the deferred mail needs at the end: an upper bound of what
compaction has not yet reclaimed, since the Maildir is counted after
the spool), final on disk, copied, copied / accepted.

    /usr/bin/python3 bench/compaction.py [--postern build/postern]
        [--messages 3000] [--size 4096] [--segment-size 1048576]
        [--deferred 0,0.01,0.1,0.5]

A benchmark: nothing is asserted; tests/integration/test_compaction.py
holds the bound.
"""
import argparse
import os
import re
import smtplib
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "pylib"))

from postern_test import (AUTH_PASSWORD, Server, free_port,  # noqa: E402
                          insecure_tls_context, make_cert, poll,
                          spool_octets)

ALICE = "alice@example.test"


def stats(postern, conf):
    out = subprocess.run([postern, "queue", "stats", "-c", str(conf)],
                         capture_output=True, text=True, check=True).stdout
    got = dict(re.findall(r"^spool (needed|on disk|compaction copied): "
                          r"(\d+) octets", out, re.M))
    return {k: int(v) for k, v in got.items()}


def one_mix(args, frac, tmp):
    d = Path(tmp) / f"mix-{frac}"
    d.mkdir()
    cert, key = make_cert(d)
    hashed = subprocess.run(["openssl", "passwd", "-6", AUTH_PASSWORD],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
    sub = free_port()
    srv = Server(d / "srv", users=[f"{ALICE}: {hashed}"],
                 server={"submission": f"127.0.0.1:{sub}",
                         "max_message_size": 10 * args.size + 65536},
                 spool={"segment_size": args.segment_size},
                 tls={"cert": str(cert), "key": str(key)},
                 delivery={"retry": "3600", "routes": "routes"})
    (srv.dir / "routes").write_text(f"remote.test 127.0.0.1:{free_port()}\n")
    srv.start()
    line = b"y" * 76 + b"\r\n"
    body = b"Subject: bench\r\n\r\n" + line * max(1, args.size // len(line))
    every = round(1 / frac) if frac > 0 else 0
    peak = accepted = n_deferred = local_acked = 0
    samples = []  # (on disk, deferred so far, local not yet in Maildir)
    with smtplib.SMTP("127.0.0.1", sub, timeout=60) as s:
        s.ehlo("bench.test")
        s.starttls(context=insecure_tls_context())
        s.ehlo("bench.test")
        s.login(ALICE, AUTH_PASSWORD)
        for i in range(args.messages):
            rcpt = "far@remote.test" if every and i % every == 0 else ALICE
            s.sendmail(ALICE, [rcpt], body)
            accepted += len(body)
            n_deferred += rcpt != ALICE
            local_acked += rcpt == ALICE
            now = spool_octets(srv.spool)
            peak = max(peak, now)
            if i % 10 == 0:
                # Needed for sure: the deferred text, and the local mail
                # not yet in Maildir (counted after the files, so it is
                # never overestimated); what is on disk beyond that
                # bounds the excess from above.
                inflight = local_acked - len(srv.message_files(ALICE))
                samples.append((now, n_deferred, max(0, inflight)))
    n_local = args.messages - (len(range(0, args.messages, every))
                               if every else 0)
    srv.wait_messages(ALICE, n_local, timeout=120)

    def settled():
        st = stats(args.postern, srv.conf)
        return st if st["on disk"] == spool_octets(srv.spool) else None
    st = poll(settled, timeout=30, what="settled spool figures")
    srv.stop()
    # A record's octets (header, envelope, Received:, text), from what the
    # deferred messages need at the end; the local ones differ by a few
    # octets of envelope.
    rec = st["needed"] / n_deferred if n_deferred else len(body) + 300
    excess = max((int(d - (nd + fl) * rec) for d, nd, fl in samples),
                 default=0)
    return {"deferred": frac, "accepted": accepted, "needed": st["needed"],
            "peak": peak, "excess": excess, "final": st["on disk"],
            "copied": st["compaction copied"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postern", default=str(HERE.parent / "build" /
                                             "postern"))
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--segment-size", type=int, default=1 << 20)
    ap.add_argument("--deferred", default="0,0.01,0.1,0.5")
    args = ap.parse_args()
    os.environ["POSTERN"] = args.postern
    import postern_test
    postern_test.POSTERN = args.postern
    rows = []
    with tempfile.TemporaryDirectory(prefix="postern-compaction-") as tmp:
        for frac in (float(x) for x in args.deferred.split(",")):
            rows.append(one_mix(args, frac, tmp))
    print(f"{args.messages} messages of ~{args.size} octets, segment_size "
          f"{args.segment_size}")
    print("| deferred | accepted | needed | peak on disk | peak excess "
          "| final on disk | copied | copied/accepted |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['deferred']:.0%} | {r['accepted']} | {r['needed']} | "
              f"{r['peak']} | {r['excess']} | {r['final']} | "
              f"{r['copied']} | {r['copied'] / r['accepted']:.2f} |")


if __name__ == "__main__":
    main()
