"""auth.py - the message authentication benchmark: `run.py --only auth`.

Two rows, each a difference between two runs of the same load, so that
the cost of the check or of the signature per message can be read off
(bench/README.md, "Message authentication", says the same for readers):

 1. Verification.  Two postern instances that differ only in [auth]:
    spf, dkim and dmarc off, or all three on, with [dns] servers = a
    dnsmasq on 127.0.0.1:2553 that serves the sender's domain
    sender.test: SPF `v=spf1 ip4:127.0.0.1 -all`, a DKIM key (RSA 2048,
    selector bench) and `_dmarc.sender.test` `v=DMARC1; p=reject`.  One
    4 KiB message From: bench@sender.test is signed once here with
    dkimpy (relaxed/relaxed) and sent again and again by build/bench/submit
    (20 sessions, no STARTTLS: these listeners have no certificate, no
    AUTH) to alice@bench.test on the smtp port, and delivered to Maildir.
    msg/s: until the last message is a file in Maildir new/.  postern
    keeps DNS answers for their TTL (300 s here), so after the warm-up
    every lookup is a cache hit: the row measures SPF evaluation, the
    RSA verification with its body hash, DMARC and the
    Authentication-Results header, not DNS.  The dnsmasq query log says
    how many questions the timed part asked.
 2. Signing.  DKIM-signed relay to smtp-sink (127.0.0.1:2727, `-c` counts
    what it accepted).  postern: a submission listener with STARTTLS and
    AUTH PLAIN (a users-file login), [delivery] relayhost = the sink, and
    [dkim] keys = a directory with sender.test.bench.key (RSA 2048, or
    Ed25519 for a third row), or an empty one (no signature).  Postfix:
    its own instance (DIR/auth/postfix), STARTTLS offered (may), the
    client in mynetworks so no AUTH, relayhost = the sink, and either no
    milter (port 2626) or OpenDKIM as smtpd_milters (port 2627):
    `opendkim -f -x CONF`, Mode s, the same key and selector,
    relaxed/relaxed, Socket inet:2628@127.0.0.1, InternalHosts 127.0.0.1.
    The same client for all: submit, 20 sessions, STARTTLS on every one,
    100 messages a session on one connection.  msg/s: until the sink
    has counted them all.

Before the timed part each server gets a warm-up load (20 messages), and
each signing configuration sends one message to an smtp-sink that keeps
it (`-d`): its DKIM-Signature is verified here with dkimpy against the
public key, so a row that did not sign, or signed wrongly, is reported.

CPU µs/msg is user+system time from /proc over the round divided by
the messages: postern's process; Postfix's master with its live and
reaped children (run.Postfix.cpu), plus OpenDKIM's process in the
milter row.  ROUNDS rounds, the configurations in turn, who goes first
rotating; the tables show medians.  Ports 2540-2547, 2553, 2626-2628
and 2727 on 127.0.0.1 must be free.
"""
import base64
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from run import (HOST, SMTP_SINK, Postfix, count_files, log, make_top,
                 proc_cpu, server_user, set_aside, stop_postern,
                 wait_banner)

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
PYTHON = "/usr/bin/python3"  # Debian's, with python3-dkim

PORT_VERIFY_OFF = 2540
PORT_VERIFY_ON = 2541
PORT_SIGN = {"off": 2542, "rsa": 2543, "ed25519": 2544}
PORT_SIGN_SMTP = {"off": 2545, "rsa": 2546, "ed25519": 2547}
PORT_DNS = 2553
PORT_PF_PLAIN = 2626
PORT_PF_MILTER = 2627
PORT_OPENDKIM = 2628
PORT_SINK = 2727
PORTS = [PORT_VERIFY_OFF, PORT_VERIFY_ON, *PORT_SIGN.values(),
         *PORT_SIGN_SMTP.values(), PORT_DNS, PORT_PF_PLAIN, PORT_PF_MILTER,
         PORT_OPENDKIM, PORT_SINK]

