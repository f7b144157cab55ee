"""Runs every tests/peer/*.peer file: the sending side as data.

The format is described in README.md beside this file.  Each file gets a
fresh postern that routes its domains to scripted peers
(tests/pylib/smtp_peer.py), submits its messages as alice, and checks,
in the order the file gives them, what became of each recipient and
what the peers saw.  A check that waits (a delivery, a bounce, a count
to reach) polls for up to T seconds; every peer must have been spoken to
in clean SMTP (Peer.assert_clean) when the file ends, and the server
must exit 0 on SIGTERM.
"""
import codecs
import fnmatch
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from postern_test import Server, free_port, poll
from smtp_peer import (ALICE, CLOSE, DEFAULT_CAPS, POSTERN, Delay, Dsn,
                       Peer, message, outbound_server, peer_tls_context,
                       queue, queue_list, read_message, submit)

HERE = Path(__file__).resolve().parent
FILES = sorted(HERE.glob("*.peer"))
T = 40.0

STAGES = ("greeting", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "DOT",
          "RSET", "QUIT", "STARTTLS")
PEER_KEYS = ("caps", "batch_wait", "greylist", "starttls")
DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
MSG_KEYS = ("subject", "body", "header", "to", "sender", "mail-param",
            "rcpt-param", "text")
CHECKS = {}


class PeerFileError(Exception):
    pass


def check(*names):
    def deco(fn):
        for n in names:
            CHECKS[n] = fn
        return fn
    return deco


def unescape(text):
    """\\r, \\n, \\t, \\\\ and \\xNN; the text is UTF-8."""
    return codecs.escape_decode(text.encode())[0].decode("utf-8")


def parse_reply(text):
    """A scripted reply: text, `default`, `close`, `after N s: REPLY`."""
    text = text.strip()
    if text == "default":
        return None
    if text == "close":
        return CLOSE
    m = re.fullmatch(r"after ([\d.]+) s: (.*)", text)
    if m:
        return Delay(float(m.group(1)), parse_reply(m.group(2)))
    return text.replace("\\n", "\n")


class PeerSpec:
    def __init__(self, name, domains):
        self.name = name
        self.domains = domains       # ["remote.test"] or ["relayhost"]
        self.kw = {"script": {}, "rcpt": {}}
        self.mx = []                 # [(domain, preference)] (`mx:`)


def parse(path):
    """Returns (config sections, [PeerSpec], steps)."""
    config, peers, steps = {}, [], []
    cur = None

    def peer():
        nonlocal cur
        if cur is None:
            cur = PeerSpec("peer", ["remote.test"])
            peers.append(cur)
        return cur

    for n, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"^([^:]+?):(?: (.*))?$", line)
        if not m:
            raise PeerFileError(f"{path.name}:{n}: no 'key: value' in "
                                f"{line!r}")
        key, val = m.group(1), m.group(2) or ""
        word = key.split()
        where = f"{path.name}:{n}"
        if key == "config":
            c = re.fullmatch(r"\s*(\w+)\.(\w+)\s*=\s*(.*?)\s*", val)
            if not c:
                raise PeerFileError(f"{where}: config: SECTION.KEY = VALUE")
            config.setdefault(c.group(1), {})[c.group(2)] = c.group(3)
        elif key == "peer":
            name, *domains = val.split()
            cur = PeerSpec(name, domains)
            peers.append(cur)
        elif key == "mx":
            domain, *names = val.split()
            known = {p.name: p for p in peers}
            if not names or any(n not in known for n in names):
                raise PeerFileError(f"{where}: mx: DOMAIN PEER... (peers "
                                    f"declared above)")
            for i, n in enumerate(names):
                known[n].mx.append((domain, 10 * (i + 1)))
        elif key in PEER_KEYS:
            p = peer()
            if key == "caps":
                p.kw["caps"] = [c.strip() for c in val.split(",")
                                if c.strip()]
            elif key == "starttls":
                p.kw["caps"] = p.kw.get("caps", DEFAULT_CAPS) + ["STARTTLS"]
                p.kw["tls_context"] = peer_tls_context()
            else:
                p.kw[key] = float(val)
        elif word[0] in STAGES and len(word) == 1:
            peer().kw["script"].setdefault(word[0], []).append(
                parse_reply(val))
        elif word[0] == "RCPT" and len(word) == 2:
            peer().kw["rcpt"].setdefault(word[1], []).append(
                parse_reply(val))
        elif word[0] == "set" and len(word) in (2, 3):
            steps.append((where, "set", (word[1:], parse_reply(val))))
        elif key in ("submit", "maildrop"):
            steps.append((where, key, {"rcpts": val.split()}))
        elif key in MSG_KEYS:
            if not steps or steps[-1][1] not in ("submit", "maildrop"):
                raise PeerFileError(f"{where}: {key}: must follow submit: "
                                    "or maildrop:")
            msg = steps[-1][2]
            if key in ("header", "mail-param", "rcpt-param"):
                msg.setdefault(key, []).extend(
                    [val] if key == "header" else val.split())
            else:
                msg[key] = val
        elif key in CHECKS or (word[0] == "queue" and len(word) == 2):
            steps.append((where, word[0], (word[1:], val)))
        else:
            raise PeerFileError(f"{where}: unknown line {line!r}")
    if not peers:
        peer()
    return config, peers, steps


