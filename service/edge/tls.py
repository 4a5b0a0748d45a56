"""gRPC over TLS with certificates that rotate without a restart.

cert-manager (and Kubernetes' Secret volumes) replace the files in place; grpc asks the fetcher
below at each new handshake whether the certificate changed
(https://grpc.github.io/grpc/python/grpc.html#grpc.dynamic_ssl_server_credentials), and it
answers with the new files once their contents differ. Established connections keep theirs.

The files are checked before grpc sees them: each is PEM of its kind, and the key is the
certificate's. At start a bad set is a configuration error that says which file is wrong
(grpc itself would only fail to bind the port); on rotation it is logged and the current
certificate stays, as for a file caught mid-rotation.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from service.config import TlsFiles

log = structlog.get_logger("tls")

_Material = tuple[bytes, bytes, bytes | None]


class TlsFilesError(ValueError):
    """A TLS file is unreadable, not PEM of its kind, or the key is not the certificate's. The
    message names the variable and never quotes the files."""


class RotatingCertificate:
    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._current = self._read()
        _check(*self._current)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(self._current),
            # grpc's stubs say the fetcher never returns None; grpc's documentation says None
            # means "no change", which is what it does.
            self._fetch,  # type: ignore[arg-type]
            require_client_authentication=self._files.client_ca is not None,
        )

    def _read(self) -> _Material:
        files = self._files
        key = _read("TLS_KEY_FILE", files.key)
        cert = _read("TLS_CERT_FILE", files.cert)
        client_ca = (
            None if files.client_ca is None else _read("TLS_CLIENT_CA_FILE", files.client_ca)
        )
        return key, cert, client_ca

    def _configuration(self, material: _Material) -> grpc.ServerCertificateConfiguration:
        key, cert, client_ca = material
        return grpc.ssl_server_certificate_configuration([(key, cert)], client_ca)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by grpc on its own thread at each handshake: no I/O beyond reading three
        small files, and never an exception (grpc would keep the old certificate anyway)."""
        try:
            material = self._read()
            if material == self._current:
                return None
            _check(*material)
        except TlsFilesError as exc:
            # Mid-rotation (a file briefly missing, a new certificate beside the old key): keep
            # serving the current certificate.
            log.warning("TLS files unusable; keeping the current certificate", error=str(exc))
            return None
        self._current = material
        log.info("TLS certificate reloaded")
        return self._configuration(material)


def _read(variable: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFilesError(f"cannot read {variable} {path}: {exc.strerror}") from None


def _check(key: bytes, cert: bytes, client_ca: bytes | None) -> None:
    try:
        chain = x509.load_pem_x509_certificates(cert)
    except ValueError:
        raise TlsFilesError("TLS_CERT_FILE holds no PEM certificate") from None
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: an encrypted key, which grpc cannot use either.
        raise TlsFilesError("TLS_KEY_FILE holds no unencrypted PEM private key") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private_key.public_key().public_bytes(der, spki) != chain[0].public_key().public_bytes(
        der, spki
    ):
        raise TlsFilesError(
            "TLS_KEY_FILE is not the private key of the certificate in TLS_CERT_FILE "
            "(its first certificate): are the two swapped, or from different issuances?"
        )
    if client_ca is not None:
        try:
            x509.load_pem_x509_certificates(client_ca)
        except ValueError:
            raise TlsFilesError("TLS_CLIENT_CA_FILE holds no PEM certificate") from None