SENDER_DOMAIN = "sender.test"
SELECTOR = "bench"
SENDER = f"bench@{SENDER_DOMAIN}"
PASSWORD = "bench-password"
LOCAL_RCPT = "alice@bench.test"
RELAY_RCPT = "user@relay.test"
SESSIONS = 20


WARMUP = 20
TIMEOUT = 300
POLL = 0.005


def check_tools():
    """Exits with what to install when a tool of this step is missing."""
    import sys
    for tool, pkg in ((DNSMASQ, "dnsmasq-base"), (OPENDKIM, "opendkim"),
                      (shutil.which("openssl") or "/usr/bin/openssl",
                       "openssl")):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} missing; install {pkg}")
    try:
        import dkim  # noqa: F401
    except ImportError:
        sys.exit("bench: python3-dkim missing (run with /usr/bin/python3)")


def run_ok(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {p.stdout}"
                           f"{p.stderr}")
    return p.stdout


def kill_pidfile(path):
    """Stops what an aborted run left behind, by its pid file."""
    try:
        pid = int(Path(path).read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
    except (OSError, ValueError, IndexError):
        pass


class Proc:
    """A helper daemon of ours (dnsmasq, OpenDKIM, smtp-sink)."""

    def __init__(self, name, cmd, pidfile, out=None):
        self.name, self.cmd, self.pidfile, self.out = name, cmd, pidfile, out
        self.proc = None

    def start(self, port, tcp=True):
        outf = open(self.out, "ab") if self.out else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=outf, stderr=subprocess.STDOUT
                                     if self.out else subprocess.DEVNULL,
                                     start_new_session=True)
        Path(self.pidfile).write_text(f"{self.proc.pid}\n")
        end = time.monotonic() + 30
        import socket
        while True:
            if self.proc.poll() is not None:
                tail = Path(self.out).read_text()[-1000:] if self.out else ""
                raise RuntimeError(f"{self.name} exited: {tail}")
            try:
                socket.create_connection((HOST, port), 0.5).close()
                return
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError(f"{self.name} does not listen")
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cpu(self):
        return proc_cpu(self.proc.pid)


class Sink(Proc):
    """smtp-sink -c: its last 'mesg=N' is what it has accepted so far."""

    def __init__(self, root, dump=None):
        cmd = [SMTP_SINK, "-c", "-u", "nobody"]
        if dump:
            cmd += ["-d", f"{dump}/%H%M%S."]
        super().__init__("smtp-sink", cmd + [f"{HOST}:{PORT_SINK}", "1024"],
                         root / "sink.pid", root / "sink-count")

    def count(self):
        with open(self.out, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64))
            m = re.findall(rb"mesg=(\d+)", f.read())
        return int(m[-1]) if m else 0


def txt_args(name, record):
    raw = record.encode()
    strings = ",".join(raw[i:i + 255].decode()
                       for i in range(0, len(raw), 255))
    return f"--txt-record={name},{strings}"


def make_keys(d):
    """RSA 2048 and Ed25519 keys (PEM, PKCS#8) and the RSA key's TXT."""
    d.mkdir(parents=True, exist_ok=True)
    rsa, ed = d / "rsa.pem", d / "ed25519.pem"
    run_ok(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
            "rsa_keygen_bits:2048", "-out", str(rsa)])
    run_ok(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(ed)])
    der = subprocess.run(["openssl", "pkey", "-in", str(rsa), "-pubout",
                          "-outform", "DER"], capture_output=True,
                         check=True).stdout
    ed_raw = subprocess.run(["openssl", "pkey", "-in", str(ed), "-pubout",
                             "-outform", "DER"], capture_output=True,
                            check=True).stdout[-32:]
    return rsa, ed, {
        "rsa": "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode(),
        "ed25519": "v=DKIM1; k=ed25519; p=" +
        base64.b64encode(ed_raw).decode()}


