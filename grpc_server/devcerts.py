"""Development PKI for gRPC mTLS: a CA, a server certificate and one client certificate per
CN. `make run` calls `python -m grpc_server.devcerts .dev/grpc` (files are generated only if
missing; keys are 0600 and live under .dev/, never in git). Tests use the same functions to
build their own CAs. Production certificates come from the platform CA, not from here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "numbering-dev-ca", days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), cert, key)


def issue(ca: Issued, cn: str, *, server: bool = False, days: int = 825) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(cn),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), cert, key)


def _write(path: Path, data: bytes, secret: bool) -> None:
    path.write_bytes(data)
    if secret:
        path.chmod(0o600)


def ensure_dev_pki(directory: Path, client_cns: list[str]) -> dict[str, Path]:
    """Create ca.pem, server.pem/server.key and <cn>.pem/<cn>.key under `directory` if missing."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_cert, ca_key = directory / "ca.pem", directory / "ca.key"
    if ca_cert.exists() and ca_key.exists():
        loaded = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        ca = Issued(ca_cert.read_bytes(), ca_key.read_bytes(), cert, loaded)
    else:
        ca = make_ca()
        _write(ca_cert, ca.cert_pem, False)
        _write(ca_key, ca.key_pem, True)
    paths = {"ca": ca_cert}
    for cn, server in [("localhost", True), *[(c, False) for c in client_cns]]:
        stem = "server" if server else cn
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        if not (cert_path.exists() and key_path.exists()):
            issued = issue(ca, cn, server=server)
            _write(cert_path, issued.cert_pem, False)
            _write(key_path, issued.key_pem, True)
        paths[stem] = cert_path
    return paths


def main(argv: list[str]) -> int:
    from core.authz import GRPC_DEFAULT_PERMISSIONS

    directory = Path(argv[1] if len(argv) > 1 else ".dev/grpc")
    for name, path in ensure_dev_pki(directory, sorted(GRPC_DEFAULT_PERMISSIONS)).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
