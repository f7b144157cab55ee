"""Runtime control and the 421s at the greeting (REPLY-CODES.md row 421):
`postern ctl` over the control socket (maintenance, reload, stop), the
per-client connection rate limit, and the session limits.
"""
import os
import stat
import subprocess

from postern_test import POSTERN


def ctl(srv, *words):
    return subprocess.run([POSTERN, "ctl", *words, "-c", str(srv.conf)],
                          capture_output=True, text=True, timeout=30)


def test_maintenance_mode_gives_421_4_3_2_instead_of_the_banner(make_server):
    srv = make_server()
    with srv.client() as open_before:
        assert ctl(srv, "maintenance", "on").stdout == "ok maintenance on\n"
        assert ctl(srv, "maintenance", "status").stdout == \
            "maintenance on\n"
        with srv.client(read_banner=False) as c:
            assert c.reply().last == ("421 4.3.2 mx.example.test Service "
                                      "in maintenance, try again later")
            c.expect_closed()
        # A session that was already open goes on.
        assert open_before.cmd("NOOP").code == 250
    assert ctl(srv, "maintenance", "off").returncode == 0
    with srv.client(read_banner=False) as c:
        assert c.reply().code == 220


def test_control_socket_is_mode_0600(make_server):
    srv = make_server()
    path = srv.spool / "postern.sock"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_ctl_reload_reads_the_users_file_again(make_server):
    srv = make_server()
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>")
        assert c.cmd("RCPT TO:<zoe@example.test>").code == 550
        (srv.dir / "users").write_text(
            (srv.dir / "users").read_text() + "zoe@example.test\n")
        assert ctl(srv, "reload").stdout == "ok reloaded\n"
        assert c.cmd("RCPT TO:<zoe@example.test>").code == 250


def test_ctl_stop_says_421_to_open_sessions_and_exits_0(make_server):
    srv = make_server()
    with srv.client() as c:
        c.ehlo()
        assert ctl(srv, "stop").stdout == "ok stopping\n"
        assert c.reply().last == ("421 4.3.2 mx.example.test Service "
                                  "shutting down, closing transmission "
                                  "channel")
        c.expect_closed()
    srv.proc.wait(15)
    assert srv.stop() == 0


def test_ctl_without_a_server_exits_1_naming_the_fix(make_server):
    srv = make_server(start=False)
    p = ctl(srv, "maintenance", "status")
    assert p.returncode == 1
    assert "cannot reach the server" in p.stderr
    assert "postern serve" in p.stderr


def test_ctl_usage_error_exits_2(make_server):
    srv = make_server(start=False)
    assert ctl(srv, "maintenance", "maybe").returncode == 2
    assert subprocess.run([POSTERN, "ctl", "--help"],
                          capture_output=True).returncode == 0


def test_connection_rate_over_the_limit_gets_421_4_7_0(make_server):
    srv = make_server(server={"max_connection_rate": "3/60s"})
    for _ in range(3):
        with srv.client(read_banner=False) as c:
            assert c.reply().code == 220
    with srv.client(read_banner=False) as c:
        assert c.reply().last == (
            "421 4.7.0 mx.example.test Too many connections from your "
            "address (over 3 in 60 s), try again later")
        c.expect_closed()


def test_connections_per_client_over_the_limit_get_421_4_7_0(make_server):
    srv = make_server(server={"max_connections_per_client": 2})
    a, b = srv.client(), srv.client()
    with srv.client(read_banner=False) as c:
        assert c.reply().last.startswith("421 4.7.0 ")
    a.close()
    srv.wait_log(r"ev=disconnect", 2)
    with srv.client(read_banner=False) as c:
        assert c.reply().code == 220
    b.close()


def test_max_connections_gives_421_4_3_2(make_server):
    srv = make_server(server={"max_connections": 1})
    with srv.client():
        with srv.client(read_banner=False) as c:
            assert c.reply().last.startswith("421 4.3.2 ")
            c.expect_closed()


def test_slowloris_in_data_gets_421_4_4_2(make_server):
    import time
    srv = make_server(server={"idle_timeout": 3, "min_data_rate": 100})
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>")
        c.cmd("RCPT TO:<alice@example.test>")
        assert c.cmd("DATA").code == 354
        # One octet a second: never idle for 3 s, far below 100 octets/s.
        for _ in range(8):
            try:
                c.send(b"x")
            except OSError:
                break
            time.sleep(1)
        assert c.reply().last == ("421 4.4.2 mx.example.test Timeout "
                                  "exceeded, closing connection")
        c.expect_closed()
    srv.wait_log(r"ev=slow_client ")
    assert srv.message_files("alice@example.test") == []


def test_a_steady_sender_is_not_cut_off(make_server):
    import time
    srv = make_server(server={"idle_timeout": 3, "min_data_rate": 100})
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>")
        c.cmd("RCPT TO:<alice@example.test>")
        assert c.cmd("DATA").code == 354
        for _ in range(5):
            c.send(b"y" * 200 + b"\r\n")
            time.sleep(1)
        c.send(b".\r\n")
        assert c.reply().code == 250


def test_ctl_reload_applies_the_new_config_without_dropping_sessions(
        make_server):
    srv = make_server(server={"max_recipients": 5})
    with srv.client() as c:
        c.ehlo()
        srv.sections["server"]["max_recipients"] = 1
        srv.sections["server"]["hostname"] = "mx2.example.test"
        srv.sections["server"]["smtp"] = None
        srv.write_config()
        conf = srv.conf.read_text().replace(
            f"smtp = 127.0.0.1:{srv.port}",
            f"smtp = 127.0.0.1:{srv.port}, 127.0.0.1:1")
        srv.conf.write_text(conf)
        assert ctl(srv, "reload").stdout == "ok reloaded\n"
        srv.wait_log(r"ev=reload_needs_restart key=server.smtp")
        c.cmd("MAIL FROM:<a@x.test>")
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 452
    with srv.client(read_banner=False) as c:
        assert c.reply().last.startswith("220 mx2.example.test ")


def test_reload_of_a_broken_config_keeps_the_old_one(make_server):
    import signal
    srv = make_server()
    srv.conf.write_text(srv.conf.read_text() +
                        "\n[server]\nmax_recipients = 0\n")
    # postern ctl reads the config too, and says what is wrong with it.
    p = ctl(srv, "reload")
    assert p.returncode == 1
    assert "max_recipients = 0" in p.stderr
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"ev=reload_failed part=config error=.*max_recipients")
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>")
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