def make_message(path, rsa_key=None, size=4096):
    """A 4 KiB message From: SENDER, signed with dkimpy when rsa_key."""
    head = (f"From: Bench <{SENDER}>\r\nTo: <{LOCAL_RCPT}>\r\n"
            "Subject: message authentication benchmark\r\n"
            "Date: Sat, 05 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <bench-auth@{SENDER_DOMAIN}>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
    line = "The quick brown fox jumps over the lazy dog, again and again.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    msg = (head + body).encode()
    if rsa_key:
        import dkim
        sig = dkim.sign(msg, SELECTOR.encode(), SENDER_DOMAIN.encode(),
                        Path(rsa_key).read_bytes(),
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=[b"from", b"to", b"subject",
                                         b"date", b"message-id",
                                         b"mime-version", b"content-type"])
        msg = sig + msg
    path.write_bytes(msg)


def verify_dump(path, records):
    """dkimpy's verdict on a message smtp-sink dumped: (ok, d=/a=)."""
    import dkim
    text = path.read_bytes()
    m = re.search(rb"^(DKIM-Signature|Received):", text, re.M)
    if not m:
        return False, "no message in the dump"
    msg = text[m.start():].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    sig = re.search(rb"^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)",
                    msg, re.M)
    if not sig:
        return False, "no DKIM-Signature"

    def dnsfunc(name, timeout=5):
        want = f"{SELECTOR}._domainkey.{SENDER_DOMAIN}."
        n = name.decode() if isinstance(name, bytes) else name
        if n.rstrip(".") + "." != want:
            return None
        a = re.search(rb"a=([a-z0-9-]+)", sig.group(1)).group(1)
        return records["ed25519" if a == b"ed25519-sha256" else
                       "rsa"].encode()
    tags = re.sub(rb"\s+", b"", sig.group(1)).decode()
    brief = ";".join(t for t in tags.split(";") if t[:2] in ("a=", "c=",
                                                             "d=", "s=")
                     or t[:2] == "h=")
    return bool(dkim.verify(msg, dnsfunc=dnsfunc)), brief


class PosternAuth:
    """One postern instance with a configuration of its own."""
    name = "postern"

    def __init__(self, binary, root, port, conf):
        self.binary, self.root, self.port = binary, root, port
        self.conf_text = conf
        self.proc = None
        self.new_dir = root / "mail" / "bench.test" / "alice" / "new"

    def setup(self, users):
        shutil.rmtree(self.root, ignore_errors=True)
        make_top(self.root)
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc" / "users").write_text(users)
        (self.root / "etc" / "postern.conf").write_text(
            self.conf_text.replace("@DIR@", str(self.root)))

    def start(self):
        self.logf = open(self.root / "log", "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "-c",
             str(self.root / "etc" / "postern.conf")],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            start_new_session=True)
        end = time.monotonic() + 30
        while True:
            try:
                wait_banner(self.port, timeout=0.5)
                return
            except RuntimeError:
                if self.proc.poll() is None and time.monotonic() < end:
                    continue
            tail = (self.root / "log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"postern {self.root.name} did not start: "
                               f"{tail}")

    def stop(self):
        stop_postern(self.proc)
        self.proc = None

    def cpu(self):
        return proc_cpu(self.proc.pid)


def postern_conf(port, smtp_port=None, extra=""):
    """The defaults of etc/postern.conf, its own port and directories."""
    listen = f"smtp = 127.0.0.1:{port}\n"
    if smtp_port:
        listen = (f"smtp = 127.0.0.1:{smtp_port}\n"
                  f"submission = 127.0.0.1:{port}\n")
    return ("; bench/auth.py\n[server]\nhostname = postern.bench.test\n"
            f"user = {server_user().pw_name}\n{listen}max_connections_per_client = 1000\n\n"
            "[spool]\ndir = @DIR@/spool\nreserve = 104857600\n\n"
            "[local]\ndomains = bench.test\nusers = users\n"
            "maildir = @DIR@/mail/%d/%u\n\n"
            f"[dns]\nservers = 127.0.0.1:{PORT_DNS}\ntimeout = 5\n\n"
            + extra)


