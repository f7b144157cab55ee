"""throwaway_root - install the package in a root that vanishes afterwards.

    unshare --mount --pid --fork --net --propagation private \\
        python3 throwaway_root.py DEB DIR

Run as root inside fresh mount, PID and network namespaces (test_deb.py
starts it so).  DIR gets a tmpfs holding an overlay whose lower layer is
this machine's / and whose upper layer takes every write: `dpkg -i`, the
postinst's adduser, the new files.  Nothing reaches the real root: the
overlay and the tmpfs go with the mount namespace, the processes started
in the root with the PID namespace (this script is its init), and the
server binds port 25 in a network namespace of its own.  Postfix (which
the benchmarks use) stays even in the overlay: the package is installed
with --force-conflicts --force-overwrite (taking over /usr/sbin/sendmail)
where apt would remove the installed mail-transport-agent first, and
services are neither started nor stopped (policy-rc.d, no systemd in the
root).

The server is started as the unit starts it (User=postern, only
CAP_NET_BIND_SERVICE, ambient; no_new_privs; UMask 0077; NOTIFY_SOCKET)
with setpriv; the unit's other sandboxing needs systemd and is not
reproduced here.  Prints one JSON object: the facts test_deb.py checks.
"""
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

TIMEOUT = 20.0


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def sh(root, script, timeout=120):
    """Runs script with /bin/sh in the chroot; (rc, stdout+stderr, secs)."""
    t0 = time.monotonic()
    p = run(["chroot", str(root), "/bin/sh", "-c", script], timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).strip(), \
        round(time.monotonic() - t0, 2)


