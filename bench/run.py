#!/usr/bin/env python3
"""run.py - postern against Postfix, side by side: what `make bench` runs.

Sets up a private Postfix (Debian's binaries, a config of our own under
DIR/postfix: loopback port 2625, no chroot, domain bench.test delivered by
virtual(8) to Maildir), a postern on port 2535 with a temporary config,
and smtp-sink on 2725 as the ceiling of the load generator.  Then, for
each scenario (sessions x message size x one message per connection or
`smtp-source -d` connection reuse), ROUNDS times, it runs the same
smtp-source load against each in turn (rotating who goes first) and
times from the start until the last message is a file in Maildir new/.
It prints a table of medians with postern/Postfix ratios, and:

  - the machine: cores, kernel, file system, fsync rate (4 KiB files
    written and fsync'd one at a time for 2 s, before and after);
  - latency from the end of DATA to the 250 at half of each server's
    peak rate (bench/latency.c; peak = the median delivered rate with
    20 sessions, 4 KiB, connection reuse);
  - 10,000 idle sessions on a fresh postern: VmRSS before and after,
    KiB per session, and whether connection 10,001 still gets a 220;
    Postfix's proportional memory (Pss) per idle session for comparison;
  - instructions per message under valgrind --tool=callgrind (a fixed
    run: 1,000 messages of 4 KiB over 10 sessions, one per connection,
    minus a run with no messages), when valgrind is installed;
  - outbound relay (bench/outbound.py): the same 5,000 queued messages
    released at once from postern and from Postfix to smtp-sink on 2726,
    timed until each queue is empty;
  - /metrics scraped once a second under load (bench/metrics.py);
  - message authentication (bench/auth.py): postern with SPF, DKIM and
    DMARC verification off and on, and DKIM-signed relay through postern
    against Postfix with OpenDKIM as its milter, with and without keys.

It must run as root (Postfix starts as root and drops to its users).  It
never touches /etc/postfix's instance or port 25: every Postfix command
gets `-c DIR/postfix/etc`.  Results also go to DIR/results.json and
DIR/results.md.  The Maildir files of a run stay until the end of the
next run (`make clean` removes them).  This is a benchmark, not a test:
nothing asserts speed.
"""
import argparse
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
VALGRIND = shutil.which("valgrind")

HOST = "127.0.0.1"
PORT_POSTERN = 2535
PORT_POSTERN_IDLE = 2536
PORT_POSTERN_CG = 2537
PORT_POSTFIX = 2625
PORT_SINK = 2725
PORT_POSTERN_OUT = 2538  # bench/outbound.py
PORT_RELAY = 2726  # bench/outbound.py: the relay's smtp-sink
DOMAIN = "bench.test"
RCPT = f"alice@{DOMAIN}"
SENDER = "bench@client.test"
IDLE_SESSIONS = 10000
POSTFIX_IDLE_SESSIONS = 50
FD_LIMIT = 20000
DELIVERY_TIMEOUT = 300
CALLGRIND_MESSAGES = 1000

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_banner(port, timeout=30):
    """Waits until HOST:port answers with a 220 banner."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                if s.recv(512).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers 220 on {HOST}:{port}")


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def count_files(path):
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def stop_postern(proc):
    """SIGTERM (postern finishes what it was doing), SIGKILL after 120 s."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_user():
    """postern started as root wants [server] user: its own account when
    there is one (the package makes it), else nobody."""
    for name in ("postern", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError("no account postern or nobody for [server] user")


def make_top(path):
    """Makes path a directory that ext4's Orlov allocator treats as the
    top of a tree (chattr +T): the directories made under it are spread
    to block groups of their own instead of the parent's.  Each server's
    files then take inodes away from the others': without a journal,
    ext4 will not reuse an inode for 60 s after its file was deleted and
    scans past every such inode in the group for each file it creates,
    so Postfix's thousands of deleted queue files a second would
    otherwise slow down whichever server runs next in the same group.
    Best effort: other file systems ignore it or refuse."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+T", str(path)], capture_output=True)


def set_aside(path, owner=None):
    """Moves a round's Maildir new/ aside (new.N) and makes an empty one.
    Deleting the files instead would slow the next round down for
    reasons of the benchmark's own making: ext4 without a journal (as
    here) skips recently deleted inodes when it allocates one, and
    thousands of deletions a second make every creation scan past them.
    Everything set aside goes at the end of the next `make bench`, after
    its measurements (set_aside_previous)."""
    if not path.is_dir():
        return
    n = 0
    while path.with_name(f"new.{n}").exists():
        n += 1
    path.rename(path.with_name(f"new.{n}"))
    path.mkdir(mode=0o700)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def proc_cpu(pid, children=False):
    """utime+stime (and the reaped children's) of pid, in seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / CLK_TCK


def children_of(pid):
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[1]) == pid:
            out.append(int(d.name))
    return out


