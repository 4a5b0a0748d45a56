"""gRPC over TLS with certificates that rotate without a restart.

cert-manager (and Kubernetes' Secret volumes) replace the files in place; grpc asks the fetcher
below at each new handshake whether the certificate changed
(https://grpc.github.io/grpc/python/grpc.html#grpc.dynamic_ssl_server_credentials), and it
answers with the new files once their contents differ. Established connections keep theirs.
"""

from __future__ import annotations

import grpc
import structlog

from service.config import TlsFiles

log = structlog.get_logger("tls")


class RotatingCertificate:
    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._current = self._read()

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(self._current),
            # grpc's stubs say the fetcher never returns None; grpc's documentation says None
            # means "no change", which is what it does.
            self._fetch,  # type: ignore[arg-type]
            require_client_authentication=self._files.client_ca is not None,
        )

    def _read(self) -> tuple[bytes, bytes, bytes | None]:
        files = self._files
        client_ca = files.client_ca.read_bytes() if files.client_ca is not None else None
        return files.key.read_bytes(), files.cert.read_bytes(), client_ca

    def _configuration(
        self, material: tuple[bytes, bytes, bytes | None]
    ) -> grpc.ServerCertificateConfiguration:
        key, cert, client_ca = material
        return grpc.ssl_server_certificate_configuration([(key, cert)], client_ca)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by grpc on its own thread at each handshake: no I/O beyond reading three
        small files, and never an exception (grpc would keep the old certificate anyway)."""
        try:
            material = self._read()
        except OSError as exc:
            # Mid-rotation (a file briefly missing): keep serving the current certificate.
            log.warning("TLS files unreadable; keeping the current certificate", error=str(exc))
            return None
        if material == self._current:
            return None
        self._current = material
        log.info("TLS certificate reloaded")
        return self._configuration(material)