class Run:
    """One file's server, peers and what the checks found so far."""

    def __init__(self, path, tmp_path):
        self.path = path
        self.tmp_path = tmp_path
        self.srv = None
        self.peers = {}
        self.peer = None        # the current peer (`use:`)
        self.qids = []
        self.msgs = []          # the bytes submitted, in order
        self.t0 = None
        self.txn = None         # the transaction `delivered:` found
        self.dsn = None         # the notice `bounced:` & co. found
        self.dsn_raw = None
        self.dsn_rcpt = None
        self.qentry = None      # the queue entry `queue ADDR:` found
        self.dnsmasq = None     # DNS for `mx:` lines

    # -- set-up

    def start(self, config, specs):
        mx = [s for s in specs if s.mx]
        hosts = {s.name: f"127.0.0.{i + 2}" for i, s in enumerate(mx)}
        port = common_port(hosts.values()) if mx else 0
        for s in specs:
            p = Peer(host=hosts.get(s.name, "127.0.0.1"),
                     port=port if s.name in hosts else 0, **s.kw).start()
            self.peers[s.name] = p
        self.peer = self.peers[specs[0].name]
        routes = {d: self.peers[s.name].address for s in specs
                  for d in s.domains if d != "relayhost"}
        relay = [self.peers[s.name].address for s in specs
                 if "relayhost" in s.domains]
        delivery = config.pop("delivery", {})
        if mx:
            dns = self.start_dnsmasq(mx, hosts)
            delivery.setdefault("mx_port", str(port))
            config.setdefault("dns", {}).update(
                {"servers": f"127.0.0.1:{dns}", "timeout": "3"})
        self.srv = outbound_server(self.make_server, routes=routes or None,
                                   relayhost=relay[0] if relay else None,
                                   delivery=delivery, **config)

    def start_dnsmasq(self, mx, hosts):
        """dnsmasq on a loopback port: each `mx:` domain gets an MX
        record per peer (preference 10, 20, ... in the order named) for
        the host mx<PREF>.<DOMAIN> at that peer's address."""
        if DNSMASQ is None:
            pytest.skip("dnsmasq is not installed (`mx:` needs it)")
        port = free_port()
        records = []
        for s in mx:
            for domain, pref in s.mx:
                host = f"mx{pref}.{domain}"
                records += [f"--mx-host={domain},{host},{pref}",
                            f"--host-record={host},{hosts[s.name]}"]
        self.dnsmasq = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
             "--conf-file=/dev/null", f"--port={port}",
             "--listen-address=127.0.0.1", "--bind-interfaces",
             f"--pid-file={self.tmp_path}/dnsmasq.pid", "--local=/test/",
             *records],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            assert self.dnsmasq.poll() is None, "dnsmasq exited"
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return True
            except OSError:
                return False
        poll(up, what="dnsmasq to listen")
        return port

    def make_server(self, start=True, **kw):
        srv = Server(self.tmp_path / "srv", **kw)
        if start:
            srv.start()
        return srv

    def stop(self):
        errors = []
        for p in self.peers.values():
            p.stop()
        if self.srv is not None:
            print(f"--- server log:\n{self.srv.log_tail(150)}")
            if self.srv.running():
                try:
                    self.srv.stop()
                except AssertionError as e:
                    errors.append(str(e))
            elif self.srv.proc is not None:
                self.srv.assert_no_sanitizer_report()
        if self.dnsmasq is not None:
            self.dnsmasq.terminate()
            self.dnsmasq.wait(10)
        for p in self.peers.values():
            p.assert_clean()
        assert not errors, errors

    # -- helpers

    def expand(self, text):
        def qid(m):
            i = int(m.group(1) or len(self.qids))
            return self.qids[i - 1]
        return re.sub(r"\$\{QID(\d*)\}", qid, text)

    def wait(self, pred, what):
        return poll(pred, T, interval=0.1, what=what)

    def all_peers(self):
        return list(self.peers.values())

    def notices(self):
        """Every DSN in alice's Maildir: [(Dsn, raw bytes)]."""
        out = []
        for f in self.srv.message_files(ALICE):
            out.append((Dsn(read_message(f)), f.read_bytes()))
        return out

    def count(self, spec, get, what):
        """spec: N (waits for N, then exactly N), >=N (waits), <N, <=N."""
        m = re.fullmatch(r"\s*(>=|<=|<|>)?\s*(\d+)\s*", spec)
        if not m:
            raise PeerFileError(f"a count: N, >=N, <N or <=N, not {spec!r}")
        op, n = m.group(1) or "==", int(m.group(2))
        if op in ("==", ">=", ">"):
            poll(lambda: get() >= n + (op == ">"), T, interval=0.1,
                 what=f"{what} {op} {n}")
        got = get()
        ok = {"==": got == n, ">=": got >= n, ">": got > n, "<": got < n,
              "<=": got <= n}[op]
        assert ok, f"{what}: {got}, expected {op} {n}"

    def need(self, attr, what):
        v = getattr(self, attr)
        if v is None:
            raise PeerFileError(f"{what} needs an earlier line that finds "
                                f"it")
        return v