class PostfixAuth(Postfix):
    """A second private Postfix: STARTTLS, relayhost = the sink, and a
    second smtpd with OpenDKIM as its milter."""

    def __init__(self, root, cert, key):
        super().__init__(root, PORT_PF_PLAIN)
        self.cert, self.key = cert, key

    def setup(self):
        super().setup()
        with open(self.etc / "master.cf", "a") as f:
            f.write("tlsmgr       unix  -       -       n       1000?   1"
                    "       tlsmgr\n"
                    f"{HOST}:{PORT_PF_MILTER} inet n      -       n       "
                    "-       -       smtpd\n  -o smtpd_milters=inet:"
                    f"{HOST}:{PORT_OPENDKIM}\n")
        run_ok(["postconf", "-c", str(self.etc), "-e",
                f"relayhost = [{HOST}]:{PORT_SINK}",
                "smtpd_tls_security_level = may",
                f"smtpd_tls_cert_file = {self.cert}",
                f"smtpd_tls_key_file = {self.key}",
                "smtp_tls_security_level = none",
                "milter_default_action = tempfail"])
        self.postfix("check")


def opendkim_conf(root, key):
    conf = root / "opendkim.conf"
    conf.write_text(
        "# bench/auth.py: OpenDKIM as Postfix's signing milter\n"
        "Mode s\n"
        f"Domain {SENDER_DOMAIN}\nSelector {SELECTOR}\nKeyFile {key}\n"
        f"Socket inet:{PORT_OPENDKIM}@{HOST}\n"
        "InternalHosts 127.0.0.1\n"
        "Canonicalization relaxed/relaxed\n"
        f"PidFile {root}/opendkim.pid\n"
        "Syslog no\nRequireSafeKeys no\nUMask 007\n")
    return conf


class Target:
    """What a row sends to and how it is measured."""

    def __init__(self, name, port, cpu, user=None, new_dir=None,
                 rcpt=RELAY_RCPT):
        self.name, self.port, self.cpu_fn = name, port, cpu
        self.user, self.new_dir, self.rcpt = user, new_dir, rcpt


def submit(binary, t, msgfile, sessions, per_session):
    cmd = [str(binary), "-s", str(sessions), "-m", str(per_session), "-f",
           str(msgfile), "-F", SENDER, "-t", t.rcpt]
    if t.user:
        cmd += ["-u", t.user, "-p", PASSWORD]
    p = subprocess.run(cmd + [f"{HOST}:{t.port}"], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"submit to {t.name} failed: {p.stdout}"
                           f"{p.stderr}")
    return {k: float(v) for k, v in (kv.split("=")
                                      for kv in p.stdout.split())}


def measure(binary, t, msgfile, sink, sessions, per_session):
    """One timed load: msg/s done (Maildir or sink), client msg/s, CPU."""
    n = sessions * per_session
    if t.new_dir is not None:
        set_aside(t.new_dir, server_user())
    os.sync()
    time.sleep(0.3)
    base = sink.count()
    cpu0 = t.cpu_fn()
    t0 = time.monotonic()
    out = submit(binary, t, msgfile, sessions, per_session)
    t_acc = time.monotonic() - t0
    end = t0 + TIMEOUT

    def done():
        if t.new_dir is not None:
            return count_files(t.new_dir) >= n
        return sink.count() - base >= n
    while not done():
        if time.monotonic() > end:
            raise RuntimeError(f"{t.name}: not all {n} messages through")
        time.sleep(POLL)
    t_done = time.monotonic() - t0
    time.sleep(0.5)  # what follows the last message (queue file removal)
    cpu = t.cpu_fn() - cpu0
    return {"msgs": n / t_done, "accepted": n / t_acc,
            "cpu_us": cpu * 1e6 / n, "tls": out["tls"], "auth": out["auth"]}


