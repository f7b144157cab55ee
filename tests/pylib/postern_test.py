"""postern_test - shared helpers for the pytest suites.

Starts the real binary (the POSTERN environment variable, else
build/postern) on a free loopback port with its own config, spool and
Maildir under a temporary directory, and talks to it over raw sockets.

    srv = Server(tmp_path, server={"max_recipients": 2})
    srv.start()
    with srv.client() as c:           # reads the 220 banner
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@x.test>")
        assert (r.code, r.enh) == (250, "2.1.0")
    srv.wait_messages("alice@example.test", 1)
    srv.stop()                        # SIGTERM, expects exit 0

Nothing here sleeps for a fixed time where polling works: every wait polls
with a deadline (DEFAULT_TIMEOUT, generous because the suite also runs
under ASan).
"""
import mailbox
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POSTERN = os.environ.get("POSTERN") or str(REPO / "build" / "postern")

DOMAIN = "example.test"
HOSTNAME = "mx.example.test"
USERS = ["postmaster@example.test", "alice@example.test", "bob@example.test"]
FORWARDS = [
    "carol@example.test bob@example.test forward",
    "dave@example.test dave@elsewhere.example refuse",
]

# Generous: the same tests run against an ASan+UBSan build.
DEFAULT_TIMEOUT = 15.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                   "ev=seccomp_denied")

# Run as root (as in CI), every server is started as root and drops to
# this account ([server] user), with its seccomp filter and Landlock
# rules: the whole suite is the test of the sandbox.  The Makefile's
# `service-user` step creates it.
SERVICE_USER = "postern"
AS_ROOT = os.geteuid() == 0


def service_ids():
    """(uid, gid) of SERVICE_USER."""
    import pwd
    pw = pwd.getpwnam(SERVICE_USER)
    return pw.pw_uid, pw.pw_gid


def open_path_for_service(path):
    """Lets the service user walk to path (pytest's directories are 0700):
    o+x on every directory above it, as an administrator's /etc is."""
    if not AS_ROOT:
        return
    p = Path(path).resolve()
    for d in [p, *p.parents]:
        try:
            mode = d.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & 0o001:
            os.chmod(d, mode | 0o011)


# The password the TLS/AUTH tests give their users (conftest's tls_files).
AUTH_PASSWORD = "correct horse"


def make_cert(d, cn="mx.example.test", days=30):
    """A self-signed EC (P-256) certificate for cn: d/cert.pem, d/key.pem."""
    d = Path(d)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj",
         f"/CN={cn}", "-keyout", str(d / "key.pem"), "-out",
         str(d / "cert.pem")], check=True, capture_output=True)
    if AS_ROOT:
        # As an administrator would: the key readable by the service
        # user's group, so a reload after the drop can read it again.
        os.chown(d / "key.pem", 0, service_ids()[1])
        os.chmod(d / "key.pem", 0o640)
        open_path_for_service(d)
    return d / "cert.pem", d / "key.pem"


