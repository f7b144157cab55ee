"""smtp_peer - a scripted SMTP/LMTP server for testing postern's sending side.

Python stdlib only.  One thread accepts, one thread serves each
connection.  Every reply can be scripted per command; whatever is not
scripted gets an ordinary positive answer.

    peer = Peer(script={"greeting": ["421 4.3.2 busy", "220 ok"],
                        "RCPT": ["450 4.2.0 Greylisted, retry in 2 s",
                                 "250 ok"]},
                rcpt={"gone@remote.test": ["550 5.1.1 No such user"]})
    peer.start()                    # peer.host, peer.port
    ...
    msgs = peer.wait_messages(1)    # the accepted transactions
    assert msgs[0].data == b"Subject: x\\r\\n\\r\\nbody\\r\\n"
    peer.stop()

Scripts: a dict from a key to a list of replies.  The keys are
"greeting" (one per connection), the command verbs ("EHLO", "HELO",
"LHLO", "MAIL", "RCPT", "DATA" - the reply to the DATA command itself -,
"RSET", "NOOP", "QUIT", "STARTTLS") and "DOT" (the reply after the
message's final dot).  Each list is consumed one item per occurrence,
counted across all connections, and its last item repeats for ever, so
["450 ...", "250 ok"] refuses the first time and accepts from then on,
and ["451 4.3.0 later"] refuses for ever.  `rcpt` is the same per
recipient address (case-insensitive) and takes precedence over
script["RCPT"]; `lmtp_dot` likewise gives LMTP's per-recipient replies
after the dot.

A reply is a str (lines separated by "\\n"; CRLF is added), None for
the default reply, or one of
    Delay(seconds, reply)  - wait, then send reply
    CLOSE                  - close the connection without a reply
A reply whose code is 421 closes the connection after it is sent.

`greylist=N` makes the peer a real greylister: a RCPT gets "450 4.2.0
... Greylisted, retry in N s" until N seconds have passed since its
sender/recipient pair was first seen (scripts for the address win).

Capabilities: `caps` is the list of EHLO keywords after the greeting
line, default DEFAULT_CAPS (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN,
ENHANCEDSTATUSCODES; no STARTTLS, no CHUNKING).

Recording: `peer.connections` is the list of Connection objects (the
commands received in order, each with the number of replies the peer
had sent when its bytes arrived - equal numbers mean pipelined - and
the transactions).  A Transaction has the MAIL address and parameters,
the RCPTs with their parameters and replies, the data as received
(`raw`, still dot-stuffed) and after undoing the dot-stuffing (`data`),
`bad_line_ends` (every data line that did not end in CRLF), and the
reply given after the dot.  `peer.messages` are the transactions the
peer accepted (2xx after the dot; for LMTP, one or more recipients).
`peer.assert_clean()` asserts the client sent every line with CRLF and
no message text before the 354.

It also holds the shared set-up the outbound tests need: a postern
configured to send to peers (outbound_server) and message injection
through authenticated submission (submit), and `postern queue` (queue).
"""
import atexit
import email
import email.policy
import os
import re
import select
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_TIMEOUT = 15.0

DEFAULT_CAPS = ["PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8",
                "DSN", "ENHANCEDSTATUSCODES"]


# Peers listen on ports no other peer of this run has had.  A kernel-chosen
# port can be one a peer of another test (another xdist worker) just
# closed, and that test's server, retrying its deferred mail, would then
# deliver into this peer.  Each worker takes its own block of ports below
# the kernel's ephemeral range (32768-60999), in order, never twice.
_PORT_BLOCK = 1500
_PORT_BASE = 20000
_port_next = None


def _bind_fresh_port(sock, host):
    global _port_next
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(worker[2:]) if worker[2:].isdigit() else 0
    first = _PORT_BASE + (n % 8) * _PORT_BLOCK
    if _port_next is None:
        _port_next = first
    for _ in range(_PORT_BLOCK):
        port = _port_next
        _port_next = first + (_port_next + 1 - first) % _PORT_BLOCK
        try:
            sock.bind((host, port))
            return port
        except OSError:
            continue
    sock.bind((host, 0))
    return sock.getsockname()[1]


class Delay:
    """A reply sent after a pause (a slow peer)."""

    def __init__(self, seconds, reply):
        self.seconds = seconds
        self.reply = reply

    def __repr__(self):
        return f"Delay({self.seconds}, {self.reply!r})"


