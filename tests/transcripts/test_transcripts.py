"""Runs every tests/transcripts/*.smtp file against the real server.

The format is described in README.md beside this file.  Each file gets a
fresh server (its own spool and Maildir), the config overrides its header
names, and its connections; every reply line is compared exactly (or by
prefix / regex where the file says so), and every connection must end in
CLOSED, so no reply goes unaccounted for.

Some replies need something around the server: a TLS certificate
(`tls: on`), a submission or smtps listener (`listen:`), a resolver that
answers NXDOMAIN or nothing (`dns:`), a content filter that rejects or
tempfails (`milter:`), a lock held by another process (`LOCK`), the
control socket (`CTL`).  Those stand-ins live here, small and in-process.

test_every_replies_def_row_is_proven keeps the promise of issue 13: each
row of src/reply/replies.def is matched byte for byte by an `S:` (or
`S/:`) line of some transcript, or is named in exempt.txt with its reason.
"""
import codecs
import fcntl
import os
import re
import signal
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from postern_test import (AS_ROOT, POSTERN, REPO, SmtpClient, Server,
                          free_port, insecure_tls_context, make_cert,
                          postern_version, service_ids)

HERE = Path(__file__).resolve().parent
FILES = sorted(HERE.glob("*.smtp"))
REPLIES_DEF = REPO / "src" / "reply" / "replies.def"
EXEMPT = HERE / "exempt.txt"

REPEAT = re.compile(r"\$\{(.)\*(\d+)\}")
HEADER_WORDS = {"tls": ("on",), "listen": ("submission", "smtps"),
                "dns": ("nxdomain", "silent"),
                "milter": ("reject", "tempfail")}
STEP_WORDS = ("CONNECT", "USE", "SIGNAL", "LOCK", "UNLOCK", "CTL", "AWAIT")


class TranscriptError(Exception):
    pass


def expand(text, version):
    """${VERSION}, and ${c*N} for N copies of the character c."""
    text = text.replace("${VERSION}", version)
    return REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text)


def parse_step(path, n, line, steps):
    """A bare-word step (CONNECT, LOCK, ...): True when line was one."""
    word = line.split()
    if word[0] in ("CLOSED", "STARTTLS") and len(word) == 1:
        steps.append((n, word[0], None))
        return True
    if word[0] not in STEP_WORDS:
        return False
    nargs = {"CONNECT": (2, 3), "USE": (2,), "SIGNAL": (2,), "LOCK": (2,),
             "UNLOCK": (2,), "AWAIT": (3,)}.get(word[0], range(2, 9))
    if len(word) not in nargs:
        raise TranscriptError(f"{path.name}:{n}: wrong arguments {line!r}")
    if word[0] == "CONNECT" and len(word) == 3 and \
            word[2] not in ("smtp", "submission", "smtps"):
        raise TranscriptError(f"{path.name}:{n}: CONNECT NAME "
                              "[smtp|submission|smtps]")
    steps.append((n, word[0], word[1:] if len(word) > 2 else word[1]))
    return True


def parse(path):
    """Returns (config overrides, steps, delivered checks).  The config
    dict also carries the header words under "__users__", "__tls__",
    "__listen__", "__dns__" and "__milter__"."""
    config, steps, delivered = {}, [], []
    for n, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if parse_step(path, n, line, steps):
            continue
        key, sep, val = line.partition(":")
        val = val[1:] if val.startswith(" ") else val
        if not sep:
            raise TranscriptError(f"{path.name}:{n}: unknown line {line!r}")
        if key == "config":
            m = re.fullmatch(r"\s*(\w+)\.(\w+)\s*=\s*(.*?)\s*", val)
            if not m:
                raise TranscriptError(f"{path.name}:{n}: config: "
                                      "SECTION.KEY = VALUE")
            config.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
        elif key == "users":
            config.setdefault("__users__", []).append(val.strip())
        elif key == "txt":
            name, _, value = val.strip().partition(" ")
            if not value:
                raise TranscriptError(f"{path.name}:{n}: txt: NAME VALUE")
            config.setdefault("__txt__", {}).setdefault(
                name.lower().rstrip("."), []).append(value)
        elif key in HEADER_WORDS:
            if val.strip() not in HEADER_WORDS[key]:
                raise TranscriptError(f"{path.name}:{n}: {key}: one of "
                                      f"{', '.join(HEADER_WORDS[key])}")
            config.setdefault(f"__{key}__", []).append(val.strip())
        elif key in ("C", "R", "S", "S~", "S/"):
            steps.append((n, key, val))
        elif key == "DELIVERED":
            who, count = val.split()
            delivered.append((n, who, int(count)))
        else:
            raise TranscriptError(f"{path.name}:{n}: unknown line {line!r}")
    return config, steps, delivered


# --------------------------------------------------------------------------
# Stand-ins around the server


