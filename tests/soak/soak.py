#!/usr/bin/python3
"""soak.py - many kill -9s on one spool, then the delivery promises.

Each round starts the real postern (POSTERN, else build/postern) on the
same spool and the same Maildirs under one directory, lets several client
threads send as fast as they can - on the smtp port to the local users,
on the submission port (STARTTLS, AUTH as alice) to local users and to
remote.test, which [delivery] routes sends to a Peer on loopback - and
kills the server with SIGKILL at a random moment mid-traffic.  After the
last round the server is started until it has drained (every acknowledged
message delivered, the outgoing queue empty), stopped with SIGTERM, and
started once more to show the spool has nothing left to recover.

Every message has a unique marker (its Subject) and a body that is a
function of the marker alone, so any delivered copy can be checked
whole.  What must hold (docs/design/spool.md, RFC 5321 section 6.1):

  local    a message with a 250 is in each local recipient's Maildir
           exactly once (file names carry Q<QID>R<idx>), intact
  remote   a message with a 250 reached the peer at least once for each
           remote recipient, intact; extra copies are counted, not failed
  unacked  a message whose final dot went out but whose reply was lost in
           the kill may have been committed: it is counted when delivered,
           and then must be delivered whole (every recipient, local ones
           once); a message that never got its 354, or was refused, must
           not be delivered at all
  server   no sanitizer report, no exit on its own, SIGTERM exits 0

    tests/soak/soak.py --rounds 50 --clients 4 --seed 7
    POSTERN=build-asan/postern tests/soak/soak.py --rounds 4

The seed fixes the kill times, recipients and message sizes; the thread
interleaving, and so the exact counts, differ from run to run.  Exit 0
when every promise holds, 1 otherwise; the directory is kept on failure
(and with --keep) and its path printed.
"""
import argparse
import base64
import functools
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

from postern_test import (ConnectionClosed, Server, SmtpClient,  # noqa: E402
                          SANITIZER_MARKS, insecure_tls_context, poll,
                          queue_id, split_message)
from smtp_peer import (ALICE, ALICE_PASSWORD, Peer,  # noqa: E402
                       outbound_server, queue_list, start_with_submission)

LOCAL = ["alice@example.test", "bob@example.test"]
REMOTE = ["some@remote.test", "other@remote.test"]
# What a client on each port sends to: the smtp port takes local mail
# only (relaying needs AUTH), submission takes both.
SMTP_SETS = [[LOCAL[0]], [LOCAL[1]], LOCAL]
SUBMISSION_SETS = [[REMOTE[0]], [LOCAL[0], REMOTE[0]], REMOTE,
                   [LOCAL[1], REMOTE[1], LOCAL[0]], [LOCAL[1]]]
PLAIN_SENDER = "sender@client.test"

MARKER_RE = re.compile(rb"^Subject: (soak-r\d+c\d+n\d+)\r?$", re.M)
MAILDIR_NAME_RE = re.compile(r"\.Q([0-9A-Za-z]+)R(\d+)\.")
RECOVERED_RE = re.compile(r"ev=recovered messages=(\d+)")
FILLER = ("The quick soak jumps over the lazy spool; fdatasync, rename, "
          "recover, repeat. 0123456789 abcdefghijklmnopqrstuvwxyz ") * 4

# Message states, as far as the client saw them.
BEGUN = "begun"        # no 354 yet: no text was sent, never deliverable
DATA = "data"          # text (maybe all of it) sent, no final reply seen
ACKED = "acked"        # 250 after the dot
REFUSED = "refused"    # a negative reply: not to be delivered


@functools.lru_cache(maxsize=4096)
def body_for(marker):
    """The body (CRLF lines) of marker's message: a function of the
    marker, one in twenty large (about 100 kB), some lines that need
    dot-stuffing and some empty ones."""
    rng = random.Random(marker)
    n = rng.randint(800, 1500) if rng.random() < 0.05 else rng.randint(1, 40)
    lines = []
    for i in range(n):
        k = rng.randrange(0, 200)
        line = f"{marker} {i} {FILLER[k:k + rng.randrange(0, 60)]}"
        if i % 17 == 5:
            line = "." + line
        elif i % 23 == 7:
            line = ""
        lines.append(line)
    lines.append(f"END {marker}")
    return "".join(ln + "\r\n" for ln in lines).encode()


