"""A validating resolver for the tests: test zones signed in the test
(ldns), served by nsd, resolved and validated by unbound, all on free
loopback ports, so the sending side's DANE (RFC 7672) meets real DNSSEC.

    with SignedDns(tmp_path, zones={
            "dane.test": ["@ MX 10 mx",
                          "mx A 127.0.0.1",
                          f"_25._tcp.mx TLSA 3 1 1 {tlsa_3_1_1(cert)}"],
            "insecure.test": ["@ MX 10 mx", "mx A 127.0.0.1"],
            "bogus.test": ["@ MX 10 mx", "mx A 127.0.0.1"]},
            signed={"dane.test"}, bogus={"bogus.test"}) as dns:
        dns.port        # give postern [dns] servers = 127.0.0.1:<port>
        dns.query("mx.dane.test", "A")  # -> ("NOERROR", True, ["127.0.0.1"])
        dns.set_records("dane.test", [...])   # served from the next query

SignedDns(tmp_path, zones, signed=(), bogus=(), ttl=300)
    zones   {zone: [line, ...]}: each line is one record in zone-file
            syntax, its owner relative to the zone ("mx", "@") or absolute
            ("mx.dane.test.").  The fixture writes the SOA (its serial is
            the fixture's), the apex NS "ns.<zone>." and that name's
            A 127.0.0.1: the lines must not hold a SOA nor use "ns".
            Zones must not nest: each is its own island.
    signed  the zones to sign: one ECDSA P-256 key each (flags 257, it
            signs everything), NSEC, valid from an hour ago for 30 days;
            unbound trusts that key (a trust anchor per zone), so the
            zone's answers come with AD=1.  Every other zone is unsigned
            and named domain-insecure: its answers come with AD=0.
    bogus   names whose signatures are broken after signing: every RRSIG
            at or below the name, except those over the DNSKEY RRset, has
            a flipped octet, so the chain to the key holds and the data
            fails: unbound answers SERVFAIL.  A zone name breaks the whole
            zone, its denials (NXDOMAIN, NODATA) too; a name such as
            "_25._tcp.mx.dane.test" breaks only the records at and below
            it, not their NSEC: denials stay secure.
            A zone holding a bogus name is signed whether or not `signed`
            names it.
    ttl     the zones' $TTL (unbound caps what it caches at 1 s anyway).

Attributes and calls:
    .port, .nsd_port    unbound's port (the one postern asks) and nsd's
    .dir                where the keys, zones, configs and logs live
    .query(name, rtype) -> Answer(rcode, ad, answers): asked to unbound
            with DO and AD set; rcode as text ("NOERROR", "SERVFAIL",
            "NXDOMAIN"), ad the AD flag, answers the sorted texts of the
            answer's rdatas of rtype (no RRSIG), e.g. ["10 mx.dane.test."]
    .query_nsd(name, rtype) -> the same, asked to nsd (no validation)
    .set_records(zone, lines, bogus=None) -> rewrites the zone (and, if
            bogus is given, the bogus names inside it), re-signs it,
            makes nsd reload it (SIGHUP; waits until nsd serves the new
            serial) and restarts unbound with an empty cache.
    .unbound_log(), .nsd_log()  the logs so far (val-log-level 2: a
            failed validation says why), to print when a test fails

Everything outside the zones is answered NXDOMAIN at once by unbound
(local-zone "." static): nothing is ever asked of the real root.

Helpers: tlsa_3_1_1(cert_pem) / tlsa_2_1_1(ca_pem) -> the hex SHA-256 of
the certificate's SubjectPublicKeyInfo (DANE-EE / DANE-TA with selector
SPKI and matching type SHA-256); tlsa_digest(pem, selector, mtype) for the
other selectors and matching types.

nsd and unbound run in the foreground with their configs, pid files and
logs under .dir, no user switch, no chroot and no remote control, so the
same fixture works as root and as an ordinary user.
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import namedtuple

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone

from postern_test import free_port, poll

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
LDNS_KEYGEN = shutil.which("ldns-keygen") or "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = shutil.which("ldns-signzone") or "/usr/bin/ldns-signzone"

Answer = namedtuple("Answer", "rcode ad answers")


def tlsa_digest(cert_pem_path, selector=1, mtype=1):
    """The TLSA certificate association data (hex) of a PEM certificate:
    selector 0 the whole certificate, 1 its SubjectPublicKeyInfo; matching
    type 0 the DER itself, 1 SHA-256, 2 SHA-512 (RFC 6698 section 2.1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(cert_pem_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    if selector == 0:
        der = cert.public_bytes(serialization.Encoding.DER)
    else:
        der = cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
    if mtype == 0:
        return der.hex()
    return (hashlib.sha256 if mtype == 1 else hashlib.sha512)(der).hexdigest()


def tlsa_3_1_1(cert_pem_path):
    """DANE-EE(3) SPKI(1) SHA2-256(1): pins the server's own key."""
    return tlsa_digest(cert_pem_path, 1, 1)


def tlsa_2_1_1(ca_pem_path):
    """DANE-TA(2) SPKI(1) SHA2-256(1): pins the key of a CA that issued
    the server's chain (the server must send that CA's certificate)."""
    return tlsa_digest(ca_pem_path, 1, 1)


def _zone_name(name):
    return name.lower().rstrip(".")


def _flip_signature(rdata):
    """The same RRSIG with one octet of its signature changed: it no
    longer verifies, and nothing else about it (key tag, dates) moved."""
    sig = bytearray(rdata.signature)
    sig[-1] ^= 0x01
    return rdata.replace(signature=bytes(sig))


class SignedDns:
    def __init__(self, tmp_path, zones, signed=(), bogus=(), ttl=300):
        self.port = free_port()
        self.nsd_port = free_port()
        while self.nsd_port == self.port:
            self.nsd_port = free_port()
        self.dir = tmp_path / f"dnssec-{self.port}"
        self.dir.mkdir()
        self.ttl = ttl
        self.zones = {_zone_name(z): list(lines) for z, lines in zones.items()}
        self.bogus = {_zone_name(b) for b in bogus}
        names = sorted(self.zones)
        for a in names:
            for b in names:
                assert a == b or not a.endswith("." + b), \
                    f"zones must not nest: {a} is inside {b}"
        self.signed = {_zone_name(z) for z in signed}
        for b in self.bogus:
            self.signed.add(self._zone_of(b))
        for z in self.signed:
            assert z in self.zones, f"signed zone {z} has no records"
        self.serial = {z: 1 for z in self.zones}
        self.mtime = {}
        self.keys = {z: self._keygen(z) for z in sorted(self.signed)}
        for z in self.zones:
            self._write_zone(z)
        self._write_nsd_conf()
        self._write_unbound_conf()
        self.nsd = None
        self.unbound = None

    # ------------------------------------------------------------------
    # files

    def _zone_of(self, name):
        for z in self.zones:
            if name == z or name.endswith("." + z):
                return z
        raise AssertionError(f"{name} is in none of the zones")

    def _keygen(self, zone):
        """One key per zone, both KSK and ZSK (flags 257): a trust anchor
        with nothing else to roll.  Returns its base name (no suffix)."""
        out = subprocess.run([LDNS_KEYGEN, "-a", "ECDSAP256SHA256", "-k",
                              zone], cwd=self.dir, check=True,
                             capture_output=True, text=True).stdout
        base = out.strip().splitlines()[-1]
        return self.dir / base

    def _zone_path(self, zone):
        return self.dir / f"{zone}.zone"

    def _served_path(self, zone):
        if zone in self.signed:
            return self.dir / f"{zone}.zone.signed"
        return self._zone_path(zone)

    def _write_zone(self, zone):
        text = "\n".join([
            f"$ORIGIN {zone}.",
            f"$TTL {self.ttl}",
            f"@ IN SOA ns.{zone}. hostmaster.{zone}. "
            f"{self.serial[zone]} 3600 600 86400 60",
            f"@ IN NS ns.{zone}.",
            f"ns.{zone}. IN A 127.0.0.1",
            *self.zones[zone], ""])
        self._zone_path(zone).write_text(text)
        if zone in self.signed:
            self._sign(zone)
        # nsd reloads a zone whose file's mtime changed: move it on by a
        # whole second each time, so two writes within one tick still
        # count as a change.
        path = self._served_path(zone)
        t = max(time.time(), self.mtime.get(zone, 0) + 1)
        self.mtime[zone] = t
        os.utime(path, (t, t))

    def _sign(self, zone):
        now = int(time.time())
        subprocess.run([LDNS_SIGNZONE, "-o", zone, "-i", str(now - 3600),
                        "-e", str(now + 30 * 86400),
                        "-f", str(self._served_path(zone)),
                        str(self._zone_path(zone)), str(self.keys[zone])],
                       cwd=self.dir, check=True, capture_output=True)
        broken = [dns.name.from_text(b) for b in self.bogus
                  if self._zone_of(b) == zone]
        if broken:
            self._break(zone, broken)

    def _break(self, zone, broken):
        path = self._served_path(zone)
        z = dns.zone.from_file(str(path), origin=zone, relativize=False)
        # A whole zone breaks its denials too; a name inside keeps its
        # NSEC good, which proves other names' absence as well.
        is_whole = dns.name.from_text(zone) in broken
        keep = {dns.rdatatype.DNSKEY}
        if not is_whole:
            keep.add(dns.rdatatype.NSEC)
        for owner, node in z.nodes.items():
            if not any(owner.is_subdomain(b) for b in broken):
                continue
            for i, rds in enumerate(node.rdatasets):
                if rds.rdtype != dns.rdatatype.RRSIG or rds.covers in keep:
                    continue
                new = rds.copy()
                new.clear()
                for rd in rds:
                    new.add(_flip_signature(rd))
                node.rdatasets[i] = new
        z.to_file(str(path), relativize=False)

    def _write_nsd_conf(self):
        d = self.dir
        zones = "".join(f"zone:\n\tname: \"{z}\"\n"
                        f"\tzonefile: \"{self._served_path(z)}\"\n"
                        for z in sorted(self.zones))
        (d / "nsd.conf").write_text(f"""server:
	ip-address: 127.0.0.1
	port: {self.nsd_port}
	do-ip6: no
	reuseport: no
	server-count: 1
	tcp-count: 16
	username: ""
	chroot: ""
	zonesdir: "{d}"
	database: ""
	zonelistfile: "{d}/nsd-zone.list"
	xfrdfile: "{d}/nsd-xfrd.state"
	xfrdir: "{d}"
	pidfile: "{d}/nsd.pid"
	logfile: "{d}/nsd.log"
	verbosity: 2
	hide-version: yes
	zonefiles-check: yes
	zonefiles-write: 0
remote-control:
	control-enable: no
{zones}""")

    def _write_unbound_conf(self):
        d = self.dir
        lines = []
        stubs = []
        for z in sorted(self.zones):
            lines.append(f"\tlocal-zone: \"{z}.\" transparent")
            if z in self.signed:
                lines.append(f"\ttrust-anchor-file: \"{self.keys[z]}.ds\"")
            else:
                lines.append(f"\tdomain-insecure: \"{z}.\"")
            stubs.append(f"stub-zone:\n\tname: \"{z}.\"\n"
                         f"\tstub-addr: 127.0.0.1@{self.nsd_port}\n")
        per_zone = "\n".join(lines)
        (d / "unbound.conf").write_text(f"""server:
	interface: 127.0.0.1
	port: {self.port}
	do-ip4: yes
	do-ip6: no
	do-udp: yes
	do-tcp: yes
	so-reuseport: no
	num-threads: 1
	outgoing-range: 64
	num-queries-per-thread: 32
	username: ""
	chroot: ""
	directory: "{d}"
	pidfile: "{d}/unbound.pid"
	logfile: "{d}/unbound.log"
	use-syslog: no
	log-time-ascii: yes
	verbosity: 1
	val-log-level: 2
	log-servfail: yes
	ede: yes
	trust-anchor-signaling: no
	module-config: "validator iterator"
	do-not-query-localhost: no
	cache-max-ttl: 1
	cache-max-negative-ttl: 1
	access-control: 127.0.0.0/8 allow
	local-zone: "." static
	local-zone: "test." nodefault
{per_zone}
remote-control:
	control-enable: no
{"".join(stubs)}""")

    # ------------------------------------------------------------------
    # processes

    def _spawn(self, args, name):
        # stderr to a file, not a pipe: nobody drains a pipe while the
        # test runs, and a full one would stall the daemon.
        with open(self.dir / f"{name}.stderr", "ab") as err:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                    stderr=err)

        def alive():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited {proc.returncode}: " +
                    self._log_text(f"{name}.stderr") +
                    self._log_text(f"{name}.log"))
        return proc, alive

    def _start_nsd(self):
        self.nsd, alive = self._spawn(
            [NSD, "-d", "-c", str(self.dir / "nsd.conf")], "nsd")

        def loaded():
            alive()
            return self._nsd_serves_serials()
        poll(loaded, what="nsd to serve the zones")

    def _nsd_serves_serials(self):
        for z, serial in self.serial.items():
            try:
                r = self._ask(z, "SOA", self.nsd_port, timeout=0.1)
            except (OSError, dns.exception.Timeout):
                return False
            soa = r.get_rrset(r.answer, dns.name.from_text(z),
                              dns.rdataclass.IN, dns.rdatatype.SOA)
            if soa is None or soa[0].serial != serial:
                return False
        return True

    def _start_unbound(self):
        self.unbound, alive = self._spawn(
            [UNBOUND, "-d", "-c", str(self.dir / "unbound.conf")],
            "unbound")

        def up():
            alive()
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.5).close()
                return True
            except OSError:
                return False
        poll(up, what="unbound to listen")

    @staticmethod
    def _stop(proc):
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def start(self):
        try:
            self._start_nsd()
            self._start_unbound()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        self._stop(self.unbound)
        self._stop(self.nsd)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------
    # what tests call

    def set_records(self, zone, lines, bogus=None):
        """Replaces the zone's records (and, when bogus is given, the bogus
        names inside it); returns once nsd serves the new data and unbound
        has restarted with nothing cached."""
        zone = _zone_name(zone)
        assert zone in self.zones, f"no zone {zone}"
        self.zones[zone] = list(lines)
        if bogus is not None:
            self.bogus = {b for b in self.bogus if self._zone_of(b) != zone}
            for b in bogus:
                b = _zone_name(b)
                assert self._zone_of(b) == zone, f"{b} is not in {zone}"
                self.bogus.add(b)
            assert zone in self.signed or not bogus, \
                f"{zone} is unsigned: it cannot be made bogus after the start"
        self.serial[zone] += 1
        self._write_zone(zone)
        self.nsd.send_signal(signal.SIGHUP)
        poll(self._nsd_serves_serials, what=f"nsd to reload {zone}")
        self._stop(self.unbound)
        self._start_unbound()

    def _ask(self, name, rtype, port, timeout):
        q = dns.message.make_query(name, rtype, want_dnssec=True)
        q.flags |= dns.flags.AD
        r, _ = dns.query.udp_with_fallback(q, "127.0.0.1", timeout=timeout,
                                           port=port)
        return r

    def _answer(self, name, rtype, port, timeout):
        r = self._ask(name, rtype, port, timeout)
        want = dns.rdatatype.from_text(rtype)
        answers = sorted(rd.to_text() for rrset in r.answer
                         if rrset.rdtype == want for rd in rrset)
        return Answer(dns.rcode.to_text(r.rcode()),
                      bool(r.flags & dns.flags.AD), answers)

    def query(self, name, rtype, timeout=5.0):
        """Asks unbound (validating) for name/rtype."""
        return self._answer(name, rtype, self.port, timeout)

    def query_nsd(self, name, rtype, timeout=5.0):
        """Asks nsd (the authority, no validation) for name/rtype."""
        return self._answer(name, rtype, self.nsd_port, timeout)

    def _log_text(self, name):
        try:
            return (self.dir / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def unbound_log(self):
        return self._log_text("unbound.log")

    def nsd_log(self):
        return self._log_text("nsd.log")
