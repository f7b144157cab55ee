"""outbound.py - the outbound relay benchmark: `run.py --only outbound`.

Issue 8: "Outbound relay to a local smtp-sink: at least 2x Postfix's
delivery rate with the same queue content".  The same queue content is
made the same way for both MTAs, then released, and only the release is
timed:

 1. Fill.  smtp-sink is NOT running, so 127.0.0.1:2726 refuses
    connections.  smtp-source sends N messages (default 5,000 of 4 KiB,
    one recipient each, 20 sessions with connection reuse) into the MTA,
    which tries to relay each one, gets "connection refused" and defers
    it.  postern: `[delivery] relayhost = 127.0.0.1:2726` and `retry =
    1, 3600`: one retry a second later, then an hour's wait, so nothing
    is retried by itself during the timed part; the recipient is
    fwd@bench.test, which the `[local] forwards` file answers with 251
    and relays to user@relay.test (postern refuses to relay for an
    unauthenticated client, and `postern send` is one process a
    message).  Postfix: the bench instance (postfix/main.cf.in) with
    `relayhost = [127.0.0.1]:2726`, the recipient user@relay.test
    (relaying allowed from mynetworks); qmgr marks the dead relay and
    moves every message to the deferred queue, with no retry for 300 s
    (Debian's queue_run_delay and minimal_backoff_time).  The fill is
    over when all N messages are deferred with their next try at least
    10 minutes away (`postern queue list`; files in Postfix's deferred/
    and nothing in incoming/ or active/), and 2 s later: a destination
    that refused rests for retry[0] seconds in postern (at most 60), and
    `postern queue flush` does not end that rest (postqueue -f does end
    Postfix's), hence retry[0] = 1.
 2. Release.  smtp-sink starts on 2726 (`-c`: it writes its message
    count after each message) and the clock starts; then `postern queue
    flush` or `postqueue -f` (which also makes qmgr forget the dead
    destination).  "relayed" stops the clock when smtp-sink has counted
    N messages; "queue empty" when the MTA's queue is empty as well
    (postern: `postern queue list` says 0 messages, i.e. every 250 is
    recorded; Postfix: no file left in incoming/, active/, deferred/).
    The headline rate is N / queue-empty time.

Both sides keep their shipped sending concurrency: postern's
max_connections_per_destination and Postfix's
default_destination_concurrency_limit are both 20 (Postfix starts a
destination at initial_destination_concurrency = 5 and ramps up, as
Debian ships it), and both reuse connections (postern up to 1,000
messages a connection; Postfix's smtp_connection_cache_on_demand).
Neither offers TLS to the other (smtp-sink does not offer STARTTLS).

ROUNDS rounds, postern and Postfix in turn with the other one first
every other round; the table shows medians.  CPU ms/msg is the MTA's
user+system time from release to empty queue (Postfix: master, live and
reaped children).  smtp-sink's own ceiling is measured once a round:
smtp-source straight into it with 20 sessions and connection reuse.
"""
import datetime
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from run import (HOST, PORT_POSTERN_OUT, PORT_RELAY, SENDER, SMTP_SINK,
                 SMTP_SOURCE, log, make_top, proc_cpu, server_user,
                 stop_postern, wait_banner)

HERE = Path(__file__).resolve().parent
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
RELAY_RCPT = "user@relay.test"
FORWARD = "fwd@bench.test"  # postern: 251, relayed to RELAY_RCPT
SESSIONS = 20
SETTLED = 600  # s: a next try this far away will not come during a round
REST = 2  # s: postern's rest of a refusing destination, retry[0], is over
TIMEOUT = 300
POLL = 0.005


class Sink:
    """smtp-sink -c on PORT_RELAY: its last 'mesg=N' is what it accepted."""

    def __init__(self, root):
        self.out = root / "sink-count"

    def start(self):
        self.outf = open(self.out, "wb")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-c", "-u", "nobody", f"{HOST}:{PORT_RELAY}",
             "1024"], stdin=subprocess.DEVNULL, stdout=self.outf,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait_banner(PORT_RELAY)

    def count(self):
        with open(self.out, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64))
            m = re.findall(rb"mesg=(\d+)", f.read())
        return int(m[-1]) if m else 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.outf.close()


