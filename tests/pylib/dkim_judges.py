"""Independent DKIM verifiers for the tests: dkimpy (Debian python3-dkim)
and OpenDKIM (Debian opendkim).

dkimpy looks keys up through the test's DNS server (dnsfunc_for).
OpenDKIM: opendkim-testmsg cannot be pointed at a test DNS server (it
uses the system resolver on port 53 and takes no key option), so
verify_with_opendkim runs the filter's own test mode, `opendkim -x CONF
-t FILE`, with the keys in a TestPublicKeys file (opendkim.conf(5)); same
library, same verdicts.
"""
import os
import re
import shutil
import subprocess

OPENDKIM = shutil.which("opendkim") or (
    "/usr/sbin/opendkim" if os.path.exists("/usr/sbin/opendkim") else None)


def dnsfunc_for(port):
    """A dkimpy dnsfunc asking the DNS server at 127.0.0.1:port."""
    import dns.resolver

    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port

    def get_txt(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            ans = res.resolve(name.rstrip("."), "TXT", lifetime=timeout)
        except Exception:
            return None
        return b"".join(b"".join(r.strings) for r in ans)
    return get_txt


def verify_with_dkimpy(msg, dns_port):
    """dkimpy's verdict on the first signature of msg: True when it
    passes."""
    import dkim
    return dkim.verify(msg, dnsfunc=dnsfunc_for(dns_port), minkey=1024)


def verify_with_opendkim(msg, records, tmp_dir):
    """OpenDKIM's dkim= results, one per signature, in its A-R order.

    records: {"SEL._domainkey.DOMAIN": "v=DKIM1; k=...; p=..."}.
    """
    assert OPENDKIM is not None, "opendkim is not installed"
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
