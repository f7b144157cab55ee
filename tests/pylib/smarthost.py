"""smarthost - a smart host (submission relay) for the tests of postern's
sending side: AUTH PLAIN/LOGIN after STARTTLS (587-style), on implicit TLS
(465-style), or a plain server.  Built on aiosmtpd (Debian's 1.4.3) in a
thread of its own.

    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue(["smarthost.test", "127.0.0.1"])
    with SmartHost(cert, key) as sh:        # listening once constructed
        ... relayhost = 127.0.0.1:{sh.port}, relay_user = sh.user ...
        sh.wait_messages(1)
        m = sh.messages[0]                  # also unpacks as a 5-tuple
        assert (m.login, m.is_tls) == ("relay@example.test", True)

SmartHost(cert, key, *, user, password, mode, auth, mechanisms,
hostname, require_starttls):
- mode "starttls": STARTTLS offered; AUTH offered (and accepted) only
  after it - before, AUTH gets 538 5.7.11.  "implicit": TLS from the first
  byte; AUTH offered at once.  "plain": no TLS at all (cert and key may be
  None); with auth=True AUTH is offered in clear, to test that postern
  does not send its password there.
- auth=True: MAIL, RCPT and DATA before a successful AUTH get
  "530 5.7.0 Authentication required"; a wrong user or password gets
  "535 5.7.8 Authentication credentials invalid".  auth=False: no AUTH
  keyword in EHLO and no AUTH needed; plain mode with auth=False is a
  server without AUTH and without TLS.
- mechanisms: the SASL mechanisms offered, a subset of ("PLAIN", "LOGIN");
  ("LOGIN",) offers only LOGIN.
- require_starttls (starttls mode): commands other than EHLO, NOOP, QUIT
  and STARTTLS before STARTTLS get aiosmtpd's "530 Must issue a STARTTLS
  command first".

Recording (appended from the server's thread, read from the test's):
- messages: [Message(mail_from, rcpt_tos, data, login, is_tls)] for every
  message accepted; data is the bytes after the dot-unstuffing, CRLF kept;
  login is the authenticated user name (str) or None; is_tls says whether
  the session was encrypted (STARTTLS or implicit).
- auth_attempts: [AuthAttempt(mechanism, user, ok)] for every credential
  checked (an AUTH aborted with "*" or with bad base64 checks none).
- ehlo_names: the EHLO arguments received, in order.
- data_reply: set to a reply (e.g. "451 4.3.0 try later") to answer the
  final dot with it; the message is recorded only if it starts with 2.

The port is taken as smtp_peer's peers take theirs (a block of ports per
xdist worker, never one another test just closed), so a postern of another
test retrying its queue never delivers here.
"""
import collections
import socket
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from postern_test import DEFAULT_TIMEOUT, poll
from smtp_peer import _bind_fresh_port

MODES = ("starttls", "implicit", "plain")
MECHANISMS = ("PLAIN", "LOGIN")  # what aiosmtpd 1.4.3 has built in

Message = collections.namedtuple("Message",
                                 "mail_from rcpt_tos data login is_tls")
AuthAttempt = collections.namedtuple("AuthAttempt", "mechanism user ok")


class _Smtp(SMTP):
    """aiosmtpd's SMTP with the AUTH-before-MAIL check done here.

    aiosmtpd's own auth_required warns (UserWarning) whenever AUTH may
    happen without STARTTLS, which is exactly the implicit-TLS and plain
    cases; it is given auth_required=False and this method, which it calls
    before MAIL, RCPT, DATA, VRFY and HELP, does the check instead."""

    def __init__(self, handler, *, is_auth_required, **kw):
        self._is_auth_required = is_auth_required
        super().__init__(handler, **kw)

    async def check_auth_needed(self, caller_method):
        if self._is_auth_required and not self.session.authenticated:
            await self.push("530 5.7.0 Authentication required")
            return True
        return False


