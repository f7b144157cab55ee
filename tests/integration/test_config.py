"""The program's outside: `postern check`, `--help`, exit statuses, and
config keys that change what the server says (CONTRACT.md: exit 0 on
success, 1 on a user error with one clear line, 2 on a usage error; every
config error names the file, the line and the fix).
"""
import re
import shutil
import socket
import subprocess

import pytest

from postern_test import AS_ROOT, POSTERN, REPO, SERVICE_USER, Server

USERS = "alice@example.test\n"


def run(*args, cwd=None):
    return subprocess.run([POSTERN, *args], capture_output=True, text=True,
                          timeout=30, cwd=cwd)


def conf(tmp_path, text, name="postern.conf"):
    (tmp_path / "users").write_text(USERS)
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture
def shipped_tree(tmp_path):
    """A copy of etc/ (the embedded default config and its tables) with a
    throw-away self-signed pair where `make cert` would put one, so the
    test does not depend on `make cert` having run in the tree."""
    etc = tmp_path / "etc"
    shutil.copytree(REPO / "etc", etc, ignore=shutil.ignore_patterns("tls"))
    (etc / "tls").mkdir()
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=mx.example.test", "-keyout", str(etc / "tls" / "key.pem"),
         "-out", str(etc / "tls" / "cert.pem")],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return tmp_path


def test_check_accepts_the_shipped_config(shipped_tree):
    p = run("check", "-c", str(shipped_tree / "etc" / "postern.conf"))
    assert p.returncode == 0, p.stderr
    assert re.search(r"postern\.conf: ok \(3 users, 1 local domains, ",
                     p.stdout), p.stdout


def test_check_without_c_uses_etc_postern_conf(shipped_tree):
    p = run("check", cwd=str(shipped_tree))
    assert p.returncode == 0, p.stderr
    assert "etc/postern.conf: ok" in p.stdout


@pytest.mark.parametrize("text, line, words", [
    ("[server]\nmax_recipients = 0\n[local]\nusers = users\n", 2,
     ["max_recipients = 0", "from 1 to 100000", "default 100"]),
    ("[local]\nusers = users\n[server]\nbogus_key = 1\n", 4,
     ["unknown key 'bogus_key' in [server]"]),
    ("[nosuch]\nx = 1\n", 2, ["unknown section [nosuch]"]),
    ("[server]\nsmtp = 127.0.0.1:99999\n[local]\nusers = users\n", 2,
     ["is not HOST:PORT"]),
    ("[server]\nidle_timeout = soon\n[local]\nusers = users\n", 2,
     ["idle_timeout = soon", "whole number"]),
    ("[spool]\nreserve = 18446744073709551616\n[local]\nusers = users\n", 2,
     ["reserve"]),
    ("garbage line\n", 1, ["not a `key = value` line"]),
    ("[local]\nusers = users\nmaildir = mail/%x\n", 3, ["maildir"]),
], ids=["max_recipients_0", "unknown_key", "unknown_section", "bad_port",
        "not_a_number", "reserve_overflow", "garbage", "maildir_escape"])
def test_check_exits_1_naming_file_and_line(tmp_path, text, line, words):
    c = conf(tmp_path, text)
    p = run("check", "-c", str(c))
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.startswith(f"{c}:{line}: "), p.stderr
    for w in words:
        assert w in p.stderr, p.stderr


def test_check_reports_every_bad_line(tmp_path):
    c = conf(tmp_path, "[server]\nmax_recipients = 0\nidle_timeout = 0\n"
                       "[local]\nusers = users\n")
    p = run("check", "-c", str(c))
    assert p.returncode == 1
    assert f"{c}:2: " in p.stderr and f"{c}:3: " in p.stderr, p.stderr


def test_check_names_a_bad_line_in_the_users_file(tmp_path):
    (tmp_path / "u").write_text("alice@example.test\nnot an address\n")
    c = conf(tmp_path, "[local]\nusers = u\n")
    p = run("check", "-c", str(c))
    assert p.returncode == 1
    assert p.stderr.startswith(f"{tmp_path / 'u'}:2: "), p.stderr


