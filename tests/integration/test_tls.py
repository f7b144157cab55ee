"""TLS and authenticated submission (RFC 3207, RFC 8314, RFC 4954) against
the real server: STARTTLS on smtp and submission, implicit TLS on smtps,
AUTH PLAIN/LOGIN only under TLS, the STARTTLS injection hole closed, the
relay and sender-ownership rules.  Clients: Python's smtplib and ssl,
`openssl s_client`, and testssl.sh when it is installed.
"""
import base64
import shutil
import socket
import ssl
import subprocess
import smtplib

import pytest

from postern_test import (AUTH_PASSWORD, PortTaken, free_port,
                          insecure_tls_context, make_cert)

PASSWORD = AUTH_PASSWORD


@pytest.fixture
def tls_server(make_server, tls_files):
    d, hashed = tls_files

    def make(**server):
        srv = make_server(
            start=False,
            users=["postmaster@example.test",
                   f"alice@example.test: {hashed}", "bob@example.test"],
            server=server,
            tls={"cert": str(d / "cert.pem"), "key": str(d / "key.pem")})
        # Another process may take a free port before postern binds it:
        # pick the submission and smtps ports again then.
        for attempt in range(3):
            srv.sub_port, srv.smtps_port = free_port(), free_port()
            srv.sections["server"].update(
                submission=f"127.0.0.1:{srv.sub_port}",
                smtps=f"127.0.0.1:{srv.smtps_port}")
            srv.write_config()
            try:
                return srv.start()
            except PortTaken:
                if attempt == 2:
                    raise
        return srv
    return make


def ctx():
    return insecure_tls_context()


def plain(user=b"alice@example.test", password=PASSWORD.encode()):
    return base64.b64encode(b"\0" + user + b"\0" + password).decode()


def starttls(c):
    """Upgrades a SmtpClient's socket; returns (tls socket, file)."""
    assert c.cmd("STARTTLS").last == "220 2.0.0 Ready to start TLS"
    ts = ctx().wrap_socket(c.sock)
    return ts, ts.makefile("rb")


def read_reply(f):
    lines = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        assert line, "connection closed"
        lines.append(line)
        if line[3:4] != "-":
            return lines


def test_ehlo_offers_starttls_in_clear_and_auth_only_under_tls(tls_server):
    srv = tls_server()
    s = smtplib.SMTP(srv.host, srv.port)
    s.ehlo()
    assert s.has_extn("starttls") and not s.has_extn("auth")
    s.starttls(context=ctx())
    s.ehlo()
    assert not s.has_extn("starttls")
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    s.quit()


def test_auth_in_cleartext_gets_538(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN " + plain()).last == \
            "538 5.7.11 Encryption required for requested authentication " \
            "mechanism; use STARTTLS first"


def test_openssl_s_client_starttls_negotiates_tls13_and_refuses_tls11(
        tls_server):
    srv = tls_server()
    p = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         f"127.0.0.1:{srv.port}", "-brief"], input=b"QUIT\r\n",
        capture_output=True, timeout=30)
    assert b"Protocol version: TLSv1.3" in p.stderr, p.stderr
    p = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         f"127.0.0.1:{srv.port}", "-tls1_1", "-brief"], input=b"QUIT\r\n",
        capture_output=True, timeout=30)
    assert b"Protocol version" not in p.stderr


