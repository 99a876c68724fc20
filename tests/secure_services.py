"""A secured local Kafka broker and redis-server for the integration tests.

* A certificate authority and a server certificate (SAN ``localhost`` and ``127.0.0.1``, so
  clients verify host names as they would in production) are generated with ``cryptography``;
  a second, unrelated CA plays the "unknown CA" of the negative tests.
* Kafka 3.9.1: one ``SASL_SSL`` listener for clients and brokers (the only one besides the
  KRaft controller's loopback listener), a PEM keystore and truststore, SASL ``PLAIN`` users
  from the JAAS line and ``SCRAM-SHA-512`` users written into the metadata at format time
  (``StorageTool format --add-scram``).
* redis-server 7: TLS only (``port 0``, ``tls-port``), the ``default`` user off and an ACL user
  limited to the project's ``sd:`` keys and channels, plus an admin user for test set-up.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stream_detector.services.kafka import BrokerSecurity
from stream_detector.services.redis import RedisSecurity

# Passwords of throw-away services on loopback; alphanumeric so no config quoting is needed.
PLAIN_USER, PLAIN_PASSWORD = "stream-detector", "plainUserPw7"  # a hyphen, as in deploy/
# the README's secure example names this user for Kafka (SCRAM) and Redis (ACL) alike
SCRAM_USER, SCRAM_PASSWORD = "stream-detector", "bobScramPw9"
BROKER_USER, BROKER_PASSWORD = "broker", "brokerPw3"
REDIS_USER, REDIS_PASSWORD = "stream-detector", "redisAclPw5"
REDIS_ADMIN, REDIS_ADMIN_PASSWORD = "sd-admin", "redisAdminPw8"


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA, the server's key and certificate, and a CA nobody trusts."""

    ca: Path
    server_cert: Path
    server_key: Path
    server_keystore: Path  # key + certificate chain in one file (Kafka's PEM keystore)
    unknown_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server(ca_key: rsa.RSAPrivateKey, ca: x509.Certificate) -> tuple[rsa.RSAPrivateKey,
                                                                       x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make_pki(folder: Path) -> Pki:
    """Generate the CA, the server certificate and an unrelated CA into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _ca("stream-detector test CA")
    key, cert = _server(ca_key, ca)
    _, other = _ca("some other CA")
    pem = serialization.Encoding.PEM
    paths = Pki(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem",
                folder / "server-keystore.pem", folder / "unknown-ca.pem")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.server_cert.write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    paths.server_key.write_bytes(_pem_key(key))
    paths.server_key.chmod(0o600)
    paths.server_keystore.write_bytes(_pem_key(key) + cert.public_bytes(pem) + ca.public_bytes(pem))
    paths.server_keystore.chmod(0o600)
    paths.unknown_ca.write_bytes(other.public_bytes(pem))
    return paths


def kafka_security(pki: Pki) -> BrokerSecurity:
    """One SASL_SSL listener (PLAIN and SCRAM-SHA-512) in place of the PLAINTEXT one."""
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    jaas = (f'{plain} required username="{BROKER_USER}" password="{BROKER_PASSWORD}" '
            f'user_{BROKER_USER}="{BROKER_PASSWORD}" user_{PLAIN_USER}="{PLAIN_PASSWORD}";')
    properties = {
        "listeners": "SASL_SSL://127.0.0.1:${broker_port},CONTROLLER://127.0.0.1:${controller_port}",
        "advertised.listeners": "SASL_SSL://127.0.0.1:${broker_port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": f"{scram} required;",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": "none",
    }
    return BrokerSecurity(
        properties=properties,
        format_args=["--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"],
        client_config={"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                       "sasl.username": PLAIN_USER, "sasl.password": PLAIN_PASSWORD,
                       "ssl.ca.location": str(pki.ca)},
    )


def redis_security(pki: Pki) -> RedisSecurity:
    """TLS only; ``default`` off; the app user may touch only ``sd:`` keys and channels."""
    return RedisSecurity(
        config=[
            f"tls-cert-file {pki.server_cert}",
            f"tls-key-file {pki.server_key}",
            f"tls-ca-cert-file {pki.ca}",
            "tls-auth-clients no",
            "user default off",
            f"user {REDIS_USER} on >{REDIS_PASSWORD} ~sd:* &sd:* +@all -@dangerous",
            f"user {REDIS_ADMIN} on >{REDIS_ADMIN_PASSWORD} ~* &* +@all",
        ],
        client_kwargs={"username": REDIS_ADMIN, "password": REDIS_ADMIN_PASSWORD,
                       "ssl_ca_certs": str(pki.ca)},
    )