class PosternRelay:
    name = "postern"
    rcpt = FORWARD

    def __init__(self, binary, root):
        self.binary, self.root, self.port = binary, root, PORT_POSTERN_OUT
        self.conf = root / "etc" / "postern.conf"
        self.proc = None

    def setup(self):
        shutil.rmtree(self.root, ignore_errors=True)
        make_top(self.root)
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc" / "users").write_text("alice@bench.test\n")
        (self.root / "etc" / "forwards").write_text(
            f"{FORWARD} {RELAY_RCPT} forward\n")
        self.conf.write_text(
            (HERE / "postern-outbound.conf.in").read_text()
            .replace("@DIR@", str(self.root))
            .replace("@USER@", server_user().pw_name)
            .replace("@PORT@", str(self.port))
            .replace("@RELAYPORT@", str(PORT_RELAY)))

    def start(self):
        self.logf = open(self.root / "log", "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            start_new_session=True)
        wait_banner(self.port)

    def stop(self):
        stop_postern(self.proc)
        self.proc = None

    def queue(self, *args):
        p = subprocess.run([str(self.binary), "queue", *args, "-c",
                            str(self.conf)], capture_output=True,
                           text=True, errors="replace", timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"postern queue {' '.join(args)}: "
                               f"{p.stdout}{p.stderr}")
        return p.stdout

    def deferred(self):
        """Recipients deferred with no try for SETTLED s, and messages."""
        text = self.queue("list")
        m = re.search(r"^(\d+) messages?,", text, re.M)
        soon = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=SETTLED)
        later = [t for t in re.findall(
            r"\bdeferred\s+attempts=\d+\s+next=(\S+)", text)
            if datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
            > soon]
        return len(later), int(m.group(1)) if m else -1

    def release(self):
        self.queue("flush")

    def queued(self):
        m = re.search(r"^(\d+) messages?,", self.queue("list"), re.M)
        return int(m.group(1)) if m else -1

    def cpu(self):
        return proc_cpu(self.proc.pid)


class PostfixRelay:
    """The bench's Postfix instance (run.Postfix), seen from its queue."""
    name = "Postfix"
    rcpt = RELAY_RCPT

    def __init__(self, pf):
        self.pf, self.port = pf, pf.port
        self.queue_dir = pf.root / "queue"

    def count(self, *queues):
        n = 0
        for q in queues:
            for _, _, files in os.walk(self.queue_dir / q):
                n += len(files)
        return n

    def deferred(self):
        return (self.count("deferred"),
                self.count("incoming", "active", "deferred", "hold"))

    def release(self):
        subprocess.run([POSTQUEUE, "-c", str(self.pf.etc), "-f"],
                       check=True, capture_output=True, timeout=60)

    def queued(self):
        return self.count("incoming", "active", "deferred")

    def cpu(self):
        return self.pf.cpu()


def fill(mta, n, size):
    """Queues n messages while the relay refuses, each deferred once."""
    p = subprocess.run(
        [SMTP_SOURCE, "-s", str(SESSIONS), "-d", "-m", str(n), "-l",
         str(size), "-f", SENDER, "-t", mta.rcpt, f"{HOST}:{mta.port}"],
        capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source into {mta.name} failed: "
                           f"{p.stdout}{p.stderr}")
    end = time.monotonic() + TIMEOUT
    while True:
        deferred, total = mta.deferred()
        if deferred == n and total == n:
            time.sleep(REST)
            return
        if time.monotonic() > end:
            raise RuntimeError(f"{mta.name}: {deferred} of {n} messages "
                               f"deferred, {total} queued")
        time.sleep(0.2)


