"""stshttps - the HTTPS side of MTA-STS (RFC 8461) for the tests: a server
on loopback that answers GET /.well-known/mta-sts.txt for the policy
hosts mta-sts.DOMAIN, with policies a test can change while it runs.

    ca = TestCA(tmp_path / "ca")
    with StsServer(ca, ["sts.test", "other.test"]) as sts:
        sts.policies["sts.test"] = policy_text(mx=["mx.sts.test"])
        sts.status["other.test"] = 404
        ... postern fetches https://mta-sts.sts.test/... from sts.port ...
        assert sts.hits_for("sts.test") == 1      # fetched once, cached

StsServer(ca, domains, *, policies, cert, key, host, port, start):
- One certificate, issued by ca at start, names mta-sts.D for every D in
  domains (cert/key instead: any pair, e.g. from another TestCA or for
  other names).  The name the client asked for (SNI) does not change the
  certificate; sni_names records each one received (None: no SNI).
- The domain of a request is its Host header without the port and
  without the leading "mta-sts."; a Host that has no such prefix, or any
  other path, gets 404.
- policies {domain: text}: sent with 200 and Content-Type text/plain
  (charset=utf-8); a domain with no policy gets 404.
- status {domain: code}: answer with that code instead (the body is the
  policy if there is one, else a line of text); content_types {domain:
  value} replaces the media type; headers {domain: {name: value}} adds
  header lines (e.g. a Location for a redirect the client must not
  follow); delays {domain: seconds} waits before answering (a server
  slower than the client's timeout).
- hits: [(host, path)] for every request, in order, the Host header as
  sent.  tls_errors: one line per connection whose handshake failed (a
  client that did not trust the certificate).
- host and port: where to listen, default 127.0.0.1 and a fresh port
  (as smtp_peer's peers take theirs).  A test that must serve on 443 can
  give a loopback address of its own, e.g. host="127.0.0.23", port=443.
- Each connection is served in a thread of its own, TLS handshake
  included, so a slow or silent client holds up no other; HTTP/1.1 with
  Content-Length, so a keep-alive client may ask again on the same
  connection.

policy_text() writes a policy file; fetch_policy() is a client for the
self-tests: it connects to 127.0.0.1 but asks for (SNI, Host, certificate
name) mta-sts.DOMAIN.
"""
import http.client
import http.server
import socket
import ssl
import threading
import time

from smtp_peer import _bind_fresh_port

WELL_KNOWN = "/.well-known/mta-sts.txt"
PREFIX = "mta-sts."
HANDLER_TIMEOUT = 10.0  # an idle connection's thread ends after this


def policy_text(mode="enforce", mx=("mx.sts.test",), max_age=86400,
                version="STSv1"):
    """An RFC 8461 policy file (CRLF line ends, one mx line per pattern)."""
    mx = [mx] if isinstance(mx, str) else list(mx)
    lines = [f"version: {version}", f"mode: {mode}"]
    lines += [f"mx: {m}" for m in mx]
    lines.append(f"max_age: {max_age}")
    return "".join(line + "\r\n" for line in lines)


def domain_of(host_header):
    """'mta-sts.sts.test:8443' -> 'sts.test'; None when not a policy host."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # an IPv6 literal is never a policy host
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    if not host.startswith(PREFIX) or len(host) == len(PREFIX):
        return None
    return host[len(PREFIX):]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = HANDLER_TIMEOUT

    def do_GET(self):
        self.server.sts.answer(self)

    def log_message(self, format, *args):
        pass  # the tests read hits, not a log on stderr


class _HttpsServer(http.server.ThreadingHTTPServer):
    """Accepts in plain TCP and does the TLS handshake in the thread that
    serves the connection, not in the accepting one."""

    def __init__(self, sts, sock):
        self.sts = sts
        super().__init__(sock.getsockname(), _Handler,
                         bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_activate()

    def finish_request(self, request, client_address):
        request.settimeout(HANDLER_TIMEOUT)
        try:
            tls = self.sts.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.sts.tls_errors.append(f"{client_address[0]}: {e}")
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class StsServer:
    """MTA-STS policy hosts on host:port (see the module comment)."""

    def __init__(self, ca, domains, *, policies=None, cert=None, key=None,
                 host="127.0.0.1", port=None, start=True):
        self.domains = [domains] if isinstance(domains, str) else \
            list(domains)
        if cert is None:
            names = [PREFIX + d for d in self.domains] or ["localhost"]
            cert, key = ca.issue(names)
        self.cert_path, self.key_path = cert, key
        self.policies = dict(policies or {})
        self.status = {}
        self.content_types = {}
        self.headers = {}
        self.delays = {}
        self.hits = []
        self.sni_names = []
        self.tls_errors = []
        self.host = host
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.context.sni_callback = self._sni
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if port is None:
            self.port = _bind_fresh_port(sock, host)
        else:
            sock.bind((host, port))
            self.port = sock.getsockname()[1]
        self._httpd = _HttpsServer(self, sock)
        self._thread = None
        if start:
            self.start()

    def _sni(self, ssl_obj, name, ctx):
        self.sni_names.append(name)
        return None  # go on with the one certificate

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"stshttps-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, domain):
        """Where a client asks for domain's policy on this server."""
        return f"https://{PREFIX}{domain}:{self.port}{WELL_KNOWN}"

    def hits_for(self, domain, path=WELL_KNOWN):
        """How many requests for domain's policy hosts asked for path."""
        return sum(1 for h, p in self.hits
                   if domain_of(h) == domain.lower() and p == path)

    def answer(self, req):
        """Serves one request (called in the connection's thread)."""
        host = req.headers.get("Host", "")
        self.hits.append((host, req.path))
        domain = domain_of(host)
        delay = self.delays.get(domain) if domain else None
        if delay:
            time.sleep(delay)
        extra = {}
        ctype = "text/plain; charset=utf-8"
        if domain is None or req.path != WELL_KNOWN:
            code, body = 404, "no such policy host or path\n"
        else:
            policy = self.policies.get(domain)
            code = self.status.get(domain, 200 if policy is not None else 404)
            body = policy if policy is not None else f"status {code}\n"
            ctype = self.content_types.get(domain, ctype)
            extra = self.headers.get(domain, {})
        data = body.encode()
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)


class _PinnedConnection(http.client.HTTPSConnection):
    """HTTPS to a name, dialled at a fixed address (no DNS in the tests)."""

    def __init__(self, name, addr, port, **kw):
        super().__init__(name, port, **kw)
        self._addr = addr

    def connect(self):
        sock = socket.create_connection((self._addr, self.port),
                                        self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_policy(domain, port, cafile=None, *, context=None,
                 addr="127.0.0.1", timeout=5.0):
    """GET domain's policy from addr:port as a verifying client would:
    (status, content type, body str).  The certificate must chain to
    cafile (or satisfy context) and name mta-sts.DOMAIN, else
    ssl.SSLCertVerificationError."""
    if context is None:
        context = ssl.create_default_context(cafile=str(cafile))
    conn = _PinnedConnection(PREFIX + domain, addr, port, context=context,
                             timeout=timeout)
    try:
        conn.request("GET", WELL_KNOWN)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, resp.getheader("Content-Type"), body
    finally:
        conn.close()
