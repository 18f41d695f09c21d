"""A self-signed certificate for the demo's HTTPS listener (https://localhost:10443) and the
browser tests, made at run time so that no private key is ever committed.

Usage: python -m scripts.demo_tls DIR   (from the repository root; `make demo-tls`)
Writes DIR/cert.pem, DIR/key.pem (EC P-256; subjectAltName localhost, 127.0.0.1 and ::1; valid
30 days) and DIR/spki.txt: the base64 sha256 of the certificate's public key, the value Chromium's
`--ignore-certificate-errors-spki-list` takes to trust exactly this key. Keeps a certificate that
is still valid for more than a day (browsers that were told to trust it keep doing so).
"""

import base64
import datetime
import hashlib
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30


def spki_sha256(cert):
    """base64(sha256(SubjectPublicKeyInfo)), as Chromium's SPKI lists want it."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def still_valid(cert_path):
    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=1)


def make(directory):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path, spki_path = directory / "cert.pem", directory / "key.pem", directory / "spki.txt"
    if still_valid(cert_path) and key_path.exists() and spki_path.exists():
        return spki_path.read_text().strip()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    # Readable by others on purpose: a throwaway key for localhost, which the docker-compose demo's
    # Envoy (another user inside the container) must read.
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    spki = spki_sha256(cert)
    spki_path.write_text(spki + "\n")
    return spki


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(make(sys.argv[1]))
