"""Test certificates: a CA, server and client certificates it signs, and the bad ones
(another CA's, a wrong name, expired), written as PEM files by `cryptography`."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: object, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass
class Issued:
    cert: Path
    key: Path


class CA:
    def __init__(self, directory: Path, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.directory = directory

    def issue(
        self,
        name: str,
        sans: list[str],
        *,
        server: bool = True,
        client: bool = False,
        days: int = 30,
        rsa_key: bool = False,
    ) -> Issued:
        """A leaf certificate for `name` naming `sans` (DNS names or IP addresses)."""
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        alt: list[x509.GeneralName] = []
        for san in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                alt.append(x509.DNSName(san))
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        if client or not server:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        start = NOW - datetime.timedelta(days=1) if days > 0 else NOW - datetime.timedelta(days=10)
        end = NOW + datetime.timedelta(days=days) if days > 0 else NOW - datetime.timedelta(days=2)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(usages),
                critical=False,
            )
        )
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(self.directory / f"{name}.pem", self.directory / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, issued.key)
        return issued


@dataclass
class PKI:
    ca: CA
    other_ca: CA
    server: Issued
    client: Issued
    rsa_server: Issued
    wrong_name: Issued
    expired: Issued
    untrusted_server: Issued
    untrusted_client: Issued
    #: A DICOM node's certificate: server and client (a qrscp moving to destinations).
    node: Issued


def make_pki(directory: Path) -> PKI:
    ca = CA(directory, "test-ca")
    other = CA(directory, "other-ca")
    return PKI(
        ca=ca,
        other_ca=other,
        server=ca.issue("server", ["localhost", "127.0.0.1"]),
        client=ca.issue("client", [], server=False),
        rsa_server=ca.issue("rsa-server", ["localhost", "127.0.0.1"], rsa_key=True),
        wrong_name=ca.issue("wrong-name", ["pacs.example.org"]),
        expired=ca.issue("expired", ["localhost", "127.0.0.1"], days=0),
        untrusted_server=other.issue("untrusted-server", ["localhost", "127.0.0.1"]),
        untrusted_client=other.issue("untrusted-client", [], server=False),
        node=ca.issue("node", ["localhost", "127.0.0.1"], client=True),
    )