def vm_rss_kib(pid):
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status")
                  .read_text(), re.M)
    return int(m.group(1))


def pss_kib(pid):
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(FD_LIMIT, IDLE_SESSIONS + 1000)
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))


class Postern:
    name = "postern"

    def __init__(self, binary, root, port, valgrind=None):
        self.binary, self.root, self.port = binary, root, port
        self.valgrind = valgrind
        self.proc = None
        self.new_dir = root / "mail" / DOMAIN / "alice" / "new"

    def setup(self):
        shutil.rmtree(self.root, ignore_errors=True)
        make_top(self.root)
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc" / "users").write_text(RCPT + "\n")
        (self.root / "etc" / "postern.conf").write_text(
            (HERE / "postern.conf.in").read_text()
            .replace("@DIR@", str(self.root))
            .replace("@USER@", server_user().pw_name)
            .replace("@PORT@", str(self.port)))

    def start(self):
        cmd = [str(self.binary), "serve", "-c",
               str(self.root / "etc" / "postern.conf")]
        if self.valgrind:
            cmd = self.valgrind + cmd
        self.logf = open(self.root / "log", "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     start_new_session=True)
        wait_banner(self.port, timeout=120 if self.valgrind else 30)

    def stop(self):
        stop_postern(self.proc)
        self.proc = None

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def clear(self):
        set_aside(self.new_dir, server_user())


class Postfix:
    name = "Postfix"

    def __init__(self, root, port):
        self.root, self.port = root, port
        self.etc = root / "etc"
        self.new_dir = root / "mail" / DOMAIN / "alice" / "new"

    def postfix(self, *args, check=True):
        # Postfix reports to syslog only unless stderr is a terminal:
        # fatal errors are also in DIR/postfix/maillog.
        p = subprocess.run([POSTFIX, "-c", str(self.etc)] + list(args),
                           capture_output=True, text=True)
        if check and p.returncode != 0:
            tail = ""
            if (self.root / "maillog").exists():
                tail = (self.root / "maillog").read_text()[-2000:]
            raise RuntimeError(f"postfix {' '.join(args)} failed "
                               f"({p.returncode}) {p.stderr}\n{tail}")
        return p

    def setup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        make_top(self.root)
        nobody = pwd.getpwnam("nobody")
        postfix = pwd.getpwnam("postfix")
        for d in ("etc", "queue", "data", "mail"):
            (self.root / d).mkdir(parents=True)
        os.chown(self.root / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        subst = {"@DIR@": str(self.root), "@PORT@": str(self.port),
                 "@RELAYPORT@": str(PORT_RELAY),
                 "@ADDR@": HOST, "@UID@": str(nobody.pw_uid),
                 "@GID@": str(nobody.pw_gid)}
        for name in ("main.cf", "master.cf"):
            text = (HERE / "postfix" / f"{name}.in").read_text()
            for k, v in subst.items():
                text = text.replace(k, v)
            (self.etc / name).write_text(text)
        (self.etc / "vmailbox").write_text(
            f"{RCPT} {DOMAIN}/alice/\n")
        self.postfix("check")

    def master_pid(self):
        try:
            return int((self.root / "queue" / "pid" / "master.pid")
                       .read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self):
        self.postfix("start")
        wait_banner(self.port)

    def stop(self):
        if self.master_pid() and self.postfix("status", check=False) \
                .returncode == 0:
            self.postfix("stop", check=False)
            end = time.monotonic() + 30
            while self.master_pid() and time.monotonic() < end and \
                    self.postfix("status", check=False).returncode == 0:
                time.sleep(0.1)

    def cpu(self):
        """The master's own and reaped children's CPU plus every live
        child's: a delta over a round counts exactly that round's work."""
        pid = self.master_pid()
        t = proc_cpu(pid, children=True)
        for c in children_of(pid):
            try:
                t += proc_cpu(c)
            except OSError:
                pass
        return t

    def pss_kib(self):
        pid = self.master_pid()
        return pss_kib(pid) + sum(pss_kib(c) for c in children_of(pid))

    def clear(self):
        set_aside(self.new_dir, pwd.getpwnam("nobody"))


class Sink:
    name = "smtp-sink"
    new_dir = None

    def __init__(self, root, port):
        self.root, self.port, self.proc = root, port, None

    def setup(self):
        self.root.mkdir(parents=True, exist_ok=True)

    def start(self):
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", f"{HOST}:{self.port}", "1024"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait_banner(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def clear(self):
        pass


def smtp_source(port, sessions, size, n, reuse):
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(size),
           "-f", SENDER, "-t", RCPT]
    if reuse:
        cmd.append("-d")
    return cmd + [f"{HOST}:{port}"]


def one_round(target, sessions, size, n, reuse):
    """Runs one load; returns accepted and delivered msgs/s, CPU ms/msg."""
    target.clear()
    os.sync()
    time.sleep(0.3)
    cpu0 = target.cpu()
    t0 = time.monotonic()
    p = subprocess.run(smtp_source(target.port, sessions, size, n, reuse),
                       capture_output=True, text=True, timeout=600)
    t_acc = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source against {target.name} failed: "
                           f"{p.stdout}{p.stderr}")
    t_del = t_acc
    if target.new_dir is not None:
        end = t0 + DELIVERY_TIMEOUT
        while count_files(target.new_dir) < n:
            if time.monotonic() > end:
                raise RuntimeError(f"{target.name}: only "
                                   f"{count_files(target.new_dir)} of {n} "
                                   "delivered")
            time.sleep(0.005)
        t_del = time.monotonic() - t0
    cpu = target.cpu() - cpu0
    return {"accepted": n / t_acc, "delivered": n / t_del,
            "cpu_ms": cpu * 1000 / n}