def poll(predicate, timeout=TIMEOUT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    return None


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def make_root(workdir):
    mount("-t", "tmpfs", "tmpfs", str(workdir))
    for d in ("upper", "work", "root"):
        (workdir / d).mkdir()
    root = workdir / "root"
    mount("-t", "overlay", "overlay", "-o",
          f"lowerdir=/,upperdir={workdir}/upper,workdir={workdir}/work",
          str(root))
    mount("-t", "proc", "proc", str(root / "proc"))
    mount("--rbind", "/dev", str(root / "dev"))
    for d in ("run", "tmp"):
        mount("-t", "tmpfs", "tmpfs", str(root / d))
    (root / "tmp").chmod(0o1777)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    return root


def stat_of(root, path):
    if not (root / path.lstrip("/")).exists():
        return None
    rc, out, _ = sh(root, f"stat -c '%U:%G %a' '{path}'")
    return out if rc == 0 else None


def proc_status(root, pid):
    """From the root's /proc (this PID namespace's); the /proc this
    script sees numbers the processes of the machine's namespace."""
    fields = {}
    try:
        for line in (root / f"proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "CapEff", "CapPrm", "CapAmb", "CapBnd",
                     "NoNewPrivs", "Seccomp", "Groups"):
                fields[k] = " ".join(v.split())
    except OSError:
        pass
    return fields


def banner(host, port):
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.settimeout(5)
            return s.recv(512).decode("ascii", "replace").strip()
    except OSError as e:
        return f"error: {e}"


def serve(root, facts):
    """Starts the installed server as the unit does; facts about it."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open(root / "etc/postern/users", "a") as f:
        f.write("postmaster@localhost\n")
    sh(root, "install -d -o postern -g postern -m 0750 /run/postern")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(root / "run/notify"))
    os.chmod(root / "run/notify", 0o666)
    notify.settimeout(0.05)
    messages = []

    def drain():
        while True:
            try:
                messages.append(notify.recv(4096).decode())
            except (BlockingIOError, socket.timeout):
                return

    log = root / "tmp/serve.log"
    proc = subprocess.Popen(
        ["chroot", str(root), "/bin/sh", "-c",
         "umask 077; exec setpriv --reuid=postern --regid=postern "
         "--clear-groups --no-new-privs --bounding-set=-all,+net_bind_service "
         "--inh-caps=-all,+net_bind_service "
         "--ambient-caps=-all,+net_bind_service "
         "env NOTIFY_SOCKET=/run/notify /usr/sbin/postern serve "
         "-c /etc/postern/postern.conf 2>/tmp/serve.log"])

    def ready():
        drain()
        return any("READY=1" in m for m in messages) or proc.poll() is not None

    poll(ready)
    facts["notify_after_start"] = list(messages)
    facts["serve_exited_early"] = proc.poll()
    # chroot, sh, setpriv and env each exec the next: proc.pid is the
    # server's, numbered in this PID namespace as the root's /proc is.
    facts["serve_status"] = proc_status(root, proc.pid)
    facts["banners"] = {f"{h}:{p}": banner(h, p) for h, p in
                        (("127.0.0.1", 25), ("::1", 25), ("127.0.0.1", 587),
                         ("::1", 587))}
    try:
        with socket.create_connection(("127.0.0.1", 465), timeout=5):
            facts["smtps_connect"] = True
    except OSError as e:
        facts["smtps_connect"] = str(e)
    try:
        with smtplib.SMTP("127.0.0.1", 25, timeout=10) as c:
            c.sendmail("someone@example.org", ["postmaster@localhost"],
                       b"Subject: installed\r\n\r\nfrom the throw-away root\r\n")
        facts["sent"] = True
    except (OSError, smtplib.SMTPException) as e:
        facts["sent"] = str(e)
    new = root / "var/mail/vhosts/localhost/postmaster/new"
    files = facts["sent"] is True and \
        poll(lambda: list(new.glob("*")) if new.is_dir() else None)
    facts["delivered"] = [stat_of(root, "/" + str(f.relative_to(root)))
                          for f in files or []]
    # sendmail as root (cron, mail(1)): the maildrop file it leaves must
    # reach the server, which runs as postern
    facts["sendmail_run"] = sh(root, "printf 'Subject: cron\\n\\nfrom "
                               "sendmail\\n' | /usr/sbin/sendmail "
                               "postmaster@localhost")[:2]
    facts["sendmail_delivered"] = bool(facts["sent"] is True and poll(
        lambda: len(list(new.glob("*"))) >= 2, timeout=5))
    facts["spool_files"] = sorted({stat_of(root, "/" + str(f.relative_to(root)))
                                   for f in (root / "var/spool/postern").rglob("*")})
    facts["ctl_reload"] = sh(root, "setpriv --reuid=postern --regid=postern "
                             "--clear-groups /usr/sbin/postern ctl reload "
                             "-c /etc/postern/postern.conf")[:2]
    facts["ctl_stop"] = sh(root, "/usr/sbin/postern ctl stop")[:2]
    try:
        facts["serve_exit"] = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        facts["serve_exit"] = "did not stop"
    drain()
    facts["notify_all"] = messages
    facts["serve_log"] = log.read_text(errors="replace")[-3000:] \
        if log.exists() else ""


def report(steps):
    """Runs steps(deb, workdir, facts) on argv's deb and work directory and
    prints the facts gathered as JSON, also when a step fails."""
    deb, workdir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    facts = {}
    try:
        steps(deb, workdir, facts)
    finally:
        print(json.dumps(facts))


def main():
    report(steps)


def steps(deb, workdir, facts):
    root = make_root(workdir)
    shutil.copy(deb, root / "tmp/postern.deb")

    facts["install"] = sh(root, "dpkg -i --force-conflicts --force-overwrite "
                          "--no-triggers /tmp/postern.deb")
    if facts["install"][0] != 0:
        return
    facts["passwd"] = sh(root, "getent passwd postern")[1]
    facts["stat"] = {p: stat_of(root, p) for p in (
        "/var/spool/postern", "/var/lib/postern", "/var/mail/vhosts",
        "/etc/postern/postern.conf", "/etc/postern/users",
        "/etc/postern/forwards", "/etc/postern/tls/cert.pem",
        "/etc/postern/tls/key.pem")}
    facts["enabled"] = sh(root, "readlink /etc/systemd/system/"
                          "multi-user.target.wants/postern.service")[1]
    facts["conffiles"] = sh(root, "dpkg-query -W -f='${Conffiles}' postern")[1]
    facts["check"] = sh(root, "/usr/sbin/postern check")
    facts["sendmail"] = sh(root, "readlink -f /usr/lib/sendmail")[1]
    unit = sh(root, "dpkg -L postern | grep 'systemd/system/postern.service$'")[1]
    facts["verify"] = sh(root, f"systemd-analyze verify {unit}")
    serve(root, facts)
    facts["purge"] = sh(root, "dpkg --purge --no-triggers postern")
    facts["after_purge"] = {p: (root / p.lstrip("/")).exists() for p in (
        "/etc/postern", "/var/spool/postern", "/var/lib/postern",
        "/var/mail/vhosts", "/usr/sbin/postern")}
    facts["passwd_after_purge"] = sh(root, "getent passwd postern")[1]


if __name__ == "__main__":
    main()