def run(postern_bin, submit_bin, root, rounds, sessions=SESSIONS,
        per_session=100, per_session_verify=150):
    """Runs both rows; returns the results dict (render() prints it)."""
    for pf in ("dnsmasq.pid", "opendkim.pid", "sink.pid"):
        kill_pidfile(root / pf)
    PostfixAuth(root / "postfix", None, None).stop()
    shutil.rmtree(root, ignore_errors=True)
    make_top(root)
    rsa, ed, records = make_keys(root / "keys")
    run_ok(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
            "/CN=bench.test", "-keyout", str(root / "tls-key.pem"), "-out",
            str(root / "tls-cert.pem")])
    signed, plain = root / "signed.eml", root / "plain.eml"
    make_message(signed, rsa)
    make_message(plain)
    hashed = run_ok(["openssl", "passwd", "-6", PASSWORD]).strip()
    dns_log = root / "dnsmasq.log"
    dns = Proc("dnsmasq", [
        DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
        "--conf-file=/dev/null", f"--port={PORT_DNS}",
        "--listen-address=127.0.0.1", "--bind-interfaces",
        "--local=/test/", "--local-ttl=300", "--log-queries",
        f"--log-facility={dns_log}",
        txt_args(SENDER_DOMAIN, "v=spf1 ip4:127.0.0.1 -all"),
        txt_args(f"{SELECTOR}._domainkey.{SENDER_DOMAIN}", records["rsa"]),
        txt_args(f"_dmarc.{SENDER_DOMAIN}", "v=DMARC1; p=reject")],
        root / "dnsmasq.pid", root / "dnsmasq.out")

    keydirs = {}
    for k, src in (("off", None), ("rsa", rsa), ("ed25519", ed)):
        d = root / f"dkim-{k}"
        d.mkdir()
        if src:
            shutil.copy(src, d / f"{SENDER_DOMAIN}.{SELECTOR}.key")
            os.chown(d / f"{SENDER_DOMAIN}.{SELECTOR}.key",
                     server_user().pw_uid, server_user().pw_gid)
        os.chown(d, server_user().pw_uid, server_user().pw_gid)
        keydirs[k] = d
    tls = (f"[tls]\ncert = {root}/tls-cert.pem\n"
           f"key = {root}/tls-key.pem\n\n")
    vo = PosternAuth(postern_bin, root / "verify-off", PORT_VERIFY_OFF,
                     postern_conf(PORT_VERIFY_OFF))
    von = PosternAuth(postern_bin, root / "verify-on", PORT_VERIFY_ON,
                      postern_conf(PORT_VERIFY_ON, extra=(
                          "[auth]\nspf = on\ndkim = on\ndmarc = on\n")))
    signers = {k: PosternAuth(
        postern_bin, root / f"sign-{k}", PORT_SIGN[k],
        postern_conf(PORT_SIGN[k], PORT_SIGN_SMTP[k], extra=(
            tls + f"[delivery]\nrelayhost = {HOST}:{PORT_SINK}\n"
            "retry = 1, 60\n\n"
            f"[dkim]\nkeys = {keydirs[k]}\n"))) for k in PORT_SIGN}
    pf = PostfixAuth(root / "postfix", root / "tls-cert.pem",
                     root / "tls-key.pem")
    odk = Proc("opendkim", [OPENDKIM, "-f", "-x",
                            str(opendkim_conf(root, rsa))],
               root / "opendkim.pid", root / "opendkim.out")
    started = []
    res = {"rounds": rounds, "sessions": sessions,
           "per_session": per_session,
           "per_session_verify": per_session_verify}
    try:
        dns.start(PORT_DNS)
        started.append(dns)
        for p in (vo, von):
            p.setup(f"{LOCAL_RCPT}\n")
        for p in signers.values():
            p.setup(f"{LOCAL_RCPT}\n{SENDER}: {hashed}\n")
        for p in (vo, von, *signers.values()):
            p.start()
            started.append(p)
        pf.setup()
        pf.start()
        started.append(pf)
        odk.start(PORT_OPENDKIM)
        started.append(odk)
        wait_banner(PORT_PF_MILTER)

        verify_t = {
            "off": Target("postern [auth] off", vo.port, vo.cpu,
                          new_dir=vo.new_dir, rcpt=LOCAL_RCPT),
            "on": Target("postern spf+dkim+dmarc", von.port, von.cpu,
                         new_dir=von.new_dir, rcpt=LOCAL_RCPT)}
        sign_t = {
            f"postern-{k}": Target(f"postern signing {k}", p.port, p.cpu,
                                   user=SENDER)
            for k, p in signers.items()}
        sign_t["postfix-off"] = Target("Postfix", PORT_PF_PLAIN, pf.cpu)
        sign_t["postfix-opendkim"] = Target(
            "Postfix + OpenDKIM", PORT_PF_MILTER,
            lambda: pf.cpu() + odk.cpu())

        # Correctness first: one message through each signing row to a
        # sink that keeps it, checked with dkimpy.
        dump = root / "dump"
        dump.mkdir()
        shutil.chown(dump, "nobody")
        sink = Sink(root, dump)
        sink.start(PORT_SINK)
        started.append(sink)
        checks = {}
        for key, t in sign_t.items():
            before = set(dump.rglob("*"))
            submit(submit_bin, t, plain, 1, 1)
            end = time.monotonic() + 30
            while True:
                new = [f for f in set(dump.rglob("*")) - before
                       if f.is_file()]
                if new or time.monotonic() > end:
                    break
                time.sleep(0.05)
            if not new:
                raise RuntimeError(f"{t.name}: nothing reached smtp-sink")
            time.sleep(0.2)
            checks[key] = verify_dump(new[0], records)
            log(f"bench: auth {t.name}: dkimpy "
                f"{'pass' if checks[key][0] else 'no pass'} {checks[key][1]}")
        res["signature_check"] = checks
        sink.stop()
        started.remove(sink)
        sink = Sink(root)
        sink.start(PORT_SINK)
        started.append(sink)

        for t in (*verify_t.values(), *sign_t.values()):  # warm-up
            msg = signed if t.new_dir is not None else plain
            measure(submit_bin, t, msg, sink, 1, WARMUP)
        sample = sorted(von.new_dir.glob("*"))
        ar = ""
        if sample:
            m = re.search(r"^Authentication-Results:[^\n]*(?:\n[ \t][^\n]*)*",
                          sample[0].read_text(errors="replace"), re.M)
            ar = re.sub(r"\s+", " ", m.group(0)) if m else "(none)"
        res["ar_header"] = ar
        log(f"bench: auth verification header: {ar}")
        q0 = dns_queries(dns_log)

        per = {k: [] for k in (*verify_t, *sign_t)}
        order = [(k, t, True) for k, t in verify_t.items()] + \
            [(k, t, False) for k, t in sign_t.items()]
        for rnd in range(rounds):
            r = rnd % len(order)
            for k, t, is_verify in order[r:] + order[:r]:
                if is_verify:
                    v = measure(submit_bin, t, signed, sink, sessions,
                                per_session_verify)
                else:
                    v = measure(submit_bin, t, plain, sink, sessions,
                                per_session)
                per[k].append(v)
                log(f"bench: auth round {rnd + 1} {t.name}: "
                    f"{v['msgs']:.0f} msg/s, {v['cpu_us']:.0f} CPU us/msg")
        res["dns_queries_timed"] = dns_queries(dns_log) - q0
        res["per"] = per
        res["median"] = {k: {x: statistics.median(r[x] for r in v)
                             for x in v[0]} for k, v in per.items()}
    finally:
        for p in reversed(started):
            try:
                p.stop()
            except Exception as e:  # stop the others all the same
                log(f"bench: auth: stopping {p}: {e}")
    return res