def tls_cert(d):
    """The [tls] keys for a fresh self-signed certificate in d."""
    cert, key = make_cert(d)
    return {"cert": str(cert), "key": str(key)}


class Standin:
    """A loopback socket served on a daemon thread until close()."""

    def __init__(self, kind):
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        if kind == socket.SOCK_STREAM:
            self.sock.listen(8)
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def close(self):
        for s in [self.sock] + self.conns:
            try:
                s.close()
            except OSError:
                pass


class FakeDns(Standin):
    """`dns: nxdomain` answers every query NXDOMAIN (RCODE 3); `dns:
    silent` reads queries and never answers (a lookup that times out).
    `txt: NAME VALUE` lines: a TXT query for NAME is answered with its
    records (a name with records answers NODATA to other types), every
    other query NXDOMAIN."""

    def __init__(self, mode, txt=None):
        self.mode = mode
        self.txt = txt or {}
        super().__init__(socket.SOCK_DGRAM)

    @staticmethod
    def question(q):
        """(name, qtype) of a query, or (None, None)."""
        labels, i = [], 12
        while i < len(q) and q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode(errors="replace"))
            i += 1 + n
        if i + 5 > len(q):
            return None, None
        return ".".join(labels).lower(), struct.unpack(">H", q[i + 1:i + 3])[0]

    def answer(self, q):
        """The reply to q: its TXT records, NODATA or NXDOMAIN."""
        name, qtype = self.question(q)
        qend = 12 + len(name or "") + 2 + 4 if name else len(q)
        records = self.txt.get(name) if name is not None else None
        rr = b""
        if records is not None and qtype == 16:
            for r in records:
                raw = r.encode()
                data = b"".join(bytes([len(raw[k:k + 255])]) + raw[k:k + 255]
                                for k in range(0, len(raw), 255))
                rr += struct.pack(">HHHIH", 0xC00C, 16, 1, 60, len(data)) \
                    + data
        rcode = 0 if records is not None else 3
        n_ans = len(records) if rr else 0
        flags = 0x8000 | (q[2] & 0x01) << 8 | 0x0080 | 0x0400 | rcode
        return (q[:2] + struct.pack(">HHHHH", flags, 1, n_ans, 0, 0)
                + q[12:qend] + rr)

    def run(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if self.mode == "silent" or len(q) < 12:
                continue
            if self.txt:
                self.sock.sendto(self.answer(q), peer)
                continue
            # Same id and question; QR, RD copied, RA; RCODE 3; one
            # question, no answers.
            flags = 0x8000 | (q[2] & 0x01) << 8 | 0x0080 | 3
            self.sock.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0)
                             + q[12:], peer)


class FakeMilter(Standin):
    """A milter (protocol version 6) that takes no options and answers
    the first step after OPTNEG (CONNECT) with REJECT ('r') or TEMPFAIL
    ('t'): the verdict counts for the whole message."""

    def __init__(self, mode):
        self.answer = b"r" if mode == "reject" else b"t"
        super().__init__(socket.SOCK_STREAM)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    @staticmethod
    def packet(conn):
        head = b""
        while len(head) < 4:
            chunk = conn.recv(4 - len(head))
            if not chunk:
                return None, None
            head += chunk
        (n,) = struct.unpack(">I", head)
        body = b""
        while len(body) < n:
            chunk = conn.recv(n - len(body))
            if not chunk:
                return None, None
            body += chunk
        return body[:1], body[1:]

    def serve(self, conn):
        try:
            while True:
                cmd, _ = self.packet(conn)
                if cmd is None or cmd == b"Q":
                    return
                if cmd == b"O":
                    out = b"O" + struct.pack(">III", 6, 0, 0)
                elif cmd == b"D":
                    continue  # macros: no reply
                else:
                    out = self.answer
                conn.sendall(struct.pack(">I", len(out)) + out)
        except OSError:
            return


class Locks:
    """`LOCK PATH`: an fcntl write lock on PATH (under the server's
    directory, made if missing), held by this process - "another
    process" to the server - until `UNLOCK PATH` or the end."""

    def __init__(self, base):
        self.base = base
        self.fds = {}

    def lock(self, rel):
        p = self.base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
        if AS_ROOT:  # the mailbox is the server's, as if it had made it
            os.fchown(fd, *service_ids())
        fcntl.lockf(fd, fcntl.LOCK_EX)
        self.fds[rel] = fd

    def unlock(self, rel):
        fd = self.fds.pop(rel)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)

    def close(self):
        for rel in list(self.fds):
            self.unlock(rel)


