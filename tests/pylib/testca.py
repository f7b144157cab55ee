"""testca - a certificate authority made inside the test, for the tests of
postern's certificate checks on the sending side (tls = verify, tls_ca,
MTA-STS, DANE) and for the peers those tests talk to.

    ca = TestCA(tmp_path / "ca")            # ca.cert_path: give as tls_ca
    cert, key = ca.issue(["mx.remote.test", "127.0.0.1"])
    old, old_key = ca.issue(["mx.remote.test"], expired=True)
    other = TestCA(tmp_path / "ca2")        # independent: a "wrong CA"

Promises:
- The CA certificate is a self-signed root (basicConstraints CA:TRUE,
  keyCertSign) with its own fresh key; two TestCA objects never trust
  each other's certificates.
- issue() makes a leaf for the names given: each becomes a dNSName SAN,
  or an iPAddress SAN when it parses as an IP address; the subject CN is
  the first name.  extendedKeyUsage serverAuth and clientAuth.  Keys are
  EC P-256 by default ("rsa": RSA 2048).  Each leaf has a key of its own,
  so a DANE test that pins one leaf's key fails against another leaf.
- expired=True: valid from 30 days ago until yesterday.
- chain=True: the certificate file holds the leaf followed by the CA
  certificate (what a server sends when the client must see the trust
  anchor, e.g. DANE-TA).
- The same arguments to issue() on one CA give the same files back
  without new work (a per-CA cache), so tests may call it freely.
- Files are PEM.  Run as root, the directory is opened to the service
  user (o+x on the way to it, certificates 0644) and keys are readable by
  its group, as postern_test.make_cert does, so a server that dropped
  privileges can read tls_ca or its own cert and key.

default_ca() is one CA per test process (in a temporary directory removed
at exit), for tests that need no CA of their own.  spki_sha256() and
cert_sha256() give the digests a TLSA record carries (selector 1 / 0,
matching type 1).
"""
import atexit
import datetime
import hashlib
import ipaddress
import os
import re
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from postern_test import AS_ROOT, open_path_for_service, service_ids

KEY_TYPES = ("ec", "rsa")


def _new_key(key_type):
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type must be one of {KEY_TYPES}: {key_type!r}")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _san(name):
    """An iPAddress entry for an IP literal, else a dNSName."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_cert(path, pem):
    path.write_bytes(pem)
    os.chmod(path, 0o644)


def _write_key(path, pem):
    # Created 0600 so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    if AS_ROOT:
        # As postern_test.make_cert: the service user's group may read it,
        # so a test can also give an issued pair to a postern listener.
        try:
            os.chown(path, 0, service_ids()[1])
            os.chmod(path, 0o640)
        except KeyError:  # no service user on this machine
            pass


class TestCA:
    """A root CA with its certificate at .cert_path (PEM)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, dirpath, name="postern test CA", key_type="ec"):
        self.dir = Path(dirpath)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._key = _new_key(key_type)
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "postern tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ])
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(self._key, hashes.SHA256()))
        self._ski = ski
        self.cert_pem = _cert_pem(self.cert)
        self.cert_path = self.dir / "ca.pem"
        _write_cert(self.cert_path, self.cert_pem)
        self.key_path = self.dir / "ca-key.pem"
        _write_key(self.key_path, _key_pem(self._key))
        # The CA file alone is the bundle a client trusts (tls_ca); the
        # name chain_path is kept for callers that expect one.
        self.chain_path = self.cert_path
        self._issued = {}
        self._count = 0
        open_path_for_service(self.dir)

    def __repr__(self):
        return f"TestCA({self.name!r}, {self.dir})"

    def issue(self, names, *, expired=False, key_type="ec", chain=False):
        """(cert_path, key_path) of a leaf for names (see the module
        comment); the same arguments give the same files."""
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ValueError("issue() needs at least one name")
        cache_key = (tuple(names), bool(expired), key_type, bool(chain))
        if cache_key in self._issued:
            return self._issued[cache_key]
        key = _new_key(key_type)
        now = _now()
        if expired:
            start = now - datetime.timedelta(days=30)
            end = now - datetime.timedelta(days=1)
        else:
            start = now - datetime.timedelta(hours=1)
            end = now + datetime.timedelta(days=400)
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=(key_type == "rsa"), data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(
                [_san(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH,
                 ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier
                           .from_issuer_subject_key_identifier(self._ski),
                           critical=False)
            .sign(self._key, hashes.SHA256()))
        self._count += 1
        stem = f"leaf{self._count}-{re.sub(r'[^A-Za-z0-9.-]', '_', names[0])}"
        cert_path = self.dir / f"{stem}.pem"
        key_path = self.dir / f"{stem}.key"
        pem = _cert_pem(cert)
        _write_cert(cert_path, pem + self.cert_pem if chain else pem)
        _write_key(key_path, _key_pem(key))
        self._issued[cache_key] = (cert_path, key_path)
        return cert_path, key_path


_DEFAULT = None


def default_ca():
    """One TestCA per test process, in a directory removed at exit."""
    global _DEFAULT
    if _DEFAULT is None:
        d = Path(tempfile.mkdtemp(prefix="postern-testca-"))
        atexit.register(shutil.rmtree, d, True)
        _DEFAULT = TestCA(d)
    return _DEFAULT


def _load_first_cert(cert_path):
    return x509.load_pem_x509_certificate(Path(cert_path).read_bytes())


def spki_sha256(cert_path):
    """Hex SHA-256 of the certificate's SubjectPublicKeyInfo (the data of
    a TLSA record with selector 1, matching type 1, e.g. '3 1 1')."""
    spki = _load_first_cert(cert_path).public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def cert_sha256(cert_path):
    """Hex SHA-256 of the whole certificate in DER (TLSA selector 0,
    matching type 1, e.g. '3 0 1' or, for a CA, '2 0 1')."""
    der = _load_first_cert(cert_path).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()