def common_port(hosts):
    """A port free on every one of the loopback addresses hosts (MX
    hosts share [delivery] mx_port)."""
    hosts = list(hosts)
    for _ in range(20):
        port = free_port(hosts[0])
        try:
            for h in hosts[1:]:
                with socket.socket() as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise AssertionError(f"no port free on all of {hosts}")


# -- actions ---------------------------------------------------------------

def do_submit(run, where, msg):
    rcpts = msg["rcpts"]
    sender = msg.get("sender", ALICE).strip()
    if sender in ("<>", ""):
        sender = ""
    kw = {}
    if "body" in msg:
        kw["body"] = unescape(msg["body"])
    extra = "".join(h + "\r\n" for h in msg.get("header", []))
    data = message(msg.get("subject", "test"), to=msg.get("to", rcpts[0]),
                   extra=extra, **kw)
    if run.t0 is None:
        run.t0 = time.monotonic()
    run.msgs.append(data)
    run.qids.append(submit(run.srv, rcpts, data, sender=sender,
                           mail_options=msg.get("mail-param", []),
                           rcpt_options=msg.get("rcpt-param", [])))


def do_maildrop(run, where, msg):
    """`postern send -f alice RCPTS` with text: on its standard input."""
    text = unescape(msg.get("text", "Subject: test\\n\\nHello.\\n"))
    if run.t0 is None:
        run.t0 = time.monotonic()
    r = subprocess.run([POSTERN, "send", "-c", str(run.srv.conf), "-f",
                        msg.get("sender", ALICE), *msg["rcpts"]],
                       input=text.encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r


def do_set(run, where, arg):
    words, reply = arg
    if words[0] == "RCPT" and len(words) == 2:
        run.peer.set_rcpt(words[1], [reply])
    elif len(words) == 1 and words[0] in STAGES:
        run.peer.set_script(words[0], [reply])
    else:
        raise PeerFileError(f"{where}: set STAGE or set RCPT ADDRESS")


# -- checks: the outcome per recipient -------------------------------------

@check("use")
def c_use(run, q, val):
    run.peer = run.peers[val.strip()]


@check("delivered")
def c_delivered(run, q, val):
    """delivered: ADDRESS [N] - the peers delivered to it N times (1)."""
    addr, *n = val.split()

    def got():
        return [t for p in run.all_peers() for t in p.delivered(addr)]
    run.count(n[0] if n else "1", lambda: len(got()),
              f"deliveries to {addr}")
    run.txn = got()[0]


def find_notice(run, addr, actions, status):
    def find():
        for d, raw in run.notices():
            for r in d.recipients:
                fr = r.get("final-recipient", "").split(";", 1)[-1].strip()
                if fr.lower() == addr.lower() and r.get("action") in actions:
                    return d, raw, r
        return None
    d, raw, r = run.wait(find, f"a notice with {'/'.join(actions)} for "
                         f"{addr}")
    assert fnmatch.fnmatchcase(r.get("status", ""), status), \
        f"status {r.get('status')!r}, expected {status!r}: {r}"
    run.dsn, run.dsn_raw, run.dsn_rcpt = d, raw, r


@check("bounced")
def c_bounced(run, q, val):
    """bounced: ADDRESS STATUS - a DSN says failed with that status."""
    addr, status = val.split()
    find_notice(run, addr, ("failed",), status)


@check("delayed")
def c_delayed(run, q, val):
    addr, status = val.split()
    find_notice(run, addr, ("delayed",), status)


@check("relayed")
def c_relayed(run, q, val):
    addr, status = val.split()
    find_notice(run, addr, ("relayed", "delivered"), status)


@check("queue")
def c_queue(run, q, val):
    """queue: empty, or queue ADDRESS: state=S[|S] attempts=N next=*
    last=TEXT (last, last^ prefix, last~ contains: the rest of the line)
    - the recipient's line in `postern queue list`, polled until every
    field holds."""
    if not q:
        assert val.strip() == "empty", val
        run.wait(lambda: queue_list(run.srv) == {}, "the queue to be empty")
        return
    addr = q[0]
    m = re.search(r"(?:^|\s)(last[\^~]?)=(.*)$", val)
    last = (m.group(1), run.expand(m.group(2))) if m else None
    fields = dict(f.split("=", 1) for f in
                  (val[:m.start()] if m else val).split())

    def ok():
        for qid, e in queue_list(run.srv).items():
            r = e["rcpts"].get(addr)
            if r is None:
                continue
            if "state" in fields and r["state"] not in \
                    fields["state"].split("|"):
                continue
            if "attempts" in fields and \
                    r["attempts"] != int(fields["attempts"]):
                continue
            if fields.get("next") == "*" and not r["next"]:
                continue
            if last:
                got = r["last"] or ""
                kind, want = last
                if not (got == want if kind == "last" else
                        got.startswith(want) if kind == "last^" else
                        want in got):
                    continue
            return (qid, r)
        return None
    run.qentry = run.wait(ok, f"{addr} in the queue with {val}")


@check("queue-show~")
def c_queue_show(run, q, val):
    qid = run.qids[-1]
    out = queue(run.srv, "show", qid, check=0).stdout
    want = unescape(val)
    assert want in out, f"{want!r} not in `postern queue show {qid}`:\n{out}"


@check("log")
def c_log(run, q, val):
    run.srv.wait_log(run.expand(val), timeout=T)


@check("notices")
def c_notices(run, q, val):
    """notices: N - alice (the sender) holds N notices (0: none)."""
    run.count(val, lambda: len(run.srv.message_files(ALICE)),
              "notices in alice's Maildir")


@check("local")
def c_local(run, q, val):
    addr, n = val.split()
    run.count(n, lambda: len(run.srv.message_files(addr)),
              f"messages in {addr}'s Maildir")


# -- checks: the notice found by bounced:/delayed:/relayed: ----------------

@check("diagnostic")
def c_diagnostic(run, q, val):
    r = run.need("dsn_rcpt", "diagnostic:")
    assert r.get("diagnostic-code") == val, (r, val)


@check("diagnostic~")
def c_diagnostic_has(run, q, val):
    r = run.need("dsn_rcpt", "diagnostic~:")
    assert val in r.get("diagnostic-code", ""), (r, val)


@check("dsn-field")
def c_dsn_field(run, q, val):
    """dsn-field: NAME or NAME=VALUE - in the recipient's block (values
    compare without regard to case)."""
    r = run.need("dsn_rcpt", "dsn-field:")
    name, eq, want = val.partition("=")
    name = name.strip().lower()
    assert name in r, f"no {name} in {r}"
    if eq:
        assert r[name].lower() == want.strip().lower(), (r[name], want)


@check("dsn-message-field")
def c_dsn_message_field(run, q, val):
    d = run.need("dsn", "dsn-message-field:")
    name, eq, want = val.partition("=")
    got = d.per_message.get(name.strip().lower())
    assert got is not None, f"no {name} in {d.per_message}"
    if eq:
        assert got == want.strip(), (got, want)


@check("dsn-recipients")
def c_dsn_recipients(run, q, val):
    d = run.need("dsn", "dsn-recipients:")
    want = sorted(a.lower() for a in val.split())
    assert d.final_recipients() == want, (d.final_recipients(), want)
    assert len(d.recipients) == len(want), d.recipients


@check("dsn-type")
def c_dsn_type(run, q, val):
    d = run.need("dsn", "dsn-type:")
    assert d.status_type == val.strip(), d.status_type


@check("dsn-original-type")
def c_dsn_original_type(run, q, val):
    d = run.need("dsn", "dsn-original-type:")
    assert d.original and d.original[0].get_content_type() == val.strip(), \
        [p.get_content_type() for p in d.original]


@check("dsn-original~")
def c_dsn_original(run, q, val):
    """dsn-original~: TEXT - in the returned message or headers."""
    d = run.need("dsn", "dsn-original~:")
    assert unescape(val).encode() in d.original_text(), \
        (val, d.original_text()[:600])


@check("dsn-original!~")
def c_dsn_original_not(run, q, val):
    d = run.need("dsn", "dsn-original!~:")
    assert unescape(val).encode() not in d.original_text(), val


@check("dsn-human~")
def c_dsn_human(run, q, val):
    d = run.need("dsn", "dsn-human~:")
    assert val in d.human_text(), (val, d.human_text())


@check("dsn-raw~")
def c_dsn_raw(run, q, val):
    raw = run.need("dsn_raw", "dsn-raw~:")
    assert unescape(val).encode() in raw, (val, raw[:400])


@check("dsn-to~")
def c_dsn_to(run, q, val):
    d = run.need("dsn", "dsn-to~:")
    assert d.msg["To"] and val in str(d.msg["To"]), d.msg["To"]


# -- checks: what the peer saw ---------------------------------------------

@check("tries")
def c_tries(run, q, val):
    """tries: ADDRESS COUNT - RCPT TO:<ADDRESS> commands seen."""
    addr, spec = val.split(None, 1)
    run.count(spec, lambda: sum(len(p.rcpt_attempts(addr))
                                for p in run.all_peers()),
              f"RCPT TO:<{addr}> seen")


@check("tries-stable")
def c_tries_stable(run, q, val):
    """tries-stable: ADDRESS SECONDS - no further RCPT for that long."""
    addr, secs = val.split()
    n = len(run.peer.rcpt_attempts(addr))
    time.sleep(float(secs))
    assert len(run.peer.rcpt_attempts(addr)) == n, \
        f"{addr} tried again after its outcome"


@check("transactions")
def c_transactions(run, q, val):
    run.count(val, lambda: len(run.peer.transactions), "transactions")


@check("transactions-with-data")
def c_transactions_with_data(run, q, val):
    run.count(val, lambda: len([t for t in run.peer.transactions
                                if t.data is not None]),
              "transactions that sent the data")


@check("messages")
def c_messages(run, q, val):
    run.count(val, lambda: len(run.peer.messages), "messages accepted")


@check("connections")
def c_connections(run, q, val):
    run.count(val, lambda: len(run.peer.connections), "connections")


@check("replies")
def c_replies(run, q, val):
    """replies: VERB CODE COUNT - commands VERB the peer answered with
    CODE, on every connection (e.g. `replies: MAIL 503 0`)."""
    verb, code, spec = val.split(None, 2)
    run.count(spec, lambda: len([
        c for conn in run.peer.connections for c in conn.commands
        if c.verb == verb and (c.reply or "").startswith(code)]),
        f"{verb} answered {code}")


@check("senders")
def c_senders(run, q, val):
    """senders: A B - the MAIL FROM of every transaction, in order."""
    got = [t.mail_from or "<>" for t in run.peer.transactions]
    assert got == val.split(), got


@check("subjects")
def c_subjects(run, q, val):
    """subjects: A; B - the subjects the peer accepted (sorted)."""
    got = sorted(t.message()["Subject"] for t in run.peer.messages)
    want = sorted(s.strip() for s in val.split(";"))
    assert got == want, got


@check("gap")
def c_gap(run, q, val):
    """gap: < SECONDS or > SECONDS - from the first transaction to the
    second."""
    m = re.fullmatch(r"\s*([<>])\s*([\d.]+)\s*", val)
    ts = run.peer.transactions
    assert len(ts) >= 2, ts
    gap = ts[1].time - ts[0].time
    assert gap < float(m.group(2)) if m.group(1) == "<" else \
        gap > float(m.group(2)), f"gap {gap:.2f} s, expected {val}"


@check("connection-gaps")
def c_connection_gaps(run, q, val):
    """connection-gaps: LO..HI LO..HI ... - seconds between the starts of
    the current peer's consecutive connections, from the first (waits
    for enough of them)."""
    want = []
    for f in val.split():
        m = re.fullmatch(r"([\d.]+)\.\.([\d.]+)", f)
        if not m:
            raise PeerFileError(f"connection-gaps: LO..HI, not {f!r}")
        want.append((float(m.group(1)), float(m.group(2))))
    conns = run.peer.wait_connections(len(want) + 1, T)
    t = [c.time for c in conns[:len(want) + 1]]
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert all(lo <= g <= hi for g, (lo, hi) in zip(gaps, want)), \
        f"gaps {', '.join(f'{g:.2f}' for g in gaps)} s, expected {val}"


@check("connections-closed")
def c_connections_closed(run, q, val):
    """connections-closed: - every connection so far has ended."""
    run.peer.wait_closed(T)


@check("elapsed")
def c_elapsed(run, q, val):
    """elapsed: >= SECONDS - since the first submit."""
    m = re.fullmatch(r"\s*>=\s*([\d.]+)\s*", val)
    got = time.monotonic() - run.t0
    assert got >= float(m.group(1)), f"only {got:.2f} s"


@check("sleep")
def c_sleep(run, q, val):
    time.sleep(float(val))


@check("first-connection")
def c_first_connection(run, q, val):
    """first-connection: last=VERB|VERB no-data - how the first
    connection ended."""
    c = run.peer.connections[0]
    for f in val.split():
        if f.startswith("last="):
            assert c.verbs()[-1] in f[5:].split("|"), c.verbs()
        elif f == "no-data":
            assert c.transactions[0].data is None, c.transactions
        else:
            raise PeerFileError(f"first-connection: {f}?")


@check("idle-connections")
def c_idle_connections(run, q, val):
    """idle-connections: QUIT - one connection carried transactions; the
    others said nothing, or only QUIT."""
    conns = run.peer.connections
    busy = [c for c in conns if c.transactions]
    assert len(busy) == 1, conns
    assert all(c.verbs() in ([], val.split()) for c in conns
               if c is not busy[0]), conns


@check("per-connection")
def c_per_connection(run, q, val):
    """per-connection: max=N busy>=M - deliveries per connection."""
    per = [len([t for t in c.transactions if t.delivered_to])
           for c in run.peer.connections]
    for f in val.split():
        if f.startswith("max="):
            assert max(per) <= int(f[4:]), per
        elif f.startswith("busy>="):
            assert len([c for c in per if c]) >= int(f[6:]), per


# -- checks: the transaction delivered: found ------------------------------

@check("sent-from")
def c_from(run, q, val):
    t = run.need("txn", "sent-from:")
    assert t.mail_from == val.strip(), t.mail_from


@check("sent-rcpts")
def c_rcpts(run, q, val):
    t = run.need("txn", "sent-rcpts:")
    assert [r.address for r in t.rcpts] == val.split(), t.rcpts


@check("delivered-to")
def c_delivered_to(run, q, val):
    t = run.need("txn", "delivered-to:")
    assert sorted(t.delivered_to) == sorted(val.split()), t.delivered_to


def param_check(params, spec, what):
    for f in spec.split():
        if f == "none":
            assert params == {}, f"{what}: {params}"
        elif f.startswith("!"):
            assert f[1:] not in params, f"{what}: {params}"
        elif "=" in f:
            k, v = f.split("=", 1)
            got = params.get(k)
            assert got is not None, f"{what}: no {k} in {params}"
            if k == "NOTIFY":
                assert set(got.upper().split(",")) == \
                    set(v.upper().split(",")), f"{what}: {params}"
            else:
                assert got.lower() == v.lower(), f"{what}: {params}"
        else:
            assert f in params, f"{what}: no {f} in {params}"


@check("sent-mail-params")
def c_mail_params(run, q, val):
    """sent-mail-params: K=V K !K none - the MAIL FROM parameters."""
    t = run.need("txn", "sent-mail-params:")
    param_check(t.mail_params, val, "MAIL FROM parameters")


@check("sent-rcpt-params")
def c_rcpt_params(run, q, val):
    """sent-rcpt-params: the first RCPT's parameters, as mail-params:."""
    t = run.need("txn", "sent-rcpt-params:")
    param_check(t.rcpts[0].params, val, "RCPT TO parameters")


@check("size-declared")
def c_size_declared(run, q, val):
    t = run.need("txn", "size-declared:")
    size = int(t.mail_params["SIZE"])
    assert len(t.data) <= size <= len(t.data) + 4096, (size, len(t.data))


@check("sent-data~")
def c_data_has(run, q, val):
    t = run.need("txn", "sent-data~:")
    assert unescape(val).encode() in t.data, (val, t.data[:400])


@check("sent-raw~")
def c_raw_has(run, q, val):
    t = run.need("txn", "sent-raw~:")
    assert unescape(val).encode() in t.raw, (val, t.raw[:400])


@check("sent-data")
def c_data(run, q, val):
    """sent-data: as-submitted - trace headers, then the message byte for
    byte; data: same-as PEER - what another peer received."""
    t = run.need("txn", "sent-data:")
    if val.startswith("same-as "):
        other = run.peers[val.split()[1]].messages[0]
        assert t.data == other.data
        return
    assert val == "as-submitted", val
    assert t.bad_line_ends == []
    msg = [m for m in run.msgs if t.data.endswith(m)]
    assert msg, t.data
    prefix = t.data[:-len(msg[0])]
    for line in prefix.split(b"\r\n")[:-1]:
        assert line[:1] in (b" ", b"\t") or b":" in line, prefix


@check("sent-body")
def c_body(run, q, val):
    t = run.need("txn", "sent-body:")
    head, sep, body = t.data.partition(b"\r\n\r\n")
    assert sep and body == unescape(val).encode(), t.data


@check("sent-verbs")
def c_verbs(run, q, val):
    """sent-verbs: A B ... - the delivering connection began with these."""
    t = run.need("txn", "sent-verbs:")
    want = val.split()
    assert t.conn.verbs()[:len(want)] == want, t.conn.verbs()


@check("tls")
def c_tls(run, q, val):
    t = run.need("txn", "tls:")
    assert t.conn.tls == (val.strip() == "yes"), t.conn


def batches(t):
    return [(c.verb, c.replies_sent) for c in t.conn.commands
            if c.verb in ("MAIL", "RCPT", "DATA")]


@check("pipelined")
def c_pipelined(run, q, val):
    """pipelined: MAIL RCPT DATA - these came in one batch."""
    t = run.need("txn", "pipelined:")
    b = batches(t)
    assert [v for v, _ in b] == val.split(), b
    assert len({n for _, n in b}) == 1, t.conn.commands
    assert t.conn.protocol_errors == []


@check("lockstep")
def c_lockstep(run, q, val):
    """lockstep: MAIL RCPT DATA - each after the reply to the last."""
    t = run.need("txn", "lockstep:")
    b = batches(t)
    assert [v for v, _ in b] == val.split(), b
    n = [x for _, x in b]
    assert n == list(range(n[0], n[0] + len(n))), t.conn.commands


# -- the driver ------------------------------------------------------------

def run_file(path, tmp_path):
    config, specs, steps = parse(path)
    run = Run(path, tmp_path)
    try:
        run.start(config, specs)
        for where, kind, arg in steps:
            try:
                if kind == "submit":
                    do_submit(run, where, arg)
                elif kind == "maildrop":
                    do_maildrop(run, where, arg)
                elif kind == "set":
                    do_set(run, where, arg)
                else:
                    q, val = arg
                    CHECKS[kind](run, q, run.expand(val))
            except AssertionError as e:
                raise AssertionError(f"{where}: {kind}: {e}") from None
    finally:
        run.stop()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_peer_transcript(path, tmp_path):
    run_file(path, tmp_path)


def test_parse_rejects_unknown_lines(tmp_path):
    bad = tmp_path / "x.peer"
    bad.write_text("# nothing\nsubmit: bob@remote.test\nfrobnicate: 1\n")
    with pytest.raises(PeerFileError):
        parse(bad)
    bad.write_text("subject: no message\n")
    with pytest.raises(PeerFileError):
        parse(bad)


def test_every_row_of_the_sending_table_has_a_transcript():
    """REPLY-CODES.md, "Sending side": each row has at least one file."""
    names = {p.stem for p in FILES}
    for prefix in ("delivered_", "deferred_", "bounced_"):
        assert any(n.startswith(prefix) for n in names), prefix
    for part in ("421", "450", "451", "452", "551", "550", "554", "tls",
                 "lifetime"):
        assert any(part in n for n in names), part