class _Close:
    def __repr__(self):
        return "CLOSE"


CLOSE = _Close()


def moved(new, code="551 5.1.6"):
    """The 551 reply that names a forward address (REPLY-CODES.md)."""
    return f"{code} User not local; please try <{new}>"


def reply_code(reply):
    if isinstance(reply, Delay):
        reply = reply.reply
    if isinstance(reply, str) and re.match(r"\d{3}", reply):
        return int(reply[:3])
    return None


class Command:
    """One command line as received."""

    def __init__(self, line, replies_sent, t):
        self.line = line                  # str, without CRLF
        self.replies_sent = replies_sent  # replies sent when it arrived
        self.time = t                     # time.monotonic() at arrival
        self.reply = None                 # what the peer answered

    @property
    def verb(self):
        return self.line.split(" ", 1)[0].upper()

    def __repr__(self):
        return f"Command({self.line!r}, sent={self.replies_sent}, " \
               f"reply={self.reply!r})"


def parse_params(text):
    """'SIZE=10 BODY=8BITMIME RET' -> {'SIZE': '10', 'BODY': '8BITMIME',
    'RET': None}"""
    out = {}
    for word in text.split():
        k, eq, v = word.partition("=")
        out[k.upper()] = v if eq else None
    return out


def parse_path(arg):
    """'FROM:<a@b> SIZE=1' -> ('a@b', {'SIZE': '1'})"""
    m = re.match(r"^(?:FROM|TO):\s*<([^>]*)>\s*(.*)$", arg, re.I)
    if not m:
        return None, {}
    return m.group(1), parse_params(m.group(2))