class _Handler:
    """The hooks aiosmtpd calls.  No attribute may start with "auth_":
    aiosmtpd takes every such member of the handler (callable or not) as
    an AUTH mechanism."""

    def __init__(self, host):
        self.host = host

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        # The five-argument hook replaces the reply lines; it must also
        # record the name, which aiosmtpd then leaves to it.
        session.host_name = hostname
        self.host.ehlo_names.append(hostname)
        if not self.host.mechanisms:
            # aiosmtpd prints "250-AUTH " even with no mechanism left.
            responses = [r for r in responses
                         if not r.upper().startswith("250-AUTH")]
        return responses

    async def handle_DATA(self, server, session, envelope):
        reply = self.host.data_reply or "250 2.0.0 Ok: queued"
        if reply.startswith("2"):
            login = None
            if session.authenticated and session.auth_data is not None:
                login = session.auth_data.login.decode("utf-8", "replace")
            # Set for implicit TLS and after STARTTLS alike (session.ssl
            # is only set after STARTTLS).
            is_tls = server.transport.get_extra_info("ssl_object") is not None
            self.host.messages.append(Message(
                envelope.mail_from, list(envelope.rcpt_tos),
                bytes(envelope.original_content), login, is_tls))
        return reply


class _Controller(Controller):
    """Serves on a socket bound beforehand (the fresh port) and builds
    _Smtp instead of SMTP."""

    def __init__(self, handler, sock, smtp_kwargs, **kw):
        self._sock = sock
        self._smtp_kwargs = smtp_kwargs
        super().__init__(handler, hostname="127.0.0.1",
                         port=sock.getsockname()[1], **kw)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock,
                                       ssl=self.ssl_context)

    def factory(self):
        return _Smtp(self.handler, **self._smtp_kwargs)


class SmartHost:
    """A smart host on 127.0.0.1:.port (see the module comment)."""

    def __init__(self, cert=None, key=None, *, user="relay@example.test",
                 password="s3cret", mode="starttls", auth=True,
                 mechanisms=MECHANISMS, hostname="smarthost.test",
                 require_starttls=False, start=True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}: {mode!r}")
        if mode != "plain" and (cert is None or key is None):
            raise ValueError(f"mode {mode} needs a cert and a key")
        unknown = set(mechanisms) - set(MECHANISMS)
        if unknown:
            raise ValueError(f"mechanisms not built in: {sorted(unknown)}")
        self.cert, self.key = cert, key
        self.user, self.password = user, password
        self.mode = mode
        self.is_auth = auth
        self.mechanisms = tuple(mechanisms) if auth else ()
        self.hostname = hostname
        self.require_starttls = require_starttls
        self.host = "127.0.0.1"
        self.messages = []
        self.auth_attempts = []
        self.ehlo_names = []
        self.data_reply = None
        self._controller = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = _bind_fresh_port(self._sock, self.host)
        if start:
            self.start()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def _server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def _authenticate(self, server, session, envelope, mechanism, data):
        user = data.login.decode("utf-8", "replace")
        is_ok = (data.login == self.user.encode() and
                 data.password == self.password.encode())
        self.auth_attempts.append(AuthAttempt(mechanism, user, is_ok))
        # handled=False: aiosmtpd then sends 535 5.7.8 itself; its default
        # (handled=True) would send nothing and leave the client waiting.
        return AuthResult(success=is_ok, handled=False,
                          auth_data=data if is_ok else None)

    def start(self):
        if self._controller is not None:
            return self
        tls = self._server_context() if self.mode != "plain" else None
        smtp_kwargs = {
            "hostname": self.hostname,
            "enable_SMTPUTF8": True,
            "is_auth_required": self.is_auth,
            "auth_required": False,
            # True: AUTH neither offered nor accepted before STARTTLS.
            # aiosmtpd 1.4.3 only counts STARTTLS as TLS, so implicit TLS
            # must say False or every AUTH there would get 538.
            "auth_require_tls": self.mode == "starttls",
            "auth_exclude_mechanism": [m for m in MECHANISMS
                                       if m not in self.mechanisms],
            "authenticator": self._authenticate,
        }
        if self.mode == "starttls":
            smtp_kwargs["tls_context"] = tls
            smtp_kwargs["require_starttls"] = self.require_starttls
        self._controller = _Controller(
            _Handler(self), self._sock, smtp_kwargs,
            ssl_context=tls if self.mode == "implicit" else None)
        # aiosmtpd's start() connects once (its own check that the first
        # SMTP object can be built); nothing is recorded for that one.
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_messages(self, n, timeout=DEFAULT_TIMEOUT):
        """The messages once at least n have been accepted."""
        poll(lambda: len(self.messages) >= n, timeout,
             what=f"{n} message(s) at the smart host")
        return list(self.messages)
