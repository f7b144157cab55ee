"""DKIM against outside judges: dkimpy (Debian python3-dkim) and OpenDKIM.

postern dkim keygen writes keys that other software reads and prints DNS
records that parse; messages signed by dkimpy with those keys (RSA and
Ed25519, relaxed and simple, with and without l=, tampered or not) get
the same verdict from `postern auth check` as from dkimpy itself, with the
keys served by dnsmasq on loopback.

The judging helpers verify_with_dkimpy() and verify_with_opendkim() are
for the end-to-end test of postern's own signatures through the server
(the integrator's); here they are shown to work on dkimpy's signatures.
OpenDKIM: opendkim-testmsg cannot be pointed at a test DNS server (it uses
the system resolver on port 53 and takes no key option), so the helper
runs the filter's test mode, `opendkim -x CONF -t FILE`, with the keys in
a TestPublicKeys file (opendkim.conf(5)); same library, same verdicts.
"""
import base64
import os
import re
import shutil
import socket
import stat
import subprocess

import pytest

from postern_test import POSTERN, free_port, poll

dkim = pytest.importorskip("dkim")

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
OPENDKIM = shutil.which("opendkim") or (
    "/usr/sbin/opendkim" if os.path.exists("/usr/sbin/opendkim") else None)
DOMAIN = "example.test"

MESSAGE = (
    b"From: Alice <a@example.test>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: judges\r\n"
    b"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\n"
    b"Message-ID: <judges-1@example.test>\r\n"
    b"\r\n"
    b"Line one with  two spaces \r\n"
    b"\tand a tab\r\n"
    b"\r\n"
    b"\r\n")
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id"]


# --- keygen -------------------------------------------------------------

def write_conf(path, keys_dir, dns_port=None, auth=False):
    text = "[server]\nhostname = mx.example.test\n"
    if dns_port is not None:
        text += f"[dns]\nservers = 127.0.0.1:{dns_port}\ntimeout = 2\n"
    if auth:
        text += "[auth]\ndkim = on\n"
    text += f"[dkim]\nkeys = {keys_dir}\n"
    path.write_text(text)
    (path.parent / "users").touch()
    return path


def keygen(conf, *args):
    return subprocess.run([POSTERN, "dkim", "keygen", DOMAIN, *args,
                           "-c", str(conf)],
                          capture_output=True, text=True, timeout=60)


def parse_record(out):
    """(owner name, TXT value) from keygen's zone-file line."""
    m = re.search(r"^(\S+)\s+IN\s+TXT\s+\((.*)\)\s*$", out, re.M)
    assert m, out
    parts = re.findall(r'"([^"]*)"', m.group(2))
    assert parts and all(len(p) <= 255 for p in parts), parts
    return m.group(1), "".join(parts)


def ed25519_seed(pem_text):
    """dkimpy signs with Ed25519 from the raw seed: PKCS#8's last 32."""
    der = base64.b64decode("".join(
        line for line in pem_text.splitlines() if "-----" not in line))
    assert len(der) == 48, len(der)
    return base64.b64encode(der[-32:])


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkimkeys")
    (d / "dkim").mkdir()
    conf = write_conf(d / "keygen.conf", d / "dkim")
    out = {}
    for sel, typ in (("s1", "rsa"), ("e1", "ed25519")):
        r = keygen(conf, "--selector", sel, "--type", typ)
        assert r.returncode == 0, r.stderr
        path = d / "dkim" / f"{DOMAIN}.{sel}.key"
        assert f"wrote {path}" in r.stdout
        name, txt = parse_record(r.stdout)
        assert name == f"{sel}._domainkey.{DOMAIN}."
        pem = path.read_text()
        out[sel] = {"path": path, "txt": txt, "pem": pem, "type": typ,
                    "priv": pem.encode() if typ == "rsa"
                    else ed25519_seed(pem)}
    out["dir"] = d
    return out