def insecure_tls_context():
    """A client context that takes any certificate (the tests' own)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def postern_version():
    out = subprocess.run([POSTERN, "--version"], capture_output=True,
                         text=True, timeout=DEFAULT_TIMEOUT)
    return out.stdout.split()[-1]


def spool_octets(spool_dir):
    """Octets of a spool's segment (.log) and done-record (.done) files;
    a file the server removes while they are counted counts nothing."""
    total = 0
    for p in Path(spool_dir).iterdir():
        if p.suffix in (".log", ".done"):
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
    return total


def free_port(host="127.0.0.1"):
    """A TCP port free on host right now (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def poll(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Calls predicate until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# SMTP client over a raw socket


class Reply:
    """One (possibly multi-line) SMTP reply."""

    def __init__(self, lines, raw):
        self.lines = lines          # each line without CRLF
        self.raw = raw              # the bytes as received
        self.code = int(lines[-1][:3])
        m = re.match(r"\d{3}[ -](\d\.\d{1,3}\.\d{1,3}) ", lines[-1] + " ")
        self.enh = m.group(1) if m else None

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def last(self):
        return self.lines[-1]

    def __repr__(self):
        return f"Reply({self.lines!r})"


class ConnectionClosed(AssertionError):
    pass


class PortTaken(AssertionError):
    pass


class SmtpClient:
    """A byte-exact SMTP client: send what you say, read whole replies."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, read_banner=True):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.banner = self.reply() if read_banner else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ConnectionClosed(
                f"server closed the connection; unread: {self.buf!r}")
        self.buf += chunk

    def line(self):
        """Next reply line, without its CRLF (which must be there)."""
        while b"\n" not in self.buf:
            self._fill()
        raw, self.buf = self.buf.split(b"\n", 1)
        assert raw.endswith(b"\r"), f"reply line without CRLF: {raw!r}"
        return raw[:-1].decode("utf-8", "replace")

    def reply(self):
        lines = []
        raw = b""
        while True:
            ln = self.line()
            raw += ln.encode() + b"\r\n"
            lines.append(ln)
            assert re.match(r"^\d{3}[ -]", ln), f"malformed reply: {ln!r}"
            if ln[3] == " ":
                return Reply(lines, raw)
            assert ln[:3] == lines[0][:3], f"code changed: {lines!r}"

    def cmd(self, line):
        """Sends line + CRLF, returns the reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def ehlo(self, name="client.test"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return r

    def mail_txn(self, sender, rcpts, body, ehlo=False):
        """MAIL, RCPTs, DATA with body (str/bytes with CRLF line ends, no
        final dot); returns the reply after the data.  Asserts each step
        succeeds."""
        if ehlo:
            self.ehlo()
        r = self.cmd(f"MAIL FROM:<{sender}>")
        assert r.code == 250, r
        for rc in rcpts:
            r = self.cmd(f"RCPT TO:<{rc}>")
            assert r.code in (250, 251), r
        r = self.cmd("DATA")
        assert r.code == 354, r
        if isinstance(body, str):
            body = body.encode()
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body + b".\r\n")
        return self.reply()

    def expect_closed(self, timeout=None):
        """Asserts the server closes the connection without sending more."""
        self.sock.settimeout(timeout or self.timeout)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                self.buf += chunk
        except socket.timeout:
            raise AssertionError("server did not close the connection")
        finally:
            self.sock.settimeout(self.timeout)
        assert self.buf == b"", f"unexpected data before close: {self.buf!r}"

    def is_closed(self, timeout=None):
        try:
            self.expect_closed(timeout)
            return True
        except AssertionError:
            return False


QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as (\S+)$")


def queue_id(reply):
    m = QUEUED_RE.match(reply.last)
    assert m, f"not a queued reply: {reply!r}"
    return m.group(1)


# --------------------------------------------------------------------------
# The server under test


def _ini(sections):
    out = []
    for sec, kv in sections.items():
        out.append(f"[{sec}]")
        for k, v in kv.items():
            if v is not None:
                out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out)


class Server:
    """One postern process with its own config dir under tmp_path.

    Keyword arguments are config sections: Server(tmp, server={"k": v}).
    A value of None removes a default key."""

    def __init__(self, tmp_path, users=None, forwards=None, listen=None,
                 **sections):
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        open_path_for_service(self.dir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.listen = listen  # None: 127.0.0.1:port
        self.conf = self.dir / "postern.conf"
        self.log_path = self.dir / "postern.log"
        self.mail_root = self.dir / "mail"
        self.spool = self.dir / "spool"
        self.proc = None
        self.logf = None
        self.log_offset_starts = []
        (self.dir / "users").write_text(
            "\n".join(USERS if users is None else users) + "\n")
        (self.dir / "forwards").write_text(
            "\n".join(FORWARDS if forwards is None else forwards) + "\n")
        self.sections = {
            "server": {
                "hostname": HOSTNAME,
                "user": SERVICE_USER if AS_ROOT else None,
                "smtp": None,
                "idle_timeout": 60,
            },
            "spool": {"dir": "spool", "reserve": 0},
            "local": {
                "domains": DOMAIN,
                "users": "users",
                "maildir": "mail/%d/%u",
                "forwards": "forwards",
            },
        }
        for sec, kv in sections.items():
            self.sections.setdefault(sec, {}).update(kv)
        self.write_config()

    def write_config(self):
        smtp = self.listen or f"{self.host}:{self.port}"
        self.sections["server"]["smtp"] = smtp
        self.conf.write_text(_ini(self.sections))

    # -- process control

    def start(self, timeout=DEFAULT_TIMEOUT, cwd=None, preexec_fn=None):
        """Starts serve (in cwd, default the config's directory) and waits
        until it listens.  When the free port was taken meanwhile (another
        process's client got it as its ephemeral port), picks another."""
        for attempt in range(3):
            try:
                return self._start(timeout, cwd, preexec_fn)
            except PortTaken:
                if self.listen is not None or attempt == 2:
                    raise
                self.port = free_port()
                self.write_config()
        return self

    def _start(self, timeout, cwd, preexec_fn):
        assert self.proc is None or self.proc.poll() is not None
        self.logf = open(self.log_path, "ab")
        self.log_offset_starts.append(self.log_path.stat().st_size)
        self.proc = subprocess.Popen(
            [POSTERN, "serve", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
            stdout=self.logf, stderr=self.logf, cwd=str(cwd or self.dir),
            preexec_fn=preexec_fn)
        start = self.log_offset_starts[-1]

        def ready():
            if self.proc.poll() is not None:
                self.logf.close()
                if "cannot listen on" in self.log()[start:]:
                    raise PortTaken(self.log()[start:])
                raise AssertionError(
                    f"postern exited with {self.proc.returncode} at start:\n"
                    + self.log()[start:])
            if quiet:
                return self._accepts()
            return "ev=started" in self.log()[start:]
        # Below info the log is silent: probe with a connection instead.
        quiet = self.sections["server"].get("log_level") in ("err", "warn")
        poll(ready, timeout, what="the server to start")
        return self

    def _accepts(self):
        try:
            socket.create_connection((self.host, self.port), 1).close()
            return True
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=DEFAULT_TIMEOUT, check=True):
        """Signals the server and waits; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"postern did not exit within {timeout}s"
                                     f" of signal {sig}")
        rc = self.proc.returncode
        self.logf.close()
        if check:
            self.assert_no_sanitizer_report()
            if sig == signal.SIGTERM:
                assert rc == 0, f"postern exited {rc}:\n{self.log_tail()}"
        return rc

    def kill9(self):
        """kill -9: no chance to clean up."""
        return self.stop(signal.SIGKILL, check=False)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def assert_no_sanitizer_report(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report in log:\n{text[-6000:]}"

    def wait_log(self, pattern, count=1, timeout=DEFAULT_TIMEOUT):
        """Waits until the log matches the regex pattern count times."""
        rx = re.compile(pattern)
        return poll(lambda: len(rx.findall(self.log())) >= count, timeout,
                    what=f"{count}x {pattern!r} in the log")

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))

    # -- clients

    def client(self, read_banner=True, host=None, port=None, **kw):
        return SmtpClient(host or self.host, port or self.port,
                          read_banner=read_banner, **kw)

    # -- Maildir

    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return self.mail_root / domain / local

    def message_files(self, address):
        d = self.maildir(address)
        files = []
        for sub in ("new", "cur"):
            p = d / sub
            if p.is_dir():
                files += sorted(p.iterdir())
        return files

    def wait_messages(self, address, n, timeout=DEFAULT_TIMEOUT):
        """Polls until address's Maildir holds n messages; asserts not more.
        Returns the file paths."""
        poll(lambda: len(self.message_files(address)) >= n, timeout,
             what=f"{n} messages in {self.maildir(address)}")
        files = self.message_files(address)
        assert len(files) == n, f"{len(files)} messages, expected {n}"
        return files

    def read_maildir(self, address):
        """mailbox.Maildir messages in address's Maildir, keyed by key."""
        md = mailbox.Maildir(str(self.maildir(address)), factory=None,
                             create=False)
        return {k: md[k] for k in md.keys()}

    def total_messages(self):
        if not self.mail_root.is_dir():
            return 0
        return sum(1 for p in self.mail_root.glob("*/*/new/*")) + \
            sum(1 for p in self.mail_root.glob("*/*/cur/*"))


def split_message(data):
    """(headers, body) of a stored message (LF line ends)."""
    head, _, body = data.partition(b"\n\n")
    return head, body


def send_message(srv, sender, rcpts, body, ehlo="client.test"):
    """One whole session; returns the queue id."""
    with srv.client() as c:
        c.ehlo(ehlo)
        r = c.mail_txn(sender, rcpts, body)
        qid = queue_id(r)
        assert c.cmd("QUIT").code == 221
    return qid
