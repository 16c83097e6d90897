"""Client construction for both auth modes, and result links (no network involved)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

from blast_client.config import load_storage_config
from blast_client.storage import Storage

KEY = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"


def test_managed_identity_mode_uses_account_urls_and_plain_links() -> None:
    cfg = load_storage_config(
        {
            "AZURE_STORAGE_ACCOUNT": "aciresearchdata",
            "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
        }
    )
    st = Storage(cfg)
    assert not st.key_auth
    assert st.queue.url == "https://aciresearchdata.queue.core.windows.net/blast-jobs"
    assert st.poison.url.endswith("/blast-jobs-poison")
    assert st.table.url.startswith("https://aciresearchdata.table.core.windows.net")
    url, expiry = st.blob_link("blast-results", "job-1/results.6.tsv")
    assert url == (
        "https://aciresearchdata.blob.core.windows.net/blast-results/job-1/results.6.tsv"
    )
    assert expiry is None


def test_key_auth_links_carry_a_read_only_sas_with_expiry() -> None:
    conn = (
        f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY};"
        "EndpointSuffix=core.windows.net"
    )
    st = Storage(
        load_storage_config(
            {"AZURE_STORAGE_CONNECTION_STRING": conn, "BLAST_SAS_EXPIRY_HOURS": "24"}
        )
    )
    assert st.key_auth
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    url, expiry = st.blob_link("blast-results", "job-1/results.6.tsv", now=now)
    parts = urlsplit(url)
    assert parts.netloc == "acct1.blob.core.windows.net"
    query = parse_qs(parts.query)
    assert query["sp"] == ["r"] and query["sr"] == ["b"] and "sig" in query
    assert query["se"] == ["2030-01-02T00:00:00Z"]
    assert expiry == now + dt.timedelta(hours=24)