def build_server(config, tmp_path, standins):
    """The Server for a transcript's header; stand-ins go to standins."""
    users = config.pop("__users__", None)
    tls = config.pop("__tls__", None)
    listen = config.pop("__listen__", [])
    txt = config.pop("__txt__", None)
    if txt and not config.get("__dns__"):
        config["__dns__"] = ["nxdomain"]
    for key, cls in (("__dns__", FakeDns), ("__milter__", FakeMilter)):
        for mode in config.pop(key, []):
            standins.append(cls(mode, txt) if cls is FakeDns else cls(mode))
            spec = f"127.0.0.1:{standins[-1].port}"
            if cls is FakeDns:
                config.setdefault("dns", {}).setdefault("servers", spec)
            else:
                config.setdefault("filter", {}).setdefault(
                    "milter", "inet:" + spec)
    if tls:
        tmp_path.mkdir(parents=True, exist_ok=True)
        config["tls"] = {**tls_cert(tmp_path), **config.get("tls", {})}
    ports = {"smtp": None}
    for which in listen:
        ports[which] = free_port()
        config.setdefault("server", {})[which] = f"127.0.0.1:{ports[which]}"
    srv = Server(tmp_path, users=users, **config)
    srv.start()
    ports["smtp"] = srv.port
    return srv, ports


def open_conn(srv, ports, which):
    """A client on the named listener; smtps is TLS from the start."""
    if ports.get(which) is None:
        raise AssertionError(f"no {which} listener: add `listen: {which}`")
    c = SmtpClient(srv.host, ports[which], read_banner=False)
    if which == "smtps":
        c.sock = insecure_tls_context().wrap_socket(c.sock)
    return c


def starttls(c, where):
    """Switches a connection to TLS after the server's 220 2.0.0."""
    if c.buf:
        raise AssertionError(f"{where}: data before the TLS handshake "
                             f"(the injection STARTTLS must drop): {c.buf!r}")
    c.sock = insecure_tls_context().wrap_socket(c.sock)


def run_ctl(srv, args, where):
    p = subprocess.run([POSTERN, "ctl", *args, "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (f"{where}: postern ctl {' '.join(args)}: "
                               f"{p.returncode} {p.stdout}{p.stderr}")


# --------------------------------------------------------------------------
# The run


def expect_line(cur, kind, want, where):
    try:
        got = cur.line()
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{where}: expected {want!r}, got "
                             f"{type(e).__name__}: {e}") from None
    ok = (got == want if kind == "S" else
          got.startswith(want) if kind == "S~" else
          re.fullmatch(want, got) is not None)
    assert ok, f"{where}: expected {kind} {want!r}\n   got    {got!r}"


def expect_closed(cur, where):
    try:
        cur.expect_closed()
    except AssertionError as e:
        raise AssertionError(f"{where}: expected the server to "
                             f"close: {e}") from None
    cur.closed = True


def run_steps(path, steps, srv, ports, conns, locks):
    version = postern_version()
    cur = conns["main"] = open_conn(srv, ports, "smtp")
    for n, kind, val in steps:
        where = f"{path.name}:{n}"
        if kind == "CONNECT":
            name, which = (val, "smtp") if isinstance(val, str) else val
            cur = conns[name] = open_conn(srv, ports, which)
        elif kind == "USE":
            cur = conns[val]
        elif kind == "SIGNAL":
            srv.proc.send_signal(getattr(signal, "SIG" + val))
        elif kind == "STARTTLS":
            starttls(cur, where)
        elif kind == "LOCK":
            locks.lock(val)
        elif kind == "UNLOCK":
            locks.unlock(val)
        elif kind == "CTL":
            run_ctl(srv, [val] if isinstance(val, str) else val, where)
        elif kind == "AWAIT":
            srv.wait_messages(val[0], int(val[1]))
        elif kind == "C":
            cur.send(expand(val, version).encode() + b"\r\n")
        elif kind == "R":
            cur.send(codecs.escape_decode(expand(val, version).encode())[0])
        elif kind == "CLOSED":
            expect_closed(cur, where)
        else:
            expect_line(cur, kind, expand(val, version), where)


def run_transcript(path, tmp_path):
    config, steps, delivered = parse(path)
    standins, conns = [], {}
    locks = Locks(Path(tmp_path))
    srv = None
    try:
        srv, ports = build_server(config, Path(tmp_path), standins)
        run_steps(path, steps, srv, ports, conns, locks)
        for name, c in conns.items():
            assert getattr(c, "closed", False), (
                f"{path.name}: connection {name!r} must end with CLOSED")
        for n, who, count in delivered:
            if who != "*" and count > 0:
                srv.wait_messages(who, count)
        srv.stop()  # SIGTERM (or already stopped by SIGNAL): exit 0
        for n, who, count in delivered:
            got = (srv.total_messages() if who == "*"
                   else len(srv.message_files(who)))
            assert got == count, (f"{path.name}:{n}: {who} has {got} "
                                  f"messages, expected {count}")
    finally:
        for c in conns.values():
            c.close()
        locks.close()
        for s in standins:
            s.close()
        if srv is not None:
            if srv.running():
                srv.stop(check=False)
            print(f"--- server log:\n{srv.log_tail(100)}")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path, tmp_path):
    run_transcript(path, tmp_path)