def dns_queries(path):
    try:
        return sum(1 for ln in path.read_text(errors="replace")
                   .splitlines() if " query[" in ln)
    except FileNotFoundError:
        return 0


def render(res):
    m = res["median"]
    n_v = res["sessions"] * res["per_session_verify"]
    n_s = res["sessions"] * res["per_session"]
    vo, von = m["off"], m["on"]
    out = [f"message authentication, median of {res['rounds']} rounds, "
           f"build/bench/submit with {res['sessions']} sessions; CPU is "
           "the server's user+system time per message", "",
           f"verification: {n_v} messages of 4 KiB, pre-signed "
           "(rsa-sha256, 2048 bits), smtp port, no TLS, delivered to "
           "Maildir; DNS from postern's cache (dnsmasq answered "
           f"{res['dns_queries_timed']} questions in the timed part)", "",
           "| postern [auth] | msg/s | accepted/s | CPU µs/msg |",
           "|---|---:|---:|---:|",
           f"| off | {vo['msgs']:.0f} | {vo['accepted']:.0f} | "
           f"{vo['cpu_us']:.0f} |",
           f"| spf+dkim+dmarc on | {von['msgs']:.0f} | "
           f"{von['accepted']:.0f} | {von['cpu_us']:.0f} |", "",
           f"verification cost: {von['cpu_us'] - vo['cpu_us']:.0f} µs of "
           f"CPU per message; throughput on/off "
           f"{von['msgs'] / vo['msgs']:.2f}", f"header: {res['ar_header']}",
           "",
           f"signing relay: {n_s} messages of 4 KiB, STARTTLS on every "
           f"session, {res['per_session']} messages a session, relayed to "
           "smtp-sink; msg/s counted by smtp-sink", "",
           "| server | signing | relayed msg/s | accepted/s | CPU µs/msg "
           "| signature (dkimpy) |", "|---|---|---:|---:|---:|---|"]
    names = {"postern-off": ("postern (submission, AUTH PLAIN)", "none"),
             "postern-rsa": ("postern (submission, AUTH PLAIN)",
                             "RSA 2048"),
             "postern-ed25519": ("postern (submission, AUTH PLAIN)",
                                 "Ed25519"),
             "postfix-off": ("Postfix (mynetworks)", "none"),
             "postfix-opendkim": ("Postfix + OpenDKIM milter (mynetworks)",
                                  "RSA 2048")}
    for k, (srv, how) in names.items():
        v, chk = m[k], res["signature_check"][k]
        sig = ("pass " if chk[0] else "no/failed ") + chk[1] \
            if how != "none" else ("none" if not chk[0] else "unexpected")
        out.append(f"| {srv} | {how} | {v['msgs']:.0f} | "
                   f"{v['accepted']:.0f} | {v['cpu_us']:.0f} | {sig} |")
    pr, po = m["postern-rsa"], m["postern-off"]
    fr, fo = m["postfix-opendkim"], m["postfix-off"]
    pe = m["postern-ed25519"]
    ratio = pr["msgs"] / fr["msgs"]
    out += ["",
            f"ratios postern/Postfix (msg/s): signing RSA 2048 "
            f"{ratio:.2f} (goal >= 3: {'yes' if ratio >= 3 else 'no'}); "
            f"without signing {po['msgs'] / fo['msgs']:.2f}",
            f"signing cost, CPU µs per message: postern RSA "
            f"{pr['cpu_us'] - po['cpu_us']:.0f}, Ed25519 "
            f"{pe['cpu_us'] - po['cpu_us']:.0f}; Postfix + OpenDKIM "
            f"{fr['cpu_us'] - fo['cpu_us']:.0f}"]
    return out