def test_check_names_a_bad_line_in_the_forwards_file(tmp_path):
    (tmp_path / "fw").write_text("# c\ncarol@example.test bob@example.test "
                                 "maybe\n")
    c = conf(tmp_path, "[local]\nusers = users\nforwards = fw\n")
    p = run("check", "-c", str(c))
    assert p.returncode == 1
    assert p.stderr.startswith(f"{tmp_path / 'fw'}:2: "), p.stderr


def test_check_of_a_missing_file_exits_1_with_one_line(tmp_path):
    p = run("check", "-c", str(tmp_path / "nope.conf"))
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1
    assert "nope.conf" in p.stderr


def test_check_missing_users_file_exits_1(tmp_path):
    c = conf(tmp_path, "[local]\nusers = missing\n")
    p = run("check", "-c", str(c))
    assert p.returncode == 1
    assert f"{c}:2: " in p.stderr and "missing" in p.stderr


def test_serve_refuses_a_bad_config_with_exit_1(tmp_path):
    c = conf(tmp_path, "[server]\nmax_recipients = 0\n[local]\n"
                       "users = users\n")
    p = run("serve", "-c", str(c))
    assert p.returncode == 1
    assert p.stderr.startswith(f"{c}:2: ")


def test_serve_on_a_busy_port_exits_1_naming_the_address(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        user = f"user = {SERVICE_USER}\n" if AS_ROOT else ""
        c = conf(tmp_path, f"[server]\n{user}smtp = 127.0.0.1:{port}\n[spool]\n"
                           "dir = spool\n[local]\nusers = users\n"
                           "maildir = mail/%d/%u\n")
        p = run("serve", "-c", str(c))
    assert p.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr, p.stderr


def test_help_exits_0_and_lists_the_commands():
    p = run("--help")
    assert p.returncode == 0
    for cmd in ("serve", "check"):
        assert f"postern {cmd}" in p.stdout


@pytest.mark.parametrize("cmd", ["serve", "check"])
def test_subcommand_help_exits_0(cmd):
    p = run(cmd, "--help")
    assert p.returncode == 0
    assert p.stdout.startswith(f"usage: postern {cmd}")


def test_version_exits_0():
    p = run("--version")
    assert p.returncode == 0
    assert re.fullmatch(r"postern \d+\.\d+\.\d+\n", p.stdout)


def test_unknown_subcommand_exits_2():
    p = run("frobnicate")
    assert p.returncode == 2
    assert "frobnicate" in p.stderr


def test_no_arguments_is_a_usage_error():
    p = run()
    assert p.returncode == 2
    assert "usage" in p.stderr


@pytest.mark.parametrize("args", [["check", "-x"], ["serve", "extra"],
                                  ["check", "-c"]])
def test_bad_subcommand_arguments_exit_2(args):
    p = run(*args)
    assert p.returncode == 2, p.stdout + p.stderr


# --- keys that change what the server says ------------------------------

def test_hostname_appears_in_banner_ehlo_received_and_quit(make_server):
    srv = make_server(server={"hostname": "smtp.other.test"})
    with srv.client() as c:
        assert c.banner.last.startswith("220 smtp.other.test ESMTP postern ")
        assert c.ehlo().lines[0].startswith("250-smtp.other.test Hello ")
        r = c.mail_txn("s@x.test", ["alice@example.test"], b"x\r\n")
        assert r.code == 250
        assert c.cmd("QUIT").last.startswith("221 2.0.0 smtp.other.test ")
    [f] = srv.wait_messages("alice@example.test", 1)
    assert b"\tby smtp.other.test (postern) with ESMTP id " in f.read_bytes()


def test_relative_paths_are_relative_to_the_config_not_the_cwd(
        make_server, tmp_path):
    srv = make_server(start=False)
    srv.start(cwd="/")
    with srv.client() as c:
        c.ehlo()
        assert c.mail_txn("s@x.test", ["alice@example.test"],
                          b"x\r\n").code == 250
    srv.wait_messages("alice@example.test", 1)
    assert srv.spool.is_dir()


def test_log_level_err_hides_info_lines(make_server):
    srv = make_server(server={"log_level": "err"})
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("QUIT").code == 221
    srv.stop()
    assert "ev=connect" not in srv.log()


def test_greet_pause_zero_greets_at_once(make_server):
    srv = make_server(server={"greet_pause": 0})
    with srv.client() as c:
        assert c.banner.code == 220