@functools.lru_cache(maxsize=4096)
def body_lf(marker):
    return body_for(marker).replace(b"\r\n", b"\n")


def text_for(marker, sender, rcpts):
    head = (f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: {marker}\r\nMessage-ID: <{marker}@soak.test>\r\n\r\n")
    return head.encode() + body_for(marker)


def dot_stuff(text):
    out = re.sub(rb"(?m)^\.", b"..", text)
    return out + b".\r\n"


class Record:
    """One message as its client saw it."""
    __slots__ = ("marker", "rcpts", "round", "state", "qid", "reply")

    def __init__(self, marker, rcpts, round_no):
        self.marker = marker
        self.rcpts = rcpts
        self.round = round_no
        self.state = BEGUN
        self.qid = None
        self.reply = None


class Client(threading.Thread):
    """Sends messages over sessions of 1-30 transactions each until the
    server goes away; records every message it starts."""

    def __init__(self, srv, round_no, idx, rng, killed, submission):
        super().__init__(daemon=True, name=f"soak-r{round_no}c{idx}")
        self.srv = srv
        self.round = round_no
        self.idx = idx
        self.rng = rng
        self.killed = killed
        self.submission = submission
        self.port = srv.sub_port if submission else srv.port
        self.sender = ALICE if submission else PLAIN_SENDER
        self.sets = SUBMISSION_SETS if submission else SMTP_SETS
        self.records = []
        self.n = 0
        self.error = None

    def run(self):
        try:
            while True:
                self.session()
        except ConnectionClosed as e:
            self.gone(e)
        except OSError as e:  # reset, refused, broken pipe, TLS EOF
            self.gone(e)
        except BaseException as e:  # noqa: BLE001 - reported as a failure
            self.error = "".join(traceback.format_exception(e)).strip()

    def gone(self, e):
        if not self.killed.is_set():
            self.error = (f"connection lost while the server ran: "
                          f"{type(e).__name__}: {e}")

    def session(self):
        with SmtpClient(self.srv.host, self.port) as c:
            if c.banner.code != 220:
                raise AssertionError(f"banner {c.banner!r}")
            c.ehlo()
            if self.submission:
                r = c.cmd("STARTTLS")
                if r.code != 220:
                    raise AssertionError(f"STARTTLS: {r!r}")
                c.sock = insecure_tls_context().wrap_socket(
                    c.sock, server_hostname="mx.example.test")
                c.buf = b""
                c.ehlo()
                secret = base64.b64encode(
                    f"\0{ALICE}\0{ALICE_PASSWORD}".encode()).decode()
                r = c.cmd(f"AUTH PLAIN {secret}")
                if r.code != 235:
                    raise AssertionError(f"AUTH: {r!r}")
            for _ in range(self.rng.randint(1, 30)):
                self.message(c)
            r = c.cmd("QUIT")
            if r.code != 221:
                raise AssertionError(f"QUIT: {r!r}")

    def message(self, c):
        marker = f"soak-r{self.round}c{self.idx}n{self.n}"
        self.n += 1
        rcpts = list(self.rng.choice(self.sets))
        rec = Record(marker, rcpts, self.round)
        self.records.append(rec)
        steps = [f"MAIL FROM:<{self.sender}>"] + \
            [f"RCPT TO:<{a}>" for a in rcpts]
        for step in steps:
            r = c.cmd(step)
            if r.code not in (250, 251):
                return self.refused(c, rec, r)
        r = c.cmd("DATA")
        if r.code != 354:
            return self.refused(c, rec, r)
        rec.state = DATA
        c.send(dot_stuff(text_for(marker, self.sender, rcpts)))
        r = c.reply()
        if r.code != 250:
            rec.state, rec.reply = REFUSED, r.last
            return None
        rec.qid = queue_id(r)
        rec.state = ACKED
        return None

    @staticmethod
    def refused(c, rec, r):
        rec.state, rec.reply = REFUSED, r.last
        c.cmd("RSET")


class Soak:
    def __init__(self, args, workdir):
        self.args = args
        self.dir = workdir
        self.rng = random.Random(args.seed)
        self.records = []
        self.violations = []
        self.rounds_done = 0
        self.peer = Peer().start()
        spool = {}
        if args.segment_size is not None:
            spool["segment_size"] = args.segment_size

        def make(start=False, **kw):
            return Server(workdir, **kw)
        self.srv = outbound_server(make, routes={"remote.test":
                                                 self.peer.address},
                                   start=False, spool=spool)
        self.starts = 0

    def fail(self, what):
        self.violations.append(what)

    # -- the server

    def start(self, label):
        """Starts the server with a log file of its own; returns the
        number of messages it recovered."""
        self.starts += 1
        self.srv.log_path = self.dir / f"postern-{self.starts:03d}-{label}.log"
        start_with_submission(self.srv)
        m = RECOVERED_RE.search(self.srv.log())
        return int(m.group(1)) if m else 0

    def check_log(self, label):
        text = self.srv.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                self.fail(f"{label}: sanitizer report in "
                          f"{self.srv.log_path.name}:\n{text[-4000:]}")
                return

    def segments(self):
        return len(list(self.srv.spool.glob("*.log")))

    # -- one round

    def round(self, n):
        recovered = self.start(f"r{n}")
        killed = threading.Event()
        clients = [Client(self.srv, n, i,
                          random.Random(f"{self.args.seed}-{n}-{i}"),
                          killed, submission=i % 2 == 1)
                   for i in range(self.args.clients)]
        t0 = time.monotonic()
        for c in clients:
            c.start()
        # Traffic first, then a random moment inside it.
        poll(lambda: any(r.state == ACKED for c in clients
                         for r in c.records) or
             not all(c.is_alive() for c in clients),
             timeout=30, what=f"round {n}: the first 250")
        # The random moment is the point here, not a wait for something;
        # it ends early only if the server dies by itself.
        end = time.monotonic() + self.rng.uniform(self.args.min_up,
                                                  self.args.max_up)
        while time.monotonic() < end and self.srv.proc.poll() is None:
            time.sleep(0.02)
        alive = self.srv.proc.poll() is None
        t_kill = time.monotonic() - t0
        killed.set()
        if not alive:
            self.fail(f"round {n}: postern exited by itself with "
                      f"{self.srv.proc.returncode}:\n{self.srv.log_tail()}")
        self.srv.kill9()
        for c in clients:
            c.join(30)
            if c.is_alive():
                self.fail(f"round {n}: client {c.idx} still running 30 s "
                          f"after the kill")
            if c.error:
                self.fail(f"round {n}: client {c.idx}: {c.error}")
            self.records += c.records
        self.check_log(f"round {n}")
        recs = [r for c in clients for r in c.records]
        acked = [r for r in recs if r.state == ACKED]
        print(f"round {n}/{self.args.rounds}: up={t_kill:.2f}s "
              f"recovered={recovered} sent={len(recs)} acked={len(acked)} "
              f"(local rcpts {sum(a in LOCAL for r in acked for a in r.rcpts)}"
              f", remote rcpts "
              f"{sum(a in REMOTE for r in acked for a in r.rcpts)}) "
              f"no-reply={sum(r.state == DATA for r in recs)} "
              f"refused={sum(r.state == REFUSED for r in recs)} "
              f"segments={self.segments()}", flush=True)
        self.rounds_done = n

    # -- what was delivered

    def local_files(self):
        """{(qid, mailbox): [paths]} over the local Maildirs."""
        out = {}
        for rcpt in LOCAL:
            for f in self.srv.message_files(rcpt):
                m = MAILDIR_NAME_RE.search(f.name)
                if not m:
                    self.fail(f"unexpected Maildir file {f}")
                    continue
                out.setdefault((m.group(1), rcpt), []).append(f)
        return out

    def peer_seen(self):
        """{(marker, address): [transactions]} of the peer's messages."""
        out = {}
        for t in self.peer.messages:
            m = MARKER_RE.search(t.data)
            key = m.group(1).decode() if m else None
            for a in t.delivered_to:
                out.setdefault((key, a.lower()), []).append(t)
        return out

    def drained(self, want_local, want_remote):
        have = self.local_files()
        if any(k not in have for k in want_local):
            return False
        seen = self.peer_seen()
        if any(k not in seen for k in want_remote):
            return False
        return queue_list(self.srv) == {}

    def missing(self, want_local, want_remote):
        """What a drain that ran out of time still waits for."""
        have = self.local_files()
        seen = self.peer_seen()
        queued = len(queue_list(self.srv)) if self.srv.running() else "?"
        return (f"{sum(k not in have for k in want_local)} local and "
                f"{sum(k not in seen for k in want_remote)} remote "
                f"deliveries missing, {queued} messages queued")

    def drain(self):
        """Starts until a start finds nothing to recover; returns the
        number of starts it took."""
        acked = [r for r in self.records if r.state == ACKED]
        want_local = {(r.qid, a) for r in acked for a in r.rcpts
                      if a in LOCAL}
        want_remote = {(r.marker, a) for r in acked for a in r.rcpts
                       if a in REMOTE}
        deadline = time.monotonic() + self.args.drain_timeout
        for n in range(1, 6):
            recovered = self.start(f"drain{n}")
            print(f"drain start {n}: recovered={recovered}", flush=True)
            if n > 1 and recovered == 0:
                break
            left = max(1.0, deadline - time.monotonic())
            try:
                poll(lambda: self.drained(want_local, want_remote), left,
                     interval=0.3, what="every acknowledged message "
                     "delivered and the queue empty")
            except AssertionError as e:
                self.fail(f"drain: {e}: "
                          f"{self.missing(want_local, want_remote)}")
                self.stop(f"drain start {n}")
                return
            self.stop(f"drain start {n}")
        else:
            self.fail("the spool still held messages after 5 drain starts")
        self.stop("the last start")

    def stop(self, label):
        try:
            self.srv.stop()
        except AssertionError as e:
            self.fail(f"{label}: {e}")
        self.check_log(label)

    # -- the verdict

    def verdict(self):
        by_marker = {r.marker: r for r in self.records}
        qids = [r.qid for r in self.records if r.state == ACKED]
        if len(qids) != len(set(qids)):
            self.fail("a queue id was given to two messages")
        # marker -> {address: copies}, checking each copy on the way
        copies = {}
        qid_of = {}
        for (qid, rcpt), files in self.local_files().items():
            for f in files:
                data = f.read_bytes()
                m = MARKER_RE.search(split_message(data)[0])
                if not m:
                    self.fail(f"{f}: not a soak message: {data[:200]!r}")
                    continue
                marker = m.group(1).decode()
                if qid_of.setdefault(marker, qid) != qid:
                    self.fail(f"{marker} delivered under two queue ids "
                              f"{qid_of[marker]} and {qid}")
                if split_message(data)[1] != body_lf(marker):
                    self.fail(f"{f}: body of {marker} not intact")
                c = copies.setdefault(marker, {})
                c[rcpt] = c.get(rcpt, 0) + 1
        for (marker, rcpt), ts in self.peer_seen().items():
            if marker is None:
                self.fail(f"the peer got a message that is not a soak "
                          f"message: {ts[0].data[:200]!r}")
                continue
            for t in ts:
                if split_message(t.data.replace(b"\r\n", b"\n"))[1] != \
                        body_lf(marker):
                    self.fail(f"{marker} reached the peer cut or changed")
            c = copies.setdefault(marker, {})
            c[rcpt] = c.get(rcpt, 0) + len(ts)
        s = {"local_acked": 0, "local_delivered": 0, "local_lost": 0,
             "local_dup": 0, "remote_acked": 0, "remote_delivered": 0,
             "remote_lost": 0, "remote_dup": 0, "unacked_delivered": 0}
        for marker, c in copies.items():
            r = by_marker.get(marker)
            if r is None:
                self.fail(f"{marker} delivered but never sent")
                continue
            stray = set(c) - set(r.rcpts)
            if stray:
                self.fail(f"{marker} delivered to {sorted(stray)}, which "
                          f"were not its recipients")
            if r.state == BEGUN:
                self.fail(f"{marker} delivered though its text was never "
                          f"sent (no 354)")
            elif r.state == REFUSED:
                self.fail(f"{marker} delivered though the server refused "
                          f"it: {r.reply}")
            if r.qid is not None and qid_of.get(marker, r.qid) != r.qid:
                self.fail(f"{marker} acked as {r.qid} but delivered as "
                          f"{qid_of[marker]}")
        for r in self.records:
            c = copies.get(r.marker, {})
            if r.state == DATA and c:
                s["unacked_delivered"] += 1
                missing = [a for a in r.rcpts if not c.get(a)]
                if missing:
                    self.fail(f"{r.marker} (no reply seen) delivered to "
                              f"some recipients but not {missing}")
            if r.state not in (ACKED, DATA):
                continue
            for a in r.rcpts:
                kind = "local" if a in LOCAL else "remote"
                n = c.get(a, 0)
                if n > 1:
                    s[f"{kind}_dup"] += n - 1
                if r.state != ACKED:
                    continue
                s[f"{kind}_acked"] += 1
                if n:
                    s[f"{kind}_delivered"] += 1
                else:
                    s[f"{kind}_lost"] += 1
        if s["local_lost"] or s["remote_lost"]:
            lost = [f"{r.marker}/{r.qid}->{a}" for r in self.records
                    if r.state == ACKED for a in r.rcpts
                    if not copies.get(r.marker, {}).get(a)]
            self.fail(f"acknowledged but not delivered: {lost[:20]}")
        if s["local_dup"]:
            dup = [f"{m}->{a} x{n}" for m, c in copies.items()
                   for a, n in c.items() if a in LOCAL and n > 1]
            self.fail(f"local mail delivered more than once: {dup[:20]}")
        try:
            self.peer.assert_clean()
        except AssertionError as e:
            self.fail(str(e))
        return s


def summary_line(args, soak, s, acked):
    return (f"soak: rounds={soak.rounds_done} acked={acked} "
            f"local: delivered={s['local_delivered']} "
            f"lost={s['local_lost']} dup={s['local_dup']} "
            f"remote: delivered={s['remote_delivered']} "
            f"lost={s['remote_lost']} dup={s['remote_dup']} "
            f"unacked-delivered={s['unacked_delivered']} "
            f"violations={len(soak.violations)} seed={args.seed}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--clients", type=int, default=4,
                   help="client threads per round; odd ones use submission")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true",
                   help="keep the directory (spool, Maildirs, logs)")
    p.add_argument("--dir", type=Path, default=None,
                   help="work here (must be empty or absent; never removed)")
    p.add_argument("--segment-size", type=int, default=None,
                   help="[spool] segment_size in octets (written only when "
                   "given)")
    p.add_argument("--min-up", type=float, default=0.3,
                   help="seconds of traffic before the kill, at least")
    p.add_argument("--max-up", type=float, default=1.5)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    if args.rounds < 1 or args.clients < 1 or args.min_up > args.max_up:
        p.error("need --rounds >= 1, --clients >= 1, --min-up <= --max-up")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        workdir = args.dir
    else:
        workdir = Path(tempfile.mkdtemp(prefix="postern-soak-"))
    print(f"soak: seed={args.seed} rounds={args.rounds} "
          f"clients={args.clients} dir={workdir} "
          f"postern={os.environ.get('POSTERN') or 'build/postern'}",
          flush=True)
    t0 = time.monotonic()
    soak = Soak(args, workdir)
    s = None
    try:
        for n in range(1, args.rounds + 1):
            soak.round(n)
        soak.drain()
        s = soak.verdict()
    except AssertionError as e:  # a poll ran out, a start failed
        soak.fail(f"aborted: {e}")
    finally:
        if soak.srv.running():
            soak.srv.kill9()
        soak.peer.stop()
    if s is None:
        s = dict.fromkeys(["local_delivered", "local_lost", "local_dup",
                           "remote_delivered", "remote_lost", "remote_dup",
                           "unacked_delivered"], "?")
    for v in soak.violations[:30]:
        print(f"FAIL: {v}")
    if len(soak.violations) > 30:
        print(f"FAIL: ... and {len(soak.violations) - 30} more")
    acked = sum(r.state == ACKED for r in soak.records)
    print(summary_line(args, soak, s, acked) +
          f" time={time.monotonic() - t0:.0f}s", flush=True)
    if args.dir is None:
        if args.keep or soak.violations:
            print(f"soak: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if soak.violations else 0


if __name__ == "__main__":
    sys.exit(main())
