"""nspawn_root - the package's unit run by a real systemd, in a throw-away root.

    unshare --mount --propagation private python3 nspawn_root.py DEB DIR

Run as root in a fresh mount namespace (test_deb.py starts it so).  The
package is installed in an overlay of this machine's root as in
throwaway_root.py; then systemd-nspawn boots that root (its own PID and
network namespaces: only a loopback, so port 25 is its own) into
pkgtest.target, which starts postern.service as installed (Type=notify,
User=postern, the sandboxing) and a one-shot check inside, which writes
/root/result.json and powers the container off.  Other services enabled
on this machine (Postfix among them) are not started: the target wants
only these two.  The unit gets one drop-in, TimeoutStartSec=20s, so a
server that never says READY=1 fails in seconds rather than 90.

Prints one JSON object: the facts test_deb.py checks.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throwaway_root import make_root, report, sh  # noqa: E402

# Runs inside the container, after postern.service has started or failed.
CHECK = r'''
import json, os, re, smtplib, socket, subprocess, time

def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()

def show(*props):
    out = run("systemctl", "show", "postern", *[f"-p{p}" for p in props])[1]
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

f = {"start": show("ActiveState", "SubState", "Result", "MainPID")}
pid = f["start"].get("MainPID", "0")
status = {}
if pid != "0":
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("Uid", "Gid", "CapEff", "CapPrm", "CapAmb", "NoNewPrivs",
                 "Seccomp"):
            status[k] = " ".join(v.split())
f["status"] = status
try:
    with smtplib.SMTP("127.0.0.1", 25, timeout=10) as c:
        c.sendmail("someone@example.org", ["postmaster@localhost"],
                   b"Subject: unit\r\n\r\nunder systemd\r\n")
    f["sent"] = True
except (OSError, smtplib.SMTPException) as e:
    f["sent"] = str(e)
new = "/var/mail/vhosts/localhost/postmaster/new"
for _ in range(100):
    if os.path.isdir(new) and os.listdir(new):
        break
    time.sleep(0.05)
f["delivered"] = [
    f"{os.stat(os.path.join(new, n)).st_uid} {oct(os.stat(os.path.join(new, n)).st_mode & 0o777)}"
    for n in (os.listdir(new) if os.path.isdir(new) else [])]
f["reload"] = run("systemctl", "reload", "postern")
f["after_reload"] = show("ActiveState", "MainPID")
f["security"] = run("sh", "-c", "systemd-analyze security postern | tail -1")[1]
f["stop"] = run("systemctl", "stop", "postern")
f["after_stop"] = show("ActiveState", "Result", "ExecMainStatus")
f["journal"] = run("journalctl", "-u", "postern", "--no-pager", "-o", "cat")[1][-4000:]
json.dump(f, open("/root/result.json", "w"))
'''

TARGET = """[Unit]
Description=postern package check
Wants=postern.service pkgtest.service
"""

SERVICE = """[Unit]
Description=postern package check, inside
After=postern.service

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /root/check.py
ExecStopPost=/bin/systemctl --no-block poweroff
"""


def main():
    report(steps)


def steps(deb, workdir, facts):
    # nspawn keeps its state under /run: this machine's is left alone
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    root = make_root(workdir)
    shutil.copy(deb, root / "tmp/postern.deb")
    facts["install"] = sh(root, "dpkg -i --force-conflicts --force-overwrite "
                          "--no-triggers /tmp/postern.deb")
    if facts["install"][0] != 0:
        return
    for d in ("dev", "proc", "run", "tmp"):
        subprocess.run(["umount", "-R", str(root / d)], check=True)
    (root / "usr/sbin/policy-rc.d").unlink()
    with open(root / "etc/postern/users", "a") as f:
        f.write("postmaster@localhost\n")
    (root / "etc/machine-id").write_text(
        subprocess.run(["systemd-id128", "new"], capture_output=True,
                       text=True, check=True).stdout)
    units = root / "etc/systemd/system"
    (units / "pkgtest.target").write_text(TARGET)
    (units / "pkgtest.service").write_text(SERVICE)
    dropin = units / "postern.service.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "timeout.conf").write_text("[Service]\nTimeoutStartSec=20s\n")
    (root / "root/check.py").write_text(CHECK)
    p = subprocess.run(
        ["systemd-nspawn", "--quiet", "--directory", str(root), "--boot",
         "--private-network", "--register=no", "--keep-unit",
         "--machine=postern-pkgtest", "systemd.unit=pkgtest.target"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=180)
    facts["nspawn"] = [p.returncode, (p.stdout + p.stderr)[-3000:]]
    result = root / "root/result.json"
    if result.exists():
        facts.update(json.loads(result.read_text()))


if __name__ == "__main__":
    main()
