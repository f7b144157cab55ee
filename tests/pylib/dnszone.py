"""A real DNS server for the tests: dnsmasq on a free loopback port,
serving the records a test names, and a zone that never answers.

    with DnsZone(tmp_path, txt={"example.test": ["v=spf1 -all"]},
                 a={"mx.example.test": "192.0.2.1"}) as dns:
        dns.port   # give postern [dns] servers = 127.0.0.1:<port>

Records: txt {name: [record, ...]} (a record longer than 255 octets is cut
into strings of 255, as a zone file would; no commas), a / aaaa {name: addr or
[addrs]}, mx {name: [(pref, host), ...]}, ptr {ip: name}.  Every name
under .test that has no record is NXDOMAIN; a name with records of other
types answers NODATA.  Names under `slow` (default slow.test) are sent to
a UDP socket that reads and never answers: lookups there time out.
`queries()` is dnsmasq's query log so far (one line per question), to
count what a run asked.
"""
import ipaddress
import shutil
import socket
import subprocess

from postern_test import free_port, poll

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def txt_strings(record):
    """One TXT record as dnsmasq's comma-separated strings of <= 255
    octets (dnsmasq's command line has no quoting: a comma always starts
    a new string, so a record cannot hold one)."""
    assert "," not in record, f"dnsmasq cannot serve a comma: {record!r}"
    raw = record.encode()
    return ",".join(raw[i:i + 255].decode()
                    for i in range(0, len(raw), 255)) or ""


def reverse_name(ip):
    return ipaddress.ip_address(ip).reverse_pointer


class DnsZone:
    def __init__(self, tmp_path, txt=None, a=None, aaaa=None, mx=None,
                 ptr=None, slow="slow.test"):
        self.dir = tmp_path
        self.port = free_port()
        self.log = tmp_path / f"dnsmasq-{self.port}.log"
        self.dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dead.bind(("127.0.0.1", 0))
        args = [DNSMASQ, "--keep-in-foreground", "--no-resolv",
                "--no-hosts", "--conf-file=/dev/null",
                f"--port={self.port}", "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-negcache", "--local-ttl=300",
                f"--pid-file={tmp_path}/dnsmasq-{self.port}.pid",
                "--local=/test/", "--log-queries",
                f"--log-facility={self.log}",
                f"--server=/{slow}/127.0.0.1#{self.dead.getsockname()[1]}"]
        for name, records in (txt or {}).items():
            for r in records:
                args.append(f"--txt-record={name},{txt_strings(r)}")
        addrs = {}
        for table in (a or {}), (aaaa or {}):
            for name, v in table.items():
                addrs.setdefault(name, []).extend(
                    [v] if isinstance(v, str) else v)
        for name, v in addrs.items():
            args.append(f"--host-record={name}," + ",".join(v))
        for name, hosts in (mx or {}).items():
            for pref, host in hosts:
                args.append(f"--mx-host={name},{host},{pref}")
        for ip, name in (ptr or {}).items():
            args.append(f"--ptr-record={reverse_name(ip)},{name}")
        self.args = args
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq exited: " +
                                     self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.5).close()
                return True
            except OSError:
                return False
        poll(up, what="dnsmasq to listen")
        return self

    def set_txt(self, name, records):
        """Serves records as name's TXT records from now on (dnsmasq
        restarted on the same port; --no-negcache, --local-ttl=300: a
        test's resolver must not have cached the old answer)."""
        prefix = f"--txt-record={name},"
        self.args = [a for a in self.args if not a.startswith(prefix)]
        self.args += [prefix + txt_strings(r) for r in records]
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.start()

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        self.dead.close()

    def queries(self):
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [ln for ln in text.splitlines() if " query[" in ln]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