def test_pipelined_command_after_starttls_is_never_answered(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\n")
        assert c.reply().last == "220 2.0.0 Ready to start TLS"
        ts = ctx().wrap_socket(c.sock)
        f = ts.makefile("rb")
        ts.sendall(b"NOOP\r\n")
        # The first reply inside TLS is NOOP's: RSET was thrown away.
        assert read_reply(f) == ["250 2.0.0 OK"]
        ts.close()
    srv.wait_log(r"ev=starttls_injection .*discarded=6")


def test_session_is_reset_after_starttls(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        ts, f = starttls(c)
        ts.sendall(b"RCPT TO:<alice@example.test>\r\n")
        assert read_reply(f)[0].startswith("503 5.5.1")
        ts.sendall(b"MAIL FROM:<a@x.test>\r\n")
        assert read_reply(f)[0].startswith("503 5.5.1 Bad sequence of "
                                           "commands: send HELO/EHLO first")
        ts.close()


def test_starttls_with_argument_501_and_second_starttls_503(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("STARTTLS now").last.startswith("501 5.5.4")
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        ts.sendall(b"STARTTLS\r\n")
        assert read_reply(f) == ["503 5.5.1 TLS already active"]
        ts.close()


def test_authenticated_client_may_relay_unauthenticated_may_not(tls_server):
    srv = tls_server()
    s = smtplib.SMTP(srv.host, srv.port)
    s.starttls(context=ctx())
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        s.sendmail("alice@example.test", ["x@remote.example"], "x\r\n")
    assert e.value.recipients["x@remote.example"][0] == 550
    s.login("alice@example.test", PASSWORD)
    assert s.sendmail("alice@example.test", ["x@remote.example"],
                      "Subject: relay\r\n\r\nrelayed\r\n") == {}
    s.quit()
    srv.wait_log(r"ev=queued .*from=alice@example.test")


def test_smtps_greets_after_handshake_and_delivers_with_esmtpsa(tls_server):
    srv = tls_server()
    s = smtplib.SMTP_SSL(srv.host, srv.smtps_port, context=ctx())
    code, _ = s.ehlo()
    assert code == 250
    s.login("alice@example.test", PASSWORD)
    s.sendmail("alice@example.test", ["bob@example.test"],
               "Subject: smtps\r\n\r\nover implicit TLS\r\n")
    s.quit()
    (path,) = srv.wait_messages("bob@example.test", 1)
    text = path.read_text()
    assert "with ESMTPSA id" in text
    assert "version=TLSv1.3" in text
    assert "over implicit TLS" in text


def test_submission_requires_auth_and_the_users_own_sender(tls_server):
    srv = tls_server()
    with srv.client(port=srv.sub_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").last == \
            "530 5.7.0 Authentication required; log in with AUTH before MAIL"
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        ts.sendall(("AUTH PLAIN " + plain() + "\r\n").encode())
        assert read_reply(f) == ["235 2.7.0 Authentication successful"]
        ts.sendall(b"MAIL FROM:<bob@example.test>\r\n")
        assert read_reply(f) == ["553 5.7.1 Sender address "
                                 "<bob@example.test> is not owned by the "
                                 "authenticated user"]
        ts.sendall(b"MAIL FROM:<alice+lists@example.test>\r\n")
        assert read_reply(f)[0].startswith("250 2.1.0")
        ts.close()


def test_auth_login_exchange_and_cancel(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        ts.sendall(b"AUTH LOGIN\r\n")
        assert read_reply(f) == ["334 VXNlcm5hbWU6"]
        ts.sendall(b"*\r\n")
        assert read_reply(f) == ["501 5.0.0 Authentication canceled"]
        ts.sendall(b"AUTH LOGIN\r\n")
        assert read_reply(f) == ["334 VXNlcm5hbWU6"]
        ts.sendall(base64.b64encode(b"alice@example.test") + b"\r\n")
        assert read_reply(f) == ["334 UGFzc3dvcmQ6"]
        ts.sendall(base64.b64encode(PASSWORD.encode()) + b"\r\n")
        assert read_reply(f) == ["235 2.7.0 Authentication successful"]
        ts.sendall(b"AUTH PLAIN " + plain().encode() + b"\r\n")
        assert read_reply(f)[0].startswith("503 5.5.1")
        ts.close()


def test_repeated_auth_failures_slow_down_then_421(tls_server):
    srv = tls_server(max_auth_failures=2)
    with srv.client() as c:
        c.ehlo()
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        bad = plain(password=b"wrong")
        ts.sendall(("AUTH PLAIN " + bad + "\r\n").encode())
        assert read_reply(f) == ["535 5.7.8 Authentication credentials "
                                 "invalid"]
        ts.sendall(("AUTH PLAIN " + bad + "\r\n").encode())
        assert read_reply(f)[0].startswith("421 4.7.0")
        assert f.readline() == b""
    # The count is per client: a new session starts at the limit.
    with srv.client() as c:
        c.ehlo()
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        ts.sendall(("AUTH PLAIN " + plain(user=b"nobody@example.test")
                    + "\r\n").encode())
        assert read_reply(f)[0].startswith("421 4.7.0")


def test_overlong_auth_line_gets_500_5_5_6(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        ts.sendall(b"AUTH PLAIN\r\n")
        assert read_reply(f) == ["334 "]
        ts.sendall(b"A" * 13000 + b"\r\n")
        assert read_reply(f) == ["500 5.5.6 Authentication Exchange line "
                                 "is too long"]
        ts.sendall(b"NOOP\r\n")
        assert read_reply(f) == ["250 2.0.0 OK"]
        ts.close()


def test_tls_close_in_the_middle_of_data_stores_nothing(tls_server):
    srv = tls_server()
    with srv.client() as c:
        c.ehlo()
        ts, f = starttls(c)
        ts.sendall(b"EHLO x\r\n")
        read_reply(f)
        ts.sendall(b"MAIL FROM:<a@x.test>\r\n"
                   b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
        for _ in range(3):
            read_reply(f)
        ts.sendall(b"Subject: cut\r\n\r\nhalf a mess")
        ts.shutdown(socket.SHUT_RDWR)  # no close_notify: a cut line
        f.close()
        ts.close()
    srv.wait_log(r"ev=disconnect .*messages=0")
    with srv.client() as c:
        assert c.cmd("NOOP").code == 250
    assert srv.message_files("alice@example.test") == []


@pytest.mark.skipif(shutil.which("testssl.sh") is None and
                    shutil.which("testssl") is None,
                    reason="testssl.sh is not installed")
@pytest.mark.long
def test_testssl_finds_nothing_high_or_critical_on_smtps(tls_server,
                                                         tmp_path):
    srv = tls_server()
    exe = shutil.which("testssl.sh") or shutil.which("testssl")
    out = tmp_path / "testssl.json"
    subprocess.run(
        [exe, "--quiet", "--warnings", "off", "--color", "0", "--fast",
         "--protocols", "--std", "--vulnerable", "--server-defaults",
         "--jsonfile", str(out), f"127.0.0.1:{srv.smtps_port}"],
        capture_output=True, timeout=600)
    import json
    findings = json.loads(out.read_text())
    # A self-signed test certificate cannot be trusted or revoked: those
    # findings are about the certificate, not about postern.
    cert_only = ("cert_chain_of_trust", "cert_trust", "cert_caIssuers",
                 "cert_revocation")
    bad = [(f["id"], f["finding"]) for f in findings
           if f.get("severity") in ("HIGH", "CRITICAL")
           and not f["id"].startswith(cert_only)]
    assert bad == [], bad


def peer_cert(port):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx().wrap_socket(raw) as ts:
            return ts.getpeercert(binary_form=True)


def test_sighup_reloads_users_and_certificate_without_dropping_sessions(
        tls_server, tmp_path):
    import signal
    make_cert(tmp_path, "first.example.test", days=400)
    srv = tls_server()
    srv.sections["tls"] = {"cert": str(tmp_path / "cert.pem"),
                           "key": str(tmp_path / "key.pem")}
    srv.write_config()
    srv.stop()
    srv.start()
    before = peer_cert(srv.smtps_port)
    with srv.client() as idle:
        idle.ehlo()
        make_cert(tmp_path, "renewed.example.test", days=400)
        (srv.dir / "users").write_text(
            (srv.dir / "users").read_text() + "carla@example.test\n")
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"ev=reload users=4")
        # The idle session lives on and sees the new user.
        assert idle.cmd("MAIL FROM:<a@x.test>").code == 250
        assert idle.cmd("RCPT TO:<carla@example.test>").code == 250
    after = peer_cert(srv.smtps_port)
    assert after != before
    assert after == ssl.PEM_cert_to_DER_cert(
        (tmp_path / "cert.pem").read_text())