class Transaction:
    """MAIL .. RCPTs .. DATA on one connection."""

    def __init__(self, conn, mail_from, params, reply):
        self.conn = conn
        self.mail_from = mail_from
        self.mail_params = params
        self.mail_reply = reply
        self.rcpts = []          # [Rcpt]
        self.raw = b""           # data as received (dot-stuffed)
        self.data = None         # data after unstuffing (None: no DATA)
        self.bad_line_ends = []  # data lines not ending in CRLF
        self.dot_reply = None    # the reply after the final dot
        self.dot_reply_sent = None  # False: the client had gone by then
        self.lmtp_replies = {}   # LMTP: address -> reply after the dot
        self.finished = False    # every reply after the dot recorded
        self.time = time.monotonic()

    @property
    def accepted_rcpts(self):
        return [r.address for r in self.rcpts if r.code // 100 == 2]

    @property
    def delivered_to(self):
        """Addresses this transaction delivered to (2xx after the dot)."""
        if self.data is None or not self.finished:
            return []
        if self.lmtp_replies:
            return [a for a, r in self.lmtp_replies.items()
                    if reply_code(r) // 100 == 2]
        if reply_code(self.dot_reply) and reply_code(self.dot_reply) // 100 \
                == 2:
            return self.accepted_rcpts
        return []

    def message(self):
        """The data parsed by the email package."""
        return email.message_from_bytes(self.data,
                                        policy=email.policy.default)

    def __repr__(self):
        return (f"Transaction(from={self.mail_from!r}, "
                f"rcpts={[r.address for r in self.rcpts]!r}, "
                f"data={len(self.data or b'')}B, dot={self.dot_reply!r})")


class Rcpt:
    def __init__(self, address, params, reply):
        self.address = address
        self.params = params
        self.reply = reply

    @property
    def code(self):
        return reply_code(self.reply) or 0

    def __repr__(self):
        return f"Rcpt({self.address!r}, {self.reply!r})"


class Connection:
    def __init__(self, peer, addr):
        self.peer = peer
        self.remote = addr
        self.local = None
        self.commands = []
        self.transactions = []
        self.replies_sent = 0
        self.closed = False
        self.protocol_errors = []  # client misbehaviour seen
        self.tls = False
        self.time = time.monotonic()

    def verbs(self):
        return [c.verb for c in self.commands]

    def __repr__(self):
        return f"Connection({self.remote}, {self.verbs()})"


class Peer:
    """A scripted SMTP (or LMTP) server on host:port (0 = a free port),
    or on a unix socket when unix= names a path."""

    def __init__(self, host="127.0.0.1", port=0, script=None, rcpt=None,
                 caps=None, lmtp=False, lmtp_dot=None, hostname=None,
                 unix=None, batch_wait=0.0, tls_context=None,
                 greylist=None):
        self.host = host
        self.port = port
        self.unix = unix
        self.script = {k.upper() if k != "greeting" else k: list(v)
                       for k, v in (script or {}).items()}
        self.rcpt_script = {k.lower(): list(v)
                            for k, v in (rcpt or {}).items()}
        self.lmtp_dot = {k.lower(): list(v)
                         for k, v in (lmtp_dot or {}).items()}
        self.caps = list(DEFAULT_CAPS if caps is None else caps)
        self.lmtp = lmtp
        self.hostname = hostname or ("lmtp.peer.test" if lmtp
                                     else "peer.test")
        self.batch_wait = batch_wait
        self.tls_context = tls_context
        self.greylist = greylist    # seconds, or None
        self.grey_first = {}        # (sender, rcpt) -> first sight
        self.connections = []
        self.counts = {}        # script key -> occurrences so far
        self.rcpt_counts = {}
        self.lmtp_counts = {}
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.sock = None
        self.threads = []
        self.client_socks = []
        self.queued = 0

    # -- life cycle

    def start(self):
        if self.unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                os.unlink(self.unix)
            except FileNotFoundError:
                pass
            self.sock.bind(self.unix)
            # As Dovecot's LMTP socket (mode 0666): a postern started as
            # root talks to it as its service user.
            from postern_test import open_path_for_service
            os.chmod(self.unix, 0o666)
            open_path_for_service(Path(self.unix).parent)
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.port:
                self.sock.bind((self.host, self.port))
            else:
                self.port = _bind_fresh_port(self.sock, self.host)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True,
                             name=f"peer-accept-{self.port}")
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        with self.cond:
            socks = list(self.client_socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)
        if self.unix:
            try:
                os.unlink(self.unix)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self):
        return self.unix if self.unix else f"{self.host}:{self.port}"

    # -- what was seen

    @property
    def messages(self):
        """Transactions the peer accepted (2xx after the dot)."""
        with self.cond:
            return [t for c in self.connections for t in c.transactions
                    if t.delivered_to]

    @property
    def transactions(self):
        with self.cond:
            return [t for c in self.connections for t in c.transactions]

    def rcpt_attempts(self, address):
        """RCPT commands seen for address (any reply)."""
        with self.cond:
            return [r for c in self.connections for t in c.transactions
                    for r in t.rcpts if r.address.lower() == address.lower()]

    def delivered(self, address):
        """Transactions that delivered to address."""
        return [t for t in self.messages
                if address.lower() in (a.lower() for a in t.delivered_to)]

    def wait(self, predicate, timeout=DEFAULT_TIMEOUT, what="condition"):
        """Waits until predicate() is true; returns its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = predicate()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"peer {self.address}: timed out after {timeout}s "
                        f"waiting for {what}; connections: "
                        f"{self.connections!r}")
                self.cond.wait(min(left, 0.1))

    def wait_messages(self, n, timeout=DEFAULT_TIMEOUT):
        """Waits until n messages were accepted; returns them."""
        self.wait(lambda: len(self.messages) >= n, timeout,
                  f"{n} accepted messages")
        return self.messages

    def wait_connections(self, n, timeout=DEFAULT_TIMEOUT):
        self.wait(lambda: len(self.connections) >= n, timeout,
                  f"{n} connections")
        return list(self.connections)

    def wait_rcpts(self, address, n, timeout=DEFAULT_TIMEOUT):
        """Waits until address was offered in n RCPT commands."""
        self.wait(lambda: len(self.rcpt_attempts(address)) >= n, timeout,
                  f"{n} RCPT TO:<{address}>")
        return self.rcpt_attempts(address)

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """Waits until every connection so far has ended."""
        self.wait(lambda: all(c.closed for c in self.connections), timeout,
                  "every connection closed")

    def assert_clean(self):
        """Asserts the client never broke the protocol here: every command
        and data line ended in CRLF, no data before the 354."""
        with self.cond:
            bad = [(t.mail_from, line) for c in self.connections
                   for t in c.transactions for line in t.bad_line_ends]
        assert not bad, f"data lines without CRLF sent to {self.address}: " \
            f"{bad[:5]!r}"
        errs = self.protocol_errors()
        assert not errs, f"protocol errors at {self.address}: {errs[:5]!r}"

    def protocol_errors(self):
        with self.cond:
            return [e for c in self.connections for e in c.protocol_errors]

    # -- the script

    def set_script(self, key, replies):
        """Replaces a script while the peer runs; its occurrence count
        goes on (so a one-item list is used from now on)."""
        with self.cond:
            self.script[key if key == "greeting" else key.upper()] = \
                list(replies)

    def set_rcpt(self, address, replies):
        """Replaces (or with None removes) the script for one address."""
        with self.cond:
            if replies is None:
                self.rcpt_script.pop(address.lower(), None)
            else:
                self.rcpt_script[address.lower()] = list(replies)
                self.rcpt_counts[address.lower()] = 0

    def _next(self, key, default):
        """The scripted reply for the next occurrence of key."""
        with self.cond:
            n = self.counts.get(key, 0)
            self.counts[key] = n + 1
            items = self.script.get(key)
        if not items:
            return default
        item = items[min(n, len(items) - 1)]
        return default if item is None else item

    def _next_for(self, table, counts, address):
        with self.cond:
            items = table.get(address.lower())
            if items is None:
                return None
            n = counts.get(address.lower(), 0)
            counts[address.lower()] = n + 1
        return items[min(n, len(items) - 1)]

    def _greylist(self, sender, rcpt):
        """A real greylister: 450 until `greylist` seconds have passed
        since the pair was first seen, then no opinion (None)."""
        key = (sender.lower(), rcpt.lower())
        now = time.monotonic()
        with self.cond:
            first = self.grey_first.setdefault(key, now)
        left = self.greylist - (now - first)
        if left > 0:
            return (f"450 4.2.0 <{rcpt}>: Recipient address rejected: "
                    f"Greylisted, retry in {int(self.greylist)} s")
        return None

    # -- serving

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn = Connection(self, addr)
            try:
                conn.local = s.getsockname()
            except OSError:
                pass
            with self.cond:
                self.connections.append(conn)
                self.client_socks.append(s)
                self.cond.notify_all()
            t = threading.Thread(target=self._serve, args=(s, conn),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, s, conn):
        try:
            _Session(self, s, conn).run()
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass
            with self.cond:
                conn.closed = True
                if s in self.client_socks:
                    self.client_socks.remove(s)
                self.cond.notify_all()


class _Hangup(Exception):
    pass


class _Session:
    def __init__(self, peer, sock, conn):
        self.peer = peer
        self.sock = sock
        self.conn = conn
        self.buf = b""
        self.txn = None
        self.greeted = False
        self.stamp = (0, time.monotonic())  # replies sent, time: last recv
        self.tls = False
        self.sock.settimeout(1.0)

    # -- I/O

    def _recv(self):
        """Reads what is there (waiting for it); marks arrival."""
        while True:
            if self.peer.stopping.is_set():
                raise _Hangup()
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise _Hangup()
            break
        # A little patience lets a pipelined batch arrive whole.
        if self.peer.batch_wait:
            end = time.monotonic() + self.peer.batch_wait
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    break
                more = self.sock.recv(65536)
                if not more:
                    break
                chunk += more
        return chunk

    def _lines_available(self):
        """Complete lines in the buffer, as Command objects stamped now."""
        out = []
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            out.append(raw)
        return out

    def send(self, reply, cmd=None):
        """Sends one reply; False when the connection is to be closed."""
        if isinstance(reply, Delay):
            if self.peer.stopping.wait(reply.seconds):
                raise _Hangup()
            reply = reply.reply
        if reply is CLOSE:
            if cmd is not None:
                cmd.reply = "CLOSE"
            raise _Hangup()
        if cmd is not None:
            cmd.reply = reply
        lines = reply.split("\n")
        data = b"".join(ln.encode() + b"\r\n" for ln in lines)
        self.sock.sendall(data)
        with self.peer.cond:
            self.conn.replies_sent += 1
            self.peer.cond.notify_all()
        if reply.startswith("421"):
            raise _Hangup()
        return True

    def run(self):
        try:
            self._run()
        except _Hangup:
            pass

    def _run(self):
        p = self.peer
        greeting = p._next("greeting", f"220 {p.hostname} "
                           f"{'LMTP' if p.lmtp else 'ESMTP'} smtp_peer")
        self.send(greeting)
        code = reply_code(greeting)
        pending = []  # (raw line, replies_sent at arrival, time)
        while True:
            if not pending:
                # Lines left over from the data's last chunk first.
                pending = [(ln, self.stamp[0], self.stamp[1])
                           for ln in self._lines_available()]
            if not pending:
                chunk = self._recv()
                with p.cond:
                    sent = self.conn.replies_sent
                self.buf += chunk
                t = time.monotonic()
                self.stamp = (sent, t)
                pending = [(ln, sent, t) for ln in self._lines_available()]
                if not pending:
                    continue
            raw, sent, t = pending.pop(0)
            if not raw.endswith(b"\r"):
                self.conn.protocol_errors.append(
                    f"command line without CRLF: {raw!r}")
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            cmd = Command(line, sent, t)
            with p.cond:
                self.conn.commands.append(cmd)
                p.cond.notify_all()
            if code is not None and code // 100 != 2:
                # A refusing greeting: only QUIT is served (RFC 5321 3.1).
                if cmd.verb == "QUIT":
                    self.send("221 2.0.0 Bye", cmd)
                    return
                self.send("503 5.5.1 Bad sequence of commands", cmd)
                continue
            more = self._command(cmd, pending)
            if more is False:
                return

    def _ehlo_reply(self, verb):
        p = self.peer
        caps = [c for c in p.caps
                if not (self.tls and c.upper() == "STARTTLS")]
        default = "\n".join(
            [f"250-{p.hostname}"] + [f"250-{c}" for c in caps[:-1]] +
            [f"250 {caps[-1]}"]) if caps else f"250 {p.hostname}"
        return p._next(verb, default)

    def _command(self, cmd, pending):
        p = self.peer
        verb = cmd.verb
        arg = cmd.line[len(verb):].strip()
        if p.lmtp and verb in ("EHLO", "HELO"):
            self.send("500 5.5.1 This is LMTP: use LHLO", cmd)
            return True
        if not p.lmtp and verb == "LHLO":
            self.send("500 5.5.1 Command unrecognized", cmd)
            return True
        if verb in ("EHLO", "LHLO"):
            r = self._ehlo_reply(verb)
            if reply_code(r) and reply_code(r) // 100 == 2:
                self.greeted = True
                self.txn = None
            self.send(r, cmd)
        elif verb == "HELO":
            r = p._next("HELO", f"250 {p.hostname}")
            if reply_code(r) and reply_code(r) // 100 == 2:
                self.greeted = True
                self.txn = None
            self.send(r, cmd)
        elif verb == "STARTTLS":
            self._starttls(cmd)
        elif verb == "MAIL":
            if self.txn is not None:
                self.send("503 5.5.1 Nested MAIL command", cmd)
                return True
            addr, params = parse_path(arg)
            if addr is None:
                self.send("501 5.5.4 Syntax: MAIL FROM:<address>", cmd)
                return True
            r = p._next("MAIL", "250 2.1.0 Ok")
            txn = Transaction(self.conn, addr, params, r)
            with p.cond:
                self.conn.transactions.append(txn)
            if reply_code(r) and reply_code(r) // 100 == 2:
                self.txn = txn
            self.send(r, cmd)
        elif verb == "RCPT":
            if self.txn is None:
                self.send("503 5.5.1 Need MAIL command", cmd)
                return True
            addr, params = parse_path(arg)
            if addr is None:
                self.send("501 5.5.4 Syntax: RCPT TO:<address>", cmd)
                return True
            r = p._next_for(p.rcpt_script, p.rcpt_counts, addr)
            if r is None and p.greylist is not None:
                r = p._greylist(self.txn.mail_from, addr)
            if r is None:
                r = p._next("RCPT", "250 2.1.5 Ok")
            with p.cond:
                self.txn.rcpts.append(Rcpt(addr, params, r))
                p.cond.notify_all()
            self.send(r, cmd)
        elif verb == "DATA":
            if self.txn is None:
                self.send("503 5.5.1 Need MAIL command", cmd)
                return True
            if not self.txn.accepted_rcpts:
                # As Postfix: the transaction stays open, the client must
                # RSET (or QUIT) before its next MAIL.
                self.send("554 5.5.1 Error: no valid recipients", cmd)
                return True
            r = p._next("DATA", "354 End data with <CR><LF>.<CR><LF>")
            self.send(r, cmd)
            if reply_code(r) != 354:
                self.txn = None
                return True
            self._data(pending)
        elif verb == "RSET":
            self.txn = None
            self.send(p._next("RSET", "250 2.0.0 Ok"), cmd)
        elif verb == "NOOP":
            self.send(p._next("NOOP", "250 2.0.0 Ok"), cmd)
        elif verb == "QUIT":
            self.send(p._next("QUIT", "221 2.0.0 Bye"), cmd)
            return False
        else:
            self.send("502 5.5.2 Command not implemented", cmd)
        return True

    def _data(self, pending):
        """Reads the message up to CRLF.CRLF; replies after the dot."""
        p = self.peer
        txn = self.txn
        # Lines already split off the buffer (pipelined after DATA) come
        # first; a client must not do that, but the bytes are kept.
        if pending:
            self.conn.protocol_errors.append(
                f"data sent before the 354: {[x[0] for x in pending]!r}")
            self.buf = b"".join(x[0] + b"\n" for x in pending) + self.buf
            pending.clear()
        raw = bytearray()
        out = bytearray()
        while True:
            while b"\n" not in self.buf:
                self.buf += self._recv()
                with p.cond:
                    self.stamp = (self.conn.replies_sent, time.monotonic())
            line, self.buf = self.buf.split(b"\n", 1)
            line += b"\n"
            raw += line
            if line == b".\r\n":
                break
            if not line.endswith(b"\r\n"):
                txn.bad_line_ends.append(bytes(line))
            if b"\r" in line[:-2]:
                txn.bad_line_ends.append(bytes(line))
            if line.startswith(b"."):
                line = line[1:]
            out += line
        with p.cond:
            txn.raw = bytes(raw)
            txn.data = bytes(out)
        self.txn = None
        if p.lmtp:
            try:
                for r in txn.rcpts:
                    if r.code // 100 != 2:
                        continue
                    rep = p._next_for(p.lmtp_dot, p.lmtp_counts, r.address)
                    if rep is None:
                        rep = p._next("DOT",
                                      "250 2.0.0 <%s> Saved" % r.address)
                    with p.cond:
                        txn.lmtp_replies[r.address] = rep
                    self.send(rep)
            finally:
                # Seen whole by the waiters, never one recipient at a time.
                with p.cond:
                    txn.finished = True
                    p.cond.notify_all()
            return
        with p.cond:
            p.queued += 1
            n = p.queued
        rep = p._next("DOT", f"250 2.0.0 Ok: queued as PEER{n}")
        # Recorded before it is sent: a slow peer's message is "in
        # flight" while the Delay runs; dot_reply says what it will be.
        final = rep.reply if isinstance(rep, Delay) else rep
        sent = False
        try:
            self.send(rep)
            sent = True
        finally:
            with p.cond:
                txn.dot_reply = final if final is not CLOSE else None
                txn.dot_reply_sent = sent if final is not CLOSE else False
                txn.finished = True
                p.cond.notify_all()

    def _starttls(self, cmd):
        p = self.peer
        if p.tls_context is None or "STARTTLS" not in p.caps or self.tls:
            self.send("502 5.5.1 STARTTLS not offered", cmd)
            return
        r = p._next("STARTTLS", "220 2.0.0 Ready to start TLS")
        self.send(r, cmd)
        if reply_code(r) != 220:
            return
        self.sock.settimeout(DEFAULT_TIMEOUT)
        self.sock = p.tls_context.wrap_socket(self.sock, server_side=True)
        self.sock.settimeout(1.0)
        self.tls = True
        self.conn.tls = True
        self.buf = b""
        self.greeted = False
        self.txn = None


# --------------------------------------------------------------------------
# postern's side: a server that sends to peers, and message injection

REPO = Path(__file__).resolve().parents[2]
POSTERN = os.environ.get("POSTERN") or str(REPO / "build" / "postern")
ALICE = "alice@example.test"
ALICE_PASSWORD = "alice-password"   # etc/users says so


def _alice_hash():
    for line in (REPO / "etc" / "users").read_text().splitlines():
        if line.startswith(ALICE + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("etc/users has no hash for alice")


_TLS_DIR = None


def tls_files():
    """(cert, key) of a self-signed pair made once per test process."""
    global _TLS_DIR
    if _TLS_DIR is None:
        from postern_test import make_cert
        d = Path(tempfile.mkdtemp(prefix="postern-peer-tls-"))
        atexit.register(shutil.rmtree, d, True)
        make_cert(d, days=400)
        _TLS_DIR = d
    return _TLS_DIR / "cert.pem", _TLS_DIR / "key.pem"


def peer_tls_context():
    """A server-side context for a Peer that offers STARTTLS."""
    cert, key = tls_files()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def outbound_server(make_server, routes=None, relayhost=None, delivery=None,
                    start=True, users=None, **sections):
    """A postern (from conftest's make_server) that sends non-local mail.

    routes: {"remote.test": "127.0.0.1:PORT"} written to a routes file;
    relayhost: "127.0.0.1:PORT"; delivery: more [delivery] keys (retry
    defaults to 1,1,2).  alice may log in (password alice-password) on a
    submission port (srv.sub_port) with STARTTLS."""
    cert, key = tls_files()
    if users is None:
        users = ["postmaster@example.test", f"{ALICE}: {_alice_hash()}",
                 "bob@example.test"]
    dl = {"retry": "1,1,2", "connect_timeout": 5, "command_timeout": 30,
          "data_timeout": 30}
    dl.update(delivery or {})
    if relayhost is not None:
        dl["relayhost"] = relayhost
    srv = make_server(start=False, users=users,
                      tls={"cert": str(cert), "key": str(key)},
                      delivery=dl, **sections)
    if routes is not None:
        (srv.dir / "routes").write_text(
            "".join(f"{d} {hp}\n" for d, hp in routes.items()))
        srv.sections["delivery"]["routes"] = "routes"
    srv.sub_port = None
    if start:
        start_with_submission(srv)
    return srv


def start_with_submission(srv):
    """Starts srv with a submission listener on a free port (picked again
    when another process takes it first)."""
    from postern_test import PortTaken, free_port
    for attempt in range(3):
        srv.sub_port = free_port()
        srv.sections["server"]["submission"] = f"127.0.0.1:{srv.sub_port}"
        srv.write_config()
        try:
            return srv.start()
        except PortTaken:
            if attempt == 2:
                raise
    return srv


def _client_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def message(subject="test", body="Hello.\r\n", sender=ALICE,
            to="bob@remote.test", extra=""):
    """A small RFC 5322 message with CRLF line ends (bytes)."""
    text = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}.{time.time_ns()}"
            f"@example.test>\r\n{extra}\r\n{body}")
    return text.encode()


def submit(srv, rcpts, msg=None, sender=ALICE, mail_options=(),
           rcpt_options=()):
    """Sends msg to rcpts through srv's submission port as alice (STARTTLS,
    AUTH PLAIN); returns the queue id.  rcpt_options is a list of
    parameters for every RCPT, or a dict address -> list."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    if msg is None:
        msg = message(to=rcpts[0])
    with smtplib.SMTP(srv.host, srv.sub_port, timeout=DEFAULT_TIMEOUT) as s:
        s.ehlo("client.test")
        s.starttls(context=_client_ctx())
        s.ehlo("client.test")
        s.login(ALICE, ALICE_PASSWORD)
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, (code, resp)
        for r in rcpts:
            opts = rcpt_options.get(r, []) if isinstance(rcpt_options, dict) \
                else rcpt_options
            code, resp = s.rcpt(r, list(opts))
            assert code in (250, 251), (r, code, resp)
        code, resp = s.data(msg)
        assert code == 250, (code, resp)
        m = re.search(rb"queued as (\S+)", resp)
        assert m, resp
        return m.group(1).decode()