def release(mta, sink, n):
    """Starts the sink, releases the queue, times it until empty."""
    sink.start()
    try:
        os.sync()
        time.sleep(0.3)
        cpu0 = mta.cpu()
        t0 = time.monotonic()
        mta.release()
        end = t0 + TIMEOUT
        while sink.count() < n:
            if time.monotonic() > end:
                raise RuntimeError(f"{mta.name}: smtp-sink got only "
                                   f"{sink.count()} of {n}")
            time.sleep(POLL)
        t_relay = time.monotonic() - t0
        while mta.queued() != 0:
            if time.monotonic() > end:
                raise RuntimeError(f"{mta.name}: queue not empty")
            time.sleep(POLL)
        t_empty = time.monotonic() - t0
        cpu = mta.cpu() - cpu0
        got = sink.count()
    finally:
        sink.stop()
    if got != n:
        raise RuntimeError(f"{mta.name}: smtp-sink got {got} of {n}")
    return {"relayed": n / t_relay, "empty": n / t_empty,
            "seconds": t_empty, "cpu_ms": cpu * 1000 / n}


def sink_ceiling(sink, n, size):
    sink.start()
    try:
        t0 = time.monotonic()
        subprocess.run(
            [SMTP_SOURCE, "-s", str(SESSIONS), "-d", "-m", str(n), "-l",
             str(size), "-f", SENDER, "-t", RELAY_RCPT,
             f"{HOST}:{PORT_RELAY}"],
            check=True, capture_output=True, timeout=600)
        return n / (time.monotonic() - t0)
    finally:
        sink.stop()


def run(binary, root, pf, rounds, n, size):
    """pf: run.Postfix, set up and started.  Returns the results dict."""
    root.mkdir(parents=True, exist_ok=True)
    sink = Sink(root)
    pn = PosternRelay(binary, root / "postern")
    pn.setup()
    pn.start()
    mtas = [pn, PostfixRelay(pf)]
    per = {m.name: [] for m in mtas}
    ceiling = []
    try:
        for rnd in range(rounds):
            for mta in (mtas if rnd % 2 == 0 else mtas[::-1]):
                fill(mta, n, size)
                r = release(mta, sink, n)
                per[mta.name].append(r)
                log(f"bench: outbound round {rnd + 1} {mta.name}: "
                    f"{r['empty']:.0f} msg/s ({r['relayed']:.0f} relayed"
                    f"/s), {r['cpu_ms']:.2f} CPU ms/msg")
            ceiling.append(sink_ceiling(sink, n, size))
    finally:
        pn.stop()
    res = {"messages": n, "size": size, "rounds": per,
           "sink": statistics.median(ceiling), "sink_rounds": ceiling}
    for name, v in per.items():
        res[name] = {k: statistics.median(r[k] for r in v) for k in v[0]}
    return res


def fmt_table(o):
    pn, pf = o["postern"], o["Postfix"]
    return "\n".join([
        "| messages | size | postern msg/s | Postfix msg/s | ratio | "
        "postern relayed/s | Postfix relayed/s | smtp-sink msg/s | "
        "postern/sink | postern CPU ms/msg | Postfix CPU ms/msg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {o['messages']} | {o['size'] // 1024} KiB | {pn['empty']:.0f} | "
        f"{pf['empty']:.0f} | {pn['empty'] / pf['empty']:.2f} | "
        f"{pn['relayed']:.0f} | {pf['relayed']:.0f} | {o['sink']:.0f} | "
        f"{pn['empty'] / o['sink']:.2f} | {pn['cpu_ms']:.2f} | "
        f"{pf['cpu_ms']:.2f} |"])


def render(o, rounds):
    ratio = o["postern"]["empty"] / o["Postfix"]["empty"]
    return [f"outbound relay to smtp-sink, median of {rounds} rounds: "
            f"{o['messages']} queued messages of {o['size'] // 1024} KiB "
            "(one recipient each), released at once; msg/s until the "
            "queue is empty, relayed/s until smtp-sink has them all; "
            "smtp-sink msg/s is smtp-source straight into it (20 sessions, "
            "-d)", "", fmt_table(o), "",
            f"issue 8 goal: outbound relay >= 2x Postfix: "
            f"{'yes' if ratio >= 2 else 'no'} ({ratio:.2f}x)"]