def test_keygen_writes_0600_keys_and_records_that_parse(keys):
    for sel in ("s1", "e1"):
        k = keys[sel]
        assert stat.S_IMODE(os.stat(k["path"]).st_mode) == 0o600
        tags = dkim.util.parse_tag_value(k["txt"].encode())
        assert tags[b"v"] == b"DKIM1"
        assert tags[b"k"] == k["type"].encode()
        assert len(base64.b64decode(tags[b"p"])) > 30
    assert "BEGIN PRIVATE KEY" in keys["s1"]["pem"]


def test_keygen_refuses_to_overwrite_and_names_the_fix(keys):
    conf = keys["dir"] / "keygen.conf"
    before = keys["s1"]["path"].read_bytes()
    r = keygen(conf, "--selector", "s1")
    assert r.returncode == 1
    assert str(keys["s1"]["path"]) in r.stderr
    assert "remove it or pick another selector" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert keys["s1"]["path"].read_bytes() == before


def test_keygen_missing_directory_says_mkdir(tmp_path):
    conf = write_conf(tmp_path / "c.conf", tmp_path / "nope")
    r = keygen(conf, "--type", "ed25519")
    assert r.returncode == 1
    assert "mkdir" in r.stderr and str(tmp_path / "nope") in r.stderr