def queue(srv, *words, check=None):
    """Runs `postern queue WORDS -c CONF`; returns the CompletedProcess.
    check=N asserts the exit status."""
    p = subprocess.run([POSTERN, "queue", *words, "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=60)
    if check is not None:
        assert p.returncode == check, (words, p.returncode, p.stdout,
                                       p.stderr)
    return p


QID_LINE = re.compile(r"^(\S+)  +(\d+)  +(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
                      r"  +<([^>]*)>\s*$")
RCPT_LINE = re.compile(r"^    (\S+)  +(queued|deferred|held|active)"
                       r"  +attempts=(\d+)"
                       r"(?:  +next=(\S+))?"
                       r"(?:  +last='(.*)')?\s*$")


def parse_queue_list(text):
    """`postern queue list` output -> {qid: {"size", "arrival", "sender",
    "rcpts": {address: {"state", "attempts", "next", "last"}}}}.  Asserts
    every line has the documented form."""
    out = {}
    cur = None
    lines = text.splitlines()
    for ln in lines:
        if not ln.strip():
            continue
        m = QID_LINE.match(ln)
        if m:
            cur = {"size": int(m.group(2)), "arrival": m.group(3),
                   "sender": m.group(4), "rcpts": {}}
            out[m.group(1)] = cur
            continue
        m = RCPT_LINE.match(ln)
        if m:
            assert cur is not None, f"recipient line before a QID: {ln!r}"
            cur["rcpts"][m.group(1)] = {
                "state": m.group(2), "attempts": int(m.group(3)),
                "next": m.group(4), "last": m.group(5)}
            continue
        if re.match(r"^\d+ messages?, \d+ recipients?$", ln) or \
                re.match(r"^(the )?queue is empty\.?$", ln, re.I):
            continue
        raise AssertionError(f"unexpected line in `postern queue list`: "
                             f"{ln!r}\n{text}")
    return out


def queue_list(srv):
    p = queue(srv, "list", check=0)
    return parse_queue_list(p.stdout)


# --------------------------------------------------------------------------
# Bounces (RFC 3464)


def read_message(path):
    return email.message_from_bytes(Path(path).read_bytes(),
                                    policy=email.policy.default)


def _field_blocks(data):
    """RFC 3464 field blocks (separated by empty lines) of a text ->
    [[(name, value)]], folded lines unfolded."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        fields = []
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and fields:
                k, v = fields[-1]
                fields[-1] = (k, v + " " + line.strip())
            elif ":" in line:
                k, v = line.split(":", 1)
                fields.append((k.strip(), v.strip()))
        if fields:
            blocks.append(fields)
    return blocks


class Dsn:
    """A parsed delivery status notification."""

    def __init__(self, msg):
        self.msg = msg
        ct = msg.get_content_type()
        assert ct == "multipart/report", f"not a report: {ct}"
        assert msg.get_param("report-type") == "delivery-status", \
            msg["Content-Type"]
        parts = msg.get_payload()
        self.human = parts[0]
        status = [p for p in parts if p.get_content_type() in
                  ("message/delivery-status",
                   "message/global-delivery-status")]
        assert len(status) == 1, [p.get_content_type() for p in parts]
        self.status_type = status[0].get_content_type()
        if self.status_type == "message/delivery-status":
            blocks = [list(b.items()) for b in status[0].get_payload()]
        else:
            # message/global-delivery-status (RFC 6533): the email package
            # does not split it into blocks; its UTF-8 text is.  The first
            # block is the part's own MIME header.
            text = status[0].as_bytes(policy=email.policy.SMTPUTF8)
            blocks = _field_blocks(text)[1:]
        assert len(blocks) >= 2, blocks
        self.per_message = {k.lower(): str(v) for k, v in blocks[0]}
        self.recipients = [{k.lower(): " ".join(str(v).split())
                            for k, v in b} for b in blocks[1:]]
        self.original = [p for p in parts[2:]
                         if p.get_content_type() in ("message/rfc822",
                                                     "text/rfc822-headers",
                                                     "message/global",
                                                     "message/global-headers")]

    def human_text(self):
        """The text of the human-readable part (its text/plain parts)."""
        parts = [self.human] if not self.human.is_multipart() else \
            [p for p in self.human.walk() if p.get_content_maintype()
             == "text"]
        return "\n".join(p.get_content() for p in parts)

    def recipient(self, address):
        """The per-recipient block whose Final-Recipient is address."""
        for r in self.recipients:
            fr = r.get("final-recipient", "")
            if fr.split(";", 1)[-1].strip().lower() == address.lower():
                return r
        raise AssertionError(f"no Final-Recipient {address} in "
                             f"{self.recipients!r}")

    def final_recipients(self):
        return sorted(r.get("final-recipient", "").split(";", 1)[-1].strip()
                      .lower() for r in self.recipients)

    def original_text(self):
        """The returned original message or headers, as bytes."""
        assert self.original, "no original message or headers in the DSN"
        p = self.original[0]
        if p.get_content_type() in ("message/rfc822", "message/global"):
            inner = p.get_payload()
            inner = inner[0] if isinstance(inner, list) else inner
            return inner.as_bytes()
        return p.get_payload(decode=True) or p.get_content().encode()
