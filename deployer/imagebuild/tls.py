"""Telling a missing proxy CA apart from other image build failures.

Behind a TLS-intercepting proxy, pip, npm and apt inside a builder stage fail with
certificate errors (``SELF_SIGNED_CERT_IN_CHAIN``, ``CERTIFICATE_VERIFY_FAILED``)
deep in a long log. The build paths (``images/build.sh``, ``deployer build
--local``) look for them in the log and end with one line saying what to set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

CERT_FAILURE = re.compile(
    r"SELF_SIGNED_CERT_IN_CHAIN|CERTIFICATE_VERIFY_FAILED|UNABLE_TO_GET_ISSUER_CERT"
    r"|unable to get local issuer certificate|self[- ]signed certificate in certificate chain"
    r"|certificate verify failed|Certificate verification failed",
    re.IGNORECASE,
)
"""What pip (OpenSSL), npm (Node) and apt (GnuTLS) print when they distrust a certificate."""

MACHINE_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, the BSDs
)


def is_cert_failure(line: str) -> bool:
    """Return True when a log line reports a distrusted TLS certificate.

    Args:
        line (str): One line of build output.
    """
    return CERT_FAILURE.search(line) is not None


def machine_bundle() -> str:
    """Return this machine's CA bundle: the first of :data:`MACHINE_BUNDLES` that exists."""
    return next((p for p in MACHINE_BUNDLES if Path(p).is_file()), MACHINE_BUNDLES[0])


def hint(
    lines: Iterable[str],
    extra_ca_certs: str | None,
    example: str = "make build EXTRA_CA_CERTS={bundle}",
) -> str | None:
    """Return one line saying what to set when the build log shows a certificate failure.

    Args:
        lines (Iterable[str]): The build's output.
        extra_ca_certs (str | None): The ``EXTRA_CA_CERTS`` the build had, if any.
        example (str): The command the line shows, with ``{bundle}`` for the bundle.
            Default: ``make build EXTRA_CA_CERTS={bundle}``.

    Returns:
        str | None: The line, or None when no certificate failure is in the log.
    """
    if not any(is_cert_failure(line) for line in lines):
        return None
    bundle = machine_bundle()
    if extra_ca_certs:
        return (
            f"TLS certificate verification failed inside the image build although "
            f"EXTRA_CA_CERTS={extra_ca_certs}: that bundle lacks the CA of the proxy that "
            f"intercepts TLS; set EXTRA_CA_CERTS={bundle} (this machine's bundle)"
        )
    return (
        "TLS certificate verification failed inside the image build (a proxy intercepts "
        f"TLS?): set EXTRA_CA_CERTS={bundle}, e.g. `{example.format(bundle=bundle)}`"
    )