# --------------------------------------------------------------------------
# Every row of replies.def: a transcript, or a reason in exempt.txt

ROW = re.compile(r'R\((\w+),\s*(\d{3}),\s*(NULL|"[^"]*"),\s*\w+,\s*"(.*)"\)')


def replies_def_rows(text=None):
    """{id: regex of the whole reply line} for each row of replies.def:
    %s and %u stand for any text, %% for a percent sign."""
    rows = {}
    for line in (text or REPLIES_DEF.read_text()).splitlines():
        m = ROW.match(line.strip())
        if not m:
            continue
        ident, code, enh, fmt = m.groups()
        head = code + " " + ("" if enh == "NULL" else enh.strip('"') + " ")
        parts = re.split(r"(%[su%])", fmt)
        rx = re.escape(head) + "".join(
            ".+" if p in ("%s", "%u") else "%" if p == "%%" else re.escape(p)
            for p in parts)
        rows[ident] = re.compile(rx)
    return rows


def proven_lines(files):
    """(file name, line) for each exact reply line the transcripts expect:
    `S:` as written, `S/:` with its regex escapes of punctuation undone
    (`250 2\\.0\\.0 Ok: queued as \\S+` reads `250 2.0.0 Ok: queued as
    \\S+`, which the row's `.+` matches).  `S~:` prefixes prove nothing."""
    out = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.startswith("S: "):
                out.append((f.name, line[3:]))
            elif line.startswith("S/: "):
                out.append((f.name, re.sub(r"\\([^A-Za-z0-9])", r"\1",
                                           line[4:])))
    return out


def exemptions(text=None):
    """{id: reason} from exempt.txt: `ID  reason` lines, # comments."""
    out = {}
    for line in (text or EXEMPT.read_text()).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ident, _, reason = line.partition(" ")
            assert reason.strip(), f"exempt.txt: {ident} needs a reason"
            out[ident] = reason.strip()
    return out


def unproven(rows, lines, exempt):
    """(rows with neither a transcript nor an exemption, exemptions that
    name no row or a row a transcript proves after all)."""
    proven = {i for i, rx in rows.items()
              if any(rx.fullmatch(s) for _, s in lines)}
    missing = sorted(set(rows) - proven - set(exempt))
    stale = sorted(i for i in exempt if i not in rows or i in proven)
    return missing, stale


def test_every_replies_def_row_is_proven():
    rows = replies_def_rows()
    assert len(rows) >= 80, "replies.def rows not parsed"
    missing, stale = unproven(rows, proven_lines(FILES), exemptions())
    assert not missing, ("replies.def rows without a transcript (write "
                         "<code>_<situation>.smtp, or exempt one in "
                         f"exempt.txt with its reason): {missing}")
    assert not stale, ("exempt.txt names rows that do not exist or that a "
                       f"transcript proves: {stale}")


def test_a_new_row_without_a_transcript_fails_the_check():
    rows = replies_def_rows(REPLIES_DEF.read_text() + '\nR(BRAND_NEW, 250, '
                            '"2.0.0", ARG_STR, "Brand %s new")\n')
    missing, _ = unproven(rows, proven_lines(FILES), exemptions())
    assert missing == ["BRAND_NEW"]


def test_every_reply_codes_row_has_a_transcript():
    """REPLY-CODES.md rows, by the code and situation in the file name."""
    names = {p.stem for p in FILES}
    for prefix in ("220", "221", "250", "251", "421", "450", "451", "452",
                   "455", "500", "501", "502", "503", "504", "550", "551",
                   "552", "554", "555"):
        assert any(n.startswith(prefix + "_") for n in names), prefix
    for part in ("idle_timeout", "too_many_errors", "max_connections",
                 "insufficient_storage", "too_many_recipients",
                 "user_unknown", "relay_denied", "user_moved",
                 "will_forward", "size", "greylisted", "mailbox_locked",
                 "on_hold", "filter", "dns", "state_store"):
        assert any(part in n for n in names), part


def test_parse_rejects_unknown_lines(tmp_path):
    p = tmp_path / "bad.smtp"
    p.write_text("X: what\n")
    with pytest.raises(TranscriptError):
        parse(p)


def test_a_wrong_expectation_fails(tmp_path):
    """The driver itself can fail: a transcript expecting 250 to a bogus
    command must not pass."""
    p = tmp_path / "wrong.smtp"
    p.write_text("S~: 220 \nC: BOGUS\nS: 250 2.0.0 OK\n")
    with pytest.raises(AssertionError, match="wrong.smtp:3"):
        run_transcript(p, tmp_path / "srv")