def test_keygen_usage(tmp_path):
    r = subprocess.run([POSTERN, "dkim", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "keygen DOMAIN" in r.stdout
    r = subprocess.run([POSTERN, "dkim", "keygen", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "--selector" in r.stdout
    for args in (["dkim"], ["dkim", "keygen"], ["dkim", "rotate"],
                 ["dkim", "keygen", DOMAIN, "--type", "dsa"]):
        r = subprocess.run([POSTERN, *args], capture_output=True, text=True)
        assert r.returncode == 2, (args, r.stderr)


def test_keygen_default_selector_is_year_and_month(tmp_path):
    (tmp_path / "dkim").mkdir()
    conf = write_conf(tmp_path / "c.conf", tmp_path / "dkim")
    r = keygen(conf, "--type", "ed25519")
    assert r.returncode == 0, r.stderr
    name, _ = parse_record(r.stdout)
    assert re.fullmatch(r"s20\d\d(0[1-9]|1[0-2])\._domainkey\.example\.test\.",
                        name), name


# --- DNS and the judges -------------------------------------------------

def txt_arg(name, value):
    """Each comma-separated part is one character-string (<= 255 octets);
    no shell here, so no quotes (dnsmasq would keep them)."""
    assert "," not in value
    parts = [value[i:i + 255] for i in range(0, len(value), 255)]
    return f"--txt-record={name}," + ",".join(parts)


@pytest.fixture(scope="module")
def dns_port(keys, tmp_path_factory):
    if DNSMASQ is None:
        pytest.skip("dnsmasq is not installed")
    d = tmp_path_factory.mktemp("dnsmasq")
    port = free_port()
    p = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", f"--port={port}",
         "--listen-address=127.0.0.1", "--bind-interfaces",
         f"--pid-file={d}/dnsmasq.pid", "--local=/test/",
         txt_arg(f"s1._domainkey.{DOMAIN}", keys["s1"]["txt"]),
         txt_arg(f"e1._domainkey.{DOMAIN}", keys["e1"]["txt"])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    poll(up, what="dnsmasq to listen")
    yield port
    p.terminate()
    p.wait(10)


def dnsfunc_for(port):
    """A dkimpy dnsfunc asking the DNS server at 127.0.0.1:port."""
    import dns.resolver

    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port

    def get_txt(name, timeout=5):
        try:
            ans = res.resolve(name.decode(), "TXT", lifetime=timeout)
        except Exception:
            return None
        return b"".join(b"".join(r.strings) for r in ans)
    return get_txt


def verify_with_dkimpy(msg, dns_port):
    """dkimpy's verdict on the first signature of msg: True when it passes."""
    return dkim.verify(msg, dnsfunc=dnsfunc_for(dns_port), minkey=1024)


def verify_with_opendkim(msg, records, tmp_dir):
    """OpenDKIM's dkim= results, one per signature, in its A-R order.

    records: {"SEL._domainkey.DOMAIN": "v=DKIM1; k=...; p=..."}.
    """
    if OPENDKIM is None:
        pytest.skip("opendkim is not installed")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    keys_file = tmp_dir / "opendkim.keys"
    keys_file.write_text("".join(f"{n} {v}\n" for n, v in records.items()))
    conf = tmp_dir / "opendkim.conf"
    conf.write_text(f"Mode v\nSyslog no\nTestPublicKeys {keys_file}\n")
    msg_file = tmp_dir / "msg.eml"
    msg_file.write_bytes(msg)
    r = subprocess.run([OPENDKIM, "-x", str(conf), "-t", str(msg_file),
                        "-vv"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    m = re.search(r"hname='Authentication-Results' hvalue='(.*?)'",
                  r.stdout, re.S)
    assert m, r.stdout + r.stderr
    return re.findall(r"\bdkim=([a-z]+)", m.group(1))


def postern_verdicts(msg, conf):
    r = subprocess.run([POSTERN, "auth", "check", "--ip", "192.0.2.1",
                        "--helo", "h.test", "--from", "a@example.test",
                        "-c", str(conf)], input=msg, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return re.findall(r"\bdkim=([a-z]+)", r.stdout.decode())


def dkimpy_sign(keys, sel, canon, length=False, msg=MESSAGE):
    alg = b"rsa-sha256" if keys[sel]["type"] == "rsa" else b"ed25519-sha256"
    return dkim.sign(msg, sel.encode(), DOMAIN.encode(), keys[sel]["priv"],
                     canonicalize=canon, signature_algorithm=alg,
                     include_headers=SIGNED, length=length,
                     linesep=b"\r\n") + msg


def tamper(msg, how):
    if how == "header":
        return msg.replace(b"Subject: judges", b"Subject: Judges")
    if how == "body":
        return msg.replace(b"Line one", b"Line 1")
    if how == "appended":
        return msg + b"-- \r\nappended by a list\r\n"
    return msg


CASES = [(sel, canon, length, how)
         for sel in ("s1", "e1")
         for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple"))
         for length in (False, True)
         for how in ("none", "header", "body", "appended")
         if how != "appended" or length]


def case_id(c):
    sel, canon, length, how = c
    return (f"{'rsa' if sel == 's1' else 'ed25519'}-{canon[0].decode()}-"
            f"{'l' if length else 'nol'}-{how}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dkimpy_and_opendkim_judge_dkimpy_signatures(keys, dns_port,
                                                     tmp_path, case):
    """The helpers work: the judges agree on dkimpy's own signatures."""
    sel, canon, length, how = case
    msg = tamper(dkimpy_sign(keys, sel, canon, length), how)
    expect = how in ("none", "appended")
    assert verify_with_dkimpy(msg, dns_port) is expect
    records = {f"{s}._domainkey.{DOMAIN}": keys[s]["txt"]
               for s in ("s1", "e1")}
    assert verify_with_opendkim(msg, records, tmp_path / "odk") == \
        ["pass" if expect else "fail"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_postern_verdict_matches_dkimpy(keys, dns_port, tmp_path, case):
    """Needs `postern auth check` (the integrator's); until then it fails."""
    sel, canon, length, how = case
    msg = tamper(dkimpy_sign(keys, sel, canon, length), how)
    conf = write_conf(tmp_path / "postern.conf", keys["dir"] / "dkim",
                      dns_port=dns_port, auth=True)
    want = "pass" if verify_with_dkimpy(msg, dns_port) else "fail"
    assert postern_verdicts(msg, conf) == [want]


def test_postern_reports_every_signature_in_order(keys, dns_port, tmp_path):
    """Needs `postern auth check`: a good Ed25519 signature under a broken
    RSA one gives dkim=fail then dkim=pass."""
    good = dkimpy_sign(keys, "e1", (b"relaxed", b"relaxed"))
    other = MESSAGE.replace(b"Line one", b"Line 1")
    bad_sig = dkimpy_sign(keys, "s1", (b"relaxed", b"relaxed"),
                          msg=other)[:-len(other)]
    conf = write_conf(tmp_path / "postern.conf", keys["dir"] / "dkim",
                      dns_port=dns_port, auth=True)
    assert postern_verdicts(bad_sig + good, conf) == ["fail", "pass"]
