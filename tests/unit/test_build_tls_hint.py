"""A build that fails on a distrusted certificate ends with what to set."""

from __future__ import annotations

import pytest

from deployer.imagebuild import tls

# As printed by pip (OpenSSL via urllib3), npm (Node) and apt (GnuTLS).
PIP = (
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: "
    "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
    "certificate chain (_ssl.c:1000)'))': /simple/numpy/"
)
NPM = "npm error code SELF_SIGNED_CERT_IN_CHAIN"
APT = (
    "Err:1 https://deb.example.org trixie InRelease Certificate verification failed: "
    "The certificate is NOT trusted."
)


@pytest.mark.parametrize("line", [PIP, NPM, APT])
def test_certificate_failures_name_the_variable_and_the_bundle(line: str) -> None:
    found = tls.hint(["Step 5/9 : RUN build-venv", line, "returned a non-zero code: 1"], None)
    assert found is not None and "\n" not in found
    assert f"set EXTRA_CA_CERTS={tls.machine_bundle()}" in found
    assert f"`make build EXTRA_CA_CERTS={tls.machine_bundle()}`" in found


def test_a_bundle_without_the_proxy_ca_is_named() -> None:
    found = tls.hint([NPM], "/tmp/wrong.pem")
    assert found is not None and "although EXTRA_CA_CERTS=/tmp/wrong.pem" in found


def test_other_failures_get_no_hint() -> None:
    lines = ["ERROR: No matching distribution found for nump", "Could not resolve host: x"]
    assert tls.hint(lines, None) is None