def set_aside_previous(root):
    """Moves the previous run's directories aside and returns them, to be
    deleted after this run's measurements: see set_aside() for why
    deleting them first would slow this run down."""
    Postfix(root / "postfix", PORT_POSTFIX).stop()  # an aborted run's
    moved = sorted(root.glob("old-*"))
    names = ["postern", "postfix", "sink", "postern-idle", "callgrind",
             "outbound"]
    if any((root / n).exists() for n in names):
        dest = root / f"old-{time.time_ns()}"
        dest.mkdir()
        for n in names:
            if (root / n).exists():
                (root / n).rename(dest / n)
        moved.append(dest)
    return moved


def fsync_rate(directory, seconds=2.0):
    """4 KiB files written and fsync'd one at a time: files per second.
    The files stay (in a tree of their own, make_top) until the end of
    the run: deleting thousands of them here would slow down the file
    creations of the measurements that follow (see make_top)."""
    n = 0
    while (directory / f"fsync-probe.{n}").exists():
        n += 1
    d = directory / f"fsync-probe.{n}"
    make_top(d)
    buf = b"x" * 4096
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        fd = os.open(d / f"f{n}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        os.write(fd, buf)
        os.fsync(fd)
        os.close(fd)
        n += 1
    return n / (time.monotonic() - t0)


def fs_type(path):
    best, fstype = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        f = line.split()
        if str(path).startswith(f[1]) and len(f[1]) >= len(best):
            best, fstype = f[1], f[2]
    return fstype


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def latency(binary, port, rate, sessions=20, seconds=4.0, size=4096):
    n = max(200, int(rate * seconds))
    p = subprocess.run([str(binary), "-s", str(sessions), "-r",
                        f"{rate:.1f}", "-n", str(n), "-l", str(size),
                        "-f", SENDER, "-t", RCPT, f"{HOST}:{port}"],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"latency client failed: {p.stderr}")
    return {k: float(v) for k, v in
            (kv.split("=") for kv in p.stdout.split())}


def read_banner(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(512)
        if not chunk:
            break
        data += chunk
    return data


def idle_postern(binary, root):
    """10,000 idle sessions on a fresh postern: VmRSS per session."""
    srv = Postern(binary, root, PORT_POSTERN_IDLE)
    srv.setup()
    srv.start()
    socks = []
    try:
        with socket.create_connection((HOST, srv.port)) as s:
            read_banner(s)  # one session's worth of warm-up
        time.sleep(0.2)
        rss0 = vm_rss_kib(srv.proc.pid)
        refused = 0
        for _ in range(IDLE_SESSIONS):
            s = socket.create_connection((HOST, srv.port), timeout=30)
            if not read_banner(s).startswith(b"220"):
                refused += 1
            socks.append(s)
        time.sleep(0.5)
        rss1 = vm_rss_kib(srv.proc.pid)
        with socket.create_connection((HOST, srv.port), timeout=30) as s:
            last = read_banner(s).decode(errors="replace").strip()
    finally:
        for s in socks:
            s.close()
        srv.stop()
    return {"sessions": IDLE_SESSIONS, "rss_before_kib": rss0,
            "rss_after_kib": rss1,
            "kib_per_session": (rss1 - rss0) / IDLE_SESSIONS,
            "refused": refused, "next_reply": last}


def idle_postfix(pf):
    """Pss per idle Postfix session, from a freshly started instance."""
    pf.stop()
    pf.start()
    time.sleep(1.0)
    pss0 = pf.pss_kib()
    socks = []
    try:
        for _ in range(POSTFIX_IDLE_SESSIONS):
            s = socket.create_connection((HOST, pf.port), timeout=30)
            read_banner(s)
            socks.append(s)
        time.sleep(1.0)
        pss1 = pf.pss_kib()
    finally:
        for s in socks:
            s.close()
    return {"sessions": POSTFIX_IDLE_SESSIONS,
            "kib_per_session": (pss1 - pss0) / POSTFIX_IDLE_SESSIONS}


def callgrind_total(path):
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def callgrind_run(binary, root, n):
    srv = Postern(binary, root, PORT_POSTERN_CG)
    out = root.parent / f"{root.name}.callgrind.out"
    srv.valgrind = [VALGRIND, "--tool=callgrind",
                    f"--callgrind-out-file={out}"]
    srv.setup()
    srv.start()
    try:
        if n:
            subprocess.run(smtp_source(srv.port, 10, 4096, n, False),
                           check=True, capture_output=True, timeout=900)
            end = time.monotonic() + 600
            while count_files(srv.new_dir) < n:
                if time.monotonic() > end:
                    raise RuntimeError("callgrind run: delivery timed out")
                time.sleep(0.1)
            time.sleep(1.5)  # the done records' sync
    finally:
        srv.stop()
    return callgrind_total(out), out


def callgrind(binary, root):
    base, _ = callgrind_run(binary, root / "cg0", 0)
    total, out = callgrind_run(binary, root / "cg1", CALLGRIND_MESSAGES)
    return {"messages": CALLGRIND_MESSAGES, "ir_total": total,
            "ir_baseline": base,
            "ir_per_message": (total - base) / CALLGRIND_MESSAGES,
            "out": str(out)}


SCENARIOS = [  # sessions, size, reuse
    (20, 4096, False), (20, 4096, True),
    (100, 4096, False), (100, 4096, True),
    (20, 102400, False), (20, 102400, True),
    (100, 102400, False), (100, 102400, True),
]


def size_name(size):
    return f"{size // 1024} KiB"


def mode_name(reuse):
    return "reuse (-d)" if reuse else "1/conn"


def fmt_table(res):
    rows = ["| sessions | size | mode | postern msg/s | Postfix msg/s | "
            "ratio | smtp-sink msg/s | postern/sink | postern accepted/s "
            "| Postfix accepted/s | postern CPU ms/msg | Postfix CPU ms/msg |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res:
        pn, pf, sk = r["postern"], r["Postfix"], r["smtp-sink"]
        rows.append(
            f"| {r['sessions']} | {size_name(r['size'])} | "
            f"{mode_name(r['reuse'])} | {pn['delivered']:.0f} | "
            f"{pf['delivered']:.0f} | "
            f"{pn['delivered'] / pf['delivered']:.2f} | "
            f"{sk['accepted']:.0f} | "
            f"{pn['delivered'] / sk['accepted']:.2f} | "
            f"{pn['accepted']:.0f} | {pf['accepted']:.0f} | "
            f"{pn['cpu_ms']:.2f} | {pf['cpu_ms']:.2f} |")
    return "\n".join(rows)


def median_of(rounds):
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postern", required=True, type=Path)
    ap.add_argument("--latency", required=True, type=Path)
    ap.add_argument("--submit", type=Path,
                    help="build/bench/submit, for the auth step")
    ap.add_argument("--dir", default="build/bench", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=3000,
                    help="messages per round with 4 KiB messages")
    ap.add_argument("--messages-large", type=int, default=1000,
                    help="messages per round with 100 KiB messages")
    ap.add_argument("--messages-outbound", type=int, default=5000,
                    help="messages queued per round, outbound relay")
    ap.add_argument("--only", default="",
                    help="comma-separated steps: load,latency,idle,"
                    "callgrind,outbound,auth,metrics (default: all)")
    args = ap.parse_args()
    steps = set(args.only.split(",")) if args.only else \
        {"load", "latency", "idle", "callgrind", "outbound", "auth",
         "metrics"}
    if "auth" in steps and not args.submit:
        sys.exit("bench: the auth step needs --submit build/bench/submit")
    if os.geteuid() != 0:
        sys.exit("bench: run as root (Postfix starts as root); "
                 "e.g. sudo make bench")
    for tool in (SMTP_SOURCE, SMTP_SINK, POSTFIX):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} missing; install postfix "
                     "(make deps-test)")
    for port in (PORT_POSTERN, PORT_POSTERN_IDLE, PORT_POSTERN_CG,
                 PORT_POSTFIX, PORT_SINK, PORT_POSTERN_OUT, PORT_RELAY):
        if not port_free(port):
            sys.exit(f"bench: port {port} is in use; stop what uses it")
    if "auth" in steps:
        import auth  # here: it imports from this file
        auth.check_tools()
        for port in auth.PORTS:
            if not port_free(port):
                sys.exit(f"bench: port {port} is in use; stop what uses "
                         "it")
    raise_fd_limit()
    root = args.dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    old = set_aside_previous(root)
    info = {"cores": os.cpu_count(), "cpu": cpu_model(),
            "kernel": platform.release(), "fs": fs_type(root),
            "postfix": subprocess.run(
                ["postconf", "-d", "-h", "mail_version"],
                capture_output=True, text=True).stdout.strip(),
            "fsync_before": fsync_rate(root),
            "load_before": os.getloadavg()}
    log(f"bench: {info['cores']} cores, fsync {info['fsync_before']:.0f}/s")
    pn = Postern(args.postern, root / "postern", PORT_POSTERN)
    pf = Postfix(root / "postfix", PORT_POSTFIX)
    sk = Sink(root / "sink", PORT_SINK)
    results, extra = [], {}
    started = []
    try:
        # The auth step has servers of its own (bench/auth.py).
        for t in (pn, pf, sk) if steps & {"load", "latency", "idle",
                                          "outbound"} else ():
            t.setup()
            t.start()
            started.append(t)
        if "load" in steps:
            for sessions, size, reuse in SCENARIOS:
                n = args.messages if size <= 4096 else args.messages_large
                per = {t.name: [] for t in (pn, pf, sk)}
                for rnd in range(args.rounds):
                    order = [pn, pf, sk]
                    order = order[rnd % 3:] + order[:rnd % 3]
                    for t in order:
                        per[t.name].append(
                            one_round(t, sessions, size, n, reuse))
                row = {"sessions": sessions, "size": size, "reuse": reuse,
                       "messages": n, "rounds": per}
                row.update({k: median_of(v) for k, v in per.items()})
                results.append(row)
                log(f"bench: {sessions} sessions {size_name(size)} "
                    f"{mode_name(reuse)}: postern "
                    f"{row['postern']['delivered']:.0f}/s, Postfix "
                    f"{row['Postfix']['delivered']:.0f}/s, sink "
                    f"{row['smtp-sink']['accepted']:.0f}/s")
        if "latency" in steps:
            peaks = {}
            for t in (pn, pf):
                peak = next((r[t.name]["delivered"] for r in results
                             if r["sessions"] == 20 and r["size"] == 4096
                             and r["reuse"]), None)
                if peak is None:
                    peak = one_round(t, 20, 4096, args.messages,
                                     True)["delivered"]
                peaks[t.name] = peak
                t.clear()
                lat = latency(args.latency, t.port, peak / 2)
                lat["offered"] = peak / 2
                extra.setdefault("latency", {})[t.name] = lat
                log(f"bench: latency {t.name} at {peak / 2:.0f}/s: "
                    f"p50 {lat['p50_ms']:.2f} ms p99 "
                    f"{lat['p99_ms']:.2f} ms")
        if "idle" in steps:
            extra["idle_postern"] = idle_postern(args.postern,
                                                 root / "postern-idle")
            extra["idle_postfix"] = idle_postfix(pf)
            log(f"bench: idle {extra['idle_postern']}")
        if "outbound" in steps:
            import outbound  # here: it imports from this file
            try:
                extra["outbound"] = outbound.run(
                    args.postern, root / "outbound", pf, args.rounds,
                    args.messages_outbound, 4096)
            except RuntimeError as e:  # keep the other steps' results
                extra["outbound_error"] = str(e)
                log(f"bench: outbound failed: {e}")
    finally:
        for t in reversed(started):
            t.stop()
    if "metrics" in steps:
        import metrics  # here: it imports from this file
        try:
            extra["metrics"] = metrics.run(args.postern, root / "metrics",
                                           args.rounds, args.messages)
            log(f"bench: /metrics scraped 1/s: "
                f"{extra['metrics']['scraped']:.0f}/s vs "
                f"{extra['metrics']['plain']:.0f}/s "
                f"({extra['metrics']['ratio']:.3f})")
        except RuntimeError as e:  # keep the other steps' results
            extra["metrics_error"] = str(e)
            log(f"bench: metrics failed: {e}")
    if "auth" in steps:
        try:
            extra["auth"] = auth.run(args.postern, args.submit,
                                     root / "auth", args.rounds)
        except RuntimeError as e:  # keep the other steps' results
            extra["auth_error"] = str(e)
            log(f"bench: auth failed: {e}")
    if "callgrind" in steps:
        if VALGRIND:
            extra["callgrind"] = callgrind(args.postern, root / "callgrind")
        else:
            log("bench: valgrind not installed; no instruction count")
    info["fsync_after"] = fsync_rate(root)
    info["load_after"] = os.getloadavg()
    for d in old + sorted(root.glob("fsync-probe.*")):
        shutil.rmtree(d, ignore_errors=True)
    report = render(info, results, extra, args)
    print(report)
    (root / "results.md").write_text(report + "\n")
    (root / "results.json").write_text(json.dumps(
        {"info": info, "results": results, "extra": extra}, indent=1))


def render(info, results, extra, args):
    head = f"postern vs Postfix {info['postfix']}"
    if results:
        head += (f", smtp-source, median of {args.rounds} rounds "
                 f"({args.messages} messages of 4 KiB, "
                 f"{args.messages_large} of 100 KiB per round); msg/s "
                 "counted when the last message is a file in Maildir new/")
    out = [head,
           f"machine: {info['cores']} cores ({info['cpu']}), Linux "
           f"{info['kernel']}, {info['fs']}; fsync rate (4 KiB file "
           f"write+fsync, 2 s): {info['fsync_before']:.0f}/s before, "
           f"{info['fsync_after']:.0f}/s after; load average "
           f"{info['load_before'][0]:.2f} before, "
           f"{info['load_after'][0]:.2f} after", ""]
    if results:
        ratio = [r["postern"]["delivered"] / r["Postfix"]["delivered"]
                 for r in results]
        sink = [r["postern"]["delivered"] / r["smtp-sink"]["accepted"]
                for r in results]
        out += [fmt_table(results), "",
                f"issue 8 goals: postern >= 3x Postfix in "
                f"{sum(x >= 3 for x in ratio)} of {len(ratio)} rows "
                f"(lowest {min(ratio):.2f}); >= half of smtp-sink in "
                f"{sum(x >= 0.5 for x in sink)} of {len(sink)} rows "
                f"(lowest {min(sink):.2f})", ""]
    lat = extra.get("latency", {})
    for name, v in lat.items():
        out.append(f"latency end-of-DATA -> 250, {name}, 20 sessions, 4 KiB, "
                   f"offered {v['offered']:.0f}/s (half its peak), achieved "
                   f"{v['rate']:.0f}/s, n={v['n']:.0f}: p50 "
                   f"{v['p50_ms']:.2f} ms, p90 {v['p90_ms']:.2f} ms, p99 "
                   f"{v['p99_ms']:.2f} ms, max {v['max_ms']:.2f} ms")
    if "idle_postern" in extra:
        i = extra["idle_postern"]
        out.append(f"idle sessions, postern: {i['sessions']} open, VmRSS "
                   f"{i['rss_before_kib']} -> {i['rss_after_kib']} KiB = "
                   f"{i['kib_per_session']:.1f} KiB/session (goal <= 16), "
                   f"refused {i['refused']}; session {i['sessions'] + 1} "
                   f"got: {i['next_reply']}")
    if "idle_postfix" in extra:
        i = extra["idle_postfix"]
        out.append(f"idle sessions, Postfix: {i['sessions']} open, Pss "
                   f"{i['kib_per_session']:.0f} KiB/session")
    if "callgrind" in extra:
        c = extra["callgrind"]
        out.append(f"callgrind, postern: {c['ir_per_message']:,.0f} "
                   f"instructions per message ({c['messages']} x 4 KiB, 10 "
                   f"sessions, 1/conn; {c['ir_total']:,} total minus "
                   f"{c['ir_baseline']:,} for start and stop)")
    if "outbound" in extra:
        import outbound
        out += [""] + outbound.render(extra["outbound"], args.rounds)
    if "outbound_error" in extra:
        out += ["", f"outbound relay: failed: {extra['outbound_error']}"]
    if "auth" in extra:
        import auth
        out += [""] + auth.render(extra["auth"])
    if "metrics" in extra:
        import metrics
        out += [""] + metrics.render(extra["metrics"])
    if "auth_error" in extra:
        out += ["", f"message authentication: failed: {extra['auth_error']}"]
    return "\n".join(out)


if __name__ == "__main__":
    main()
