"""NCBI's preformatted BLAST databases: where a source keeps them and what it says about them.

The layout is the one ``update_blastdb.pl`` (ncbi-blast+) reads. A source is a directory
(over HTTP) holding, for each database ``<db>``:

* ``<db>.tar.gz``, or volumes ``<db>.NN.tar.gz`` / ``<db>.NNN.tar.gz``, each with
  ``<tarball>.md5`` (``"<hex>  <file>"``);
* ``<db>-<nucl|prot>-metadata.json``: the metadata format 1.1 (``dbname``, ``dbtype``,
  ``description``, ``number-of-letters``, ``number-of-sequences``, ``bytes-to-cache``,
  ``bytes-total``, ``bytes-total-compressed``, ``last-updated``, ``files`` = tarball URLs);

and, for all databases, ``blastdb-metadata-1-1.json`` (a JSON array of those documents; what
``update_blastdb.pl`` reads today) and the older ``blastdb-manifest.json`` (format 1.0: an
object keyed by database with ``description``, ``size``, ``last_updated``, ``files``).

NCBI's site keeps only the current databases, in one flat directory. Its copies on Google
Cloud and AWS keep dated snapshots, ``<bucket>/<YYYY-MM-DD-HH-MM-SS>/``, and name the newest in
``<bucket>/latest-dir``; a bucket listing (S3's XML, which GCS speaks too) finds older ones.
Any mirror with either layout works as ``--source``: the URLs inside the metadata are only
used for their file names, which are fetched from the source itself.

Pure functions parse and plan; :class:`HttpSource` is the HTTP edge.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from blast_client.errors import BlastClientError, ExitCode, InvalidRequest

SOURCES = {
    "ncbi": "https://ftp.ncbi.nlm.nih.gov/blast/db",
    "gcp": "https://storage.googleapis.com/blast-db",
    "aws": "https://s3.amazonaws.com/ncbi-blast-databases",
}
"""NCBI's site and its two cloud copies (``update_blastdb.pl --source ncbi|gcp|aws``)."""
DEFAULT_SOURCE = "ncbi"
METADATA_INDEX = "blastdb-metadata-1-1.json"
LEGACY_MANIFEST = "blastdb-manifest.json"
LATEST_DIR = "latest-dir"
METADATA_SUFFIX = {"nucleotide": "nucl", "protein": "prot"}

_CHUNK = 256 * 1024
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SNAPSHOT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:-\d{2}-\d{2}-\d{2})?$")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


class SourceError(BlastClientError):
    """The source is unreachable, refused a request, or is not a BLAST database directory."""

    code = "source"


class UnknownDatabase(BlastClientError):
    """The source has no database of that name (exit code 2: the name is the bad input)."""

    code = "unknown_database"
    exit_code = ExitCode.INPUT


@dataclass(frozen=True)
class SourceDatabase:
    """One database as a source publishes it.

    Attributes:
        name: NCBI's name (``swissprot``).
        base: URL of the directory holding its files (a snapshot of a cloud copy, or the
            flat directory), without a trailing slash.
        snapshot: The snapshot directory's name, or None for a flat source.
        metadata: NCBI's metadata document (format 1.1), as published.
        volumes: Tarball file names in volume order.
    """

    name: str
    base: str
    snapshot: str | None
    metadata: dict[str, Any]
    volumes: tuple[str, ...]

    def url(self, file: str) -> str:
        """The URL of one of its files.

        Args:
            file: File name, e.g. ``swissprot.tar.gz``.
        """
        return f"{self.base}/{file}"

    @property
    def molecule(self) -> str | None:
        """``nucleotide`` or ``protein`` (from ``dbtype``), or None."""
        return molecule_of(self.metadata)

    @property
    def last_updated(self) -> str | None:
        """NCBI's ``last-updated`` (ISO 8601), or None."""
        value = self.metadata.get("last-updated")
        return value if isinstance(value, str) else None


def molecule_of(metadata: Mapping[str, Any]) -> str | None:
    """``nucleotide`` or ``protein`` from a metadata document's ``dbtype`` (pure).

    Args:
        metadata: NCBI or makeblastdb metadata.
    """
    dbtype = str(metadata.get("dbtype", "")).lower()
    if dbtype.startswith("nucl"):
        return "nucleotide"
    if dbtype.startswith("prot"):
        return "protein"
    return None


def source_url(source: str | None) -> str:
    """The base URL of ``--source`` (a name in :data:`SOURCES` or an http(s) URL) (pure).

    Args:
        source: ``ncbi``, ``gcp``, ``aws``, a URL, or None for NCBI.

    Raises:
        InvalidRequest: for anything else.
    """
    text = (source or DEFAULT_SOURCE).strip()
    if text.lower() in SOURCES:
        return SOURCES[text.lower()]
    if re.match(r"^https?://[^\s/]+(/\S*)?$", text):
        return text.rstrip("/")
    raise InvalidRequest(
        f"--source {text!r} is neither {', '.join(SOURCES)} nor an http(s) URL",
        hint="give a mirror with NCBI's layout, e.g. --source https://ftp.ncbi.nlm.nih.gov/blast/db",
    )


def check_date(date: str | None) -> str | None:
    """Validate ``--date`` (``YYYY-MM-DD``) (pure).

    Args:
        date: The option's value, or None.

    Raises:
        InvalidRequest: when it is not a real date in that form.
    """
    if date is None:
        return None
    if not _DATE.fullmatch(date):
        raise InvalidRequest(f"--date {date!r} is not a date: use YYYY-MM-DD, e.g. 2024-05-01")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise InvalidRequest(f"--date {date!r} is not a real date") from None
    return date


def volume_order(db: str, tarball: str) -> int | None:
    """Volume number of ``tarball`` in database ``db``, -1 for a single tarball, else None.

    ``update_blastdb.pl`` takes ``<db>.tar.gz`` and ``<db>.NN.tar.gz`` / ``<db>.NNN.tar.gz``;
    names of other databases that merely start with ``db`` (``nt_euk`` for ``nt``) do not
    match.

    Args:
        db: Database name.
        tarball: A file name.
    """
    if tarball == f"{db}.tar.gz":
        return -1
    match = re.fullmatch(re.escape(db) + r"\.(\d{2,3})\.tar\.gz", tarball)
    return int(match.group(1)) if match else None


def volumes_of(db: str, files: list[Any]) -> tuple[str, ...]:
    """The tarball names of ``db`` among metadata ``files`` URLs, in volume order (pure).

    Args:
        db: Database name.
        files: The metadata's ``files`` (URLs such as ``ftp://.../nt.00.tar.gz``).
    """
    found: dict[str, int] = {}
    for url in files:
        if not isinstance(url, str):
            continue
        name = url.rstrip("/").rsplit("/", 1)[-1]
        order = volume_order(db, name)
        if order is not None:
            found[name] = order
    return tuple(sorted(found, key=lambda n: found[n]))


def parse_index(doc: Any) -> dict[str, dict[str, Any]]:
    """Databases of a source index, by name (pure).

    Args:
        doc: ``blastdb-metadata-1-1.json`` (an array of metadata documents) or
            ``blastdb-manifest.json`` (format 1.0, an object keyed by database).

    Returns:
        For a 1.1 array, each database's metadata document; for a 1.0 object, its entry
        (``description``, ``size``, ``last_updated``, ``files``), without the metadata
        numbers (read them from ``<db>-<nucl|prot>-metadata.json``).

    Raises:
        ValueError: when ``doc`` is neither shape.
    """
    if isinstance(doc, list):
        out: dict[str, dict[str, Any]] = {}
        for entry in doc:
            # update_blastdb.pl reads only 1.1 entries; later 1.x keep those keys.
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("dbname"), str)
                and _format_at_least_1_1(entry.get("version"))
            ):
                out[entry["dbname"]] = entry
        return out
    if isinstance(doc, dict):
        return {
            name: entry
            for name, entry in doc.items()
            if name != "version" and isinstance(entry, dict)
        }
    raise ValueError("neither a metadata array nor a manifest object")


def _format_at_least_1_1(version: Any) -> bool:
    match = re.fullmatch(r"1\.(\d+)", str(version))
    return match is not None and int(match.group(1)) >= 1


def parse_md5_file(text: str) -> str:
    """The hex digest in a ``.md5`` file (``"<hex>  <name>"``, as ``md5sum`` writes) (pure).

    Args:
        text: The file's content.

    Raises:
        ValueError: when its first word is not an MD5 digest.
    """
    words = text.split()
    if not words or not _MD5.fullmatch(words[0]):
        raise ValueError(f"not an MD5 file: {text[:60]!r}")
    return words[0].lower()


def parse_listing(xml: str) -> list[str]:
    """Sub-directory names of an S3/GCS bucket listing with ``delimiter=/`` (pure).

    A regular expression, not an XML parser: only ``<CommonPrefixes><Prefix>`` matters and
    the text comes from the network.

    Args:
        xml: The ``ListBucketResult`` document.
    """
    names = []
    for block in re.findall(r"<CommonPrefixes>(.*?)</CommonPrefixes>", xml, re.S):
        match = re.search(r"<Prefix>([^<]*)</Prefix>", block)
        if match:
            names.append(match.group(1).rstrip("/").rsplit("/", 1)[-1])
    return names


def snapshot_for_date(snapshots: list[str], date: str) -> str | None:
    """The newest snapshot directory taken on ``date`` (pure).

    Args:
        snapshots: Directory names such as ``2024-05-01-01-05-02``.
        date: ``YYYY-MM-DD``.
    """
    same_day = sorted(s for s in snapshots if _SNAPSHOT.fullmatch(s) and s[:10] == date)
    return same_day[-1] if same_day else None


def nearest_snapshots(snapshots: list[str], date: str, count: int = 3) -> list[str]:
    """The dated snapshots closest to ``date``, for an error message (pure).

    Args:
        snapshots: Directory names.
        date: ``YYYY-MM-DD``.
        count: How many.
    """
    day = dt.date.fromisoformat(date)
    dated = sorted({s[:10] for s in snapshots if _SNAPSHOT.fullmatch(s)})
    return sorted(dated, key=lambda s: (abs((dt.date.fromisoformat(s) - day).days), s))[:count]


def unknown_database_error(name: str, names: list[str], where: str) -> UnknownDatabase:
    """The one-line error for a name the source does not have, listing what it has (pure).

    Args:
        name: The name asked for.
        names: Databases the source has.
        where: The source (and snapshot) for the message.
    """
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return UnknownDatabase(
        f"{where} has no database {name!r}; it has: {', '.join(sorted(names))}",
        hint=f"{hint}`blast-jobs db fetch NAME` takes one of those names",
        data={"available": sorted(names)},
    )


# -- the HTTP edge -------------------------------------------------------------------------


class TransientError(Exception):
    """A request that may succeed if tried again (dropped connection, 5xx, short body)."""


@dataclass(frozen=True)
class RemoteFile:
    """What a HEAD says about a file.

    Attributes:
        size: Content-Length, or None when the server does not say.
        ranges: True when the server takes ``Range`` requests.
    """

    size: int | None
    ranges: bool


@dataclass
class HttpSource:
    """GETs from a source with timeouts and retries: the fetch's only network edge.

    Args:
        retries: Attempts after the first for a failed transient request.
        backoff: First pause between attempts (seconds), doubled each time up to 10 s.
        timeout: Seconds to connect and between bytes.
        stop: Set to make every request give up at once (Ctrl-C).
        sleep: Sleeps between attempts (tests pass a fake).
    """

    retries: int = 5
    backoff: float = 0.5
    timeout: float = 30.0
    stop: threading.Event = field(default_factory=threading.Event)
    sleep: Callable[[float], None] = time.sleep
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def session(self) -> requests.Session:
        """One keep-alive session per thread (requests' sessions are not thread-safe)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _retrying(self, url: str, attempt: Callable[[], Any], retries: int | None = None) -> Any:
        retries = self.retries if retries is None else retries
        last = ""
        for n in range(retries + 1):
            if self.stop.is_set():
                raise SourceError("interrupted")
            if n:
                self.sleep(min(self.backoff * 2 ** (n - 1), 10.0))
            try:
                return attempt()
            except TransientError as exc:
                last = str(exc)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = _reason(exc)
            except requests.RequestException as exc:  # e.g. ChunkedEncodingError
                last = _reason(exc)
        raise SourceError(
            f"cannot reach {url} ({last}; tried {retries + 1} times)",
            hint="check the source address and the network, then run the command again",
        )

    def _check(self, response: requests.Response, url: str) -> None:
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise TransientError(f"HTTP {status}")
        if status >= 400:
            raise SourceError(f"{url}: HTTP {status} {response.reason}")

    def get_bytes(
        self, url: str, missing_ok: bool = False, retries: int | None = None
    ) -> bytes | None:
        """The whole body of a small file.

        Args:
            url: The URL.
            missing_ok: Return None on 404 instead of raising.
            retries: Attempts after the first (default: :attr:`retries`).
        """

        def attempt() -> bytes | None:
            with self.session.get(url, timeout=self.timeout) as response:
                if missing_ok and response.status_code in (403, 404):
                    # S3 answers 403 for a missing key in a bucket that may be listed.
                    return None
                self._check(response, url)
                return bytes(response.content)

        result: bytes | None = self._retrying(url, attempt, retries)
        return result

    def get_text(
        self, url: str, missing_ok: bool = False, retries: int | None = None
    ) -> str | None:
        """A small text file (UTF-8).

        Args:
            url: The URL.
            missing_ok: Return None on 404 instead of raising.
            retries: Attempts after the first (default: :attr:`retries`).
        """
        raw = self.get_bytes(url, missing_ok, retries)
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def get_json(self, url: str, missing_ok: bool = False, retries: int | None = None) -> Any:
        """A JSON document.

        Args:
            url: The URL.
            missing_ok: Return None on 404 instead of raising.
            retries: Attempts after the first (default: :attr:`retries`).

        Raises:
            SourceError: when it is not JSON.
        """
        raw = self.get_bytes(url, missing_ok, retries)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise SourceError(f"{url} is not valid JSON") from None

    def head(self, url: str) -> RemoteFile:
        """Size and range support of a file.

        Args:
            url: The URL.
        """

        def attempt() -> RemoteFile:
            with self.session.head(url, timeout=self.timeout, allow_redirects=True) as response:
                if response.status_code == 405:  # HEAD not allowed: stream it instead
                    return RemoteFile(None, False)
                self._check(response, url)
                length = response.headers.get("Content-Length")
                ranges = response.headers.get("Accept-Ranges", "").lower() == "bytes"
                size = int(length) if length and length.isdigit() else None
                return RemoteFile(size, ranges and size is not None)

        result: RemoteFile = self._retrying(url, attempt)
        return result

    def read_range(self, url: str, offset: int, length: int, sink: Callable[[bytes], None]) -> None:
        """Deliver bytes ``[offset, offset + length)`` of a file to ``sink`` in order, as
        they arrive. A dropped connection is retried from the byte where it stopped, so
        nothing is delivered twice.

        Args:
            url: The URL.
            offset: First byte.
            length: Number of bytes (at least 1).
            sink: Called with each chunk.

        Raises:
            SourceError: after the retries (counted per drop), or when the server ignores
                ``Range``.
        """
        got = 0

        def attempt() -> None:
            nonlocal got
            start = offset + got
            headers = {"Range": f"bytes={start}-{offset + length - 1}"}
            with self.session.get(url, headers=headers, stream=True, timeout=self.timeout) as r:
                self._check(r, url)
                if r.status_code != 206:
                    raise SourceError(f"{url} ignores range requests (HTTP {r.status_code})")
                body = _RawBody(r)
                while got < length:
                    if self.stop.is_set():
                        raise SourceError("interrupted")
                    try:
                        chunk = body.read(min(_CHUNK, length - got))
                    except TransientError:
                        chunk = b""
                    if not chunk:
                        raise TransientError(f"connection dropped after {got} of {length} bytes")
                    got += len(chunk)
                    sink(chunk)

        self._retrying(url, attempt)

    def get_range(self, url: str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of a file (see :meth:`read_range`).

        Args:
            url: The URL.
            offset: First byte.
            length: Number of bytes (at least 1).
        """
        parts: list[bytes] = []
        self.read_range(url, offset, length, parts.append)
        return b"".join(parts)

    @contextlib.contextmanager
    def stream(self, url: str) -> Iterator[Any]:
        """The raw body of a file for servers without ranges (one attempt to connect with
        retries; a drop while reading raises :class:`TransientError` from ``read``).

        Args:
            url: The URL.
        """

        def attempt() -> requests.Response:
            response = self.session.get(url, stream=True, timeout=self.timeout)
            try:
                self._check(response, url)
            except BaseException:
                response.close()
                raise
            return response

        response: requests.Response = self._retrying(url, attempt)
        try:
            yield _RawBody(response)
        finally:
            response.close()


class _RawBody:
    """A response body read without content decoding; transport errors become
    :class:`TransientError`."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response

    def read(self, size: int) -> bytes:
        try:
            return bytes(self.response.raw.read(size, decode_content=False))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"connection dropped ({type(exc).__name__})") from exc


def _reason(exc: Exception) -> str:
    """A short reason for a requests failure (its innermost cause, without the URL)."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "Temporary failure in name resolution",
        "Connection reset",
        "Connection aborted",
        "IncompleteRead",
        "No route to host",
    ):
        if marker.lower() in text.lower():
            return marker
    return type(exc).__name__


class SourceDirectory:
    """A source: finds a snapshot, reads its index and a database's metadata and MD5s.

    Args:
        url: Base URL (see :func:`source_url`).
        http: The HTTP edge.
    """

    def __init__(self, url: str, http: HttpSource) -> None:
        self.url = url.rstrip("/")
        self.http = http

    def snapshot(self, date: str | None) -> tuple[str, str | None]:
        """The directory to read: the newest snapshot, the one of ``date``, or the flat one.

        Args:
            date: ``YYYY-MM-DD`` or None for the newest.

        Returns:
            Its URL and snapshot name (None for a flat source).

        Raises:
            InvalidRequest: ``date`` on a source without snapshots, or no snapshot that day.
        """
        latest = None
        if self.url != SOURCES["ncbi"]:  # NCBI's own site is flat: do not ask
            # First contact: one retry only, so a wrong address fails in a second or two.
            text = self.http.get_text(f"{self.url}/{LATEST_DIR}", missing_ok=True, retries=1)
            latest = text.strip() if text and text.strip() else None
        if latest is not None and not _SNAPSHOT.fullmatch(latest):
            raise SourceError(f"{self.url}/{LATEST_DIR} names {latest[:40]!r}, not a snapshot")
        if date is None:
            if latest is None:
                return self.url, None
            return f"{self.url}/{latest}", latest
        if latest is None:
            raise InvalidRequest(
                f"{self.url} keeps only its current databases, no dated snapshots",
                hint="dated snapshots are on NCBI's cloud copies: add --source gcp or --source aws",
            )
        listing = self.http.get_text(f"{self.url}?delimiter=/&prefix={date}", missing_ok=True)
        if listing is None:
            raise SourceError(
                f"{self.url} cannot be listed, so its snapshot of {date} cannot be found",
                hint="point --source at the snapshot's directory itself, without --date",
            )
        chosen = snapshot_for_date(parse_listing(listing), date)
        if chosen is None:
            everything = self.http.get_text(f"{self.url}?delimiter=/", missing_ok=True) or ""
            near = nearest_snapshots(parse_listing(everything), date)
            raise InvalidRequest(
                f"{self.url} has no snapshot of {date}"
                + (f"; the nearest are {', '.join(near)}" if near else ""),
                hint="pick one of those dates, or leave out --date for the newest",
            )
        return f"{self.url}/{chosen}", chosen

    def database(self, name: str, date: str | None = None) -> SourceDatabase:
        """Find ``name`` in the source.

        Args:
            name: NCBI's database name.
            date: ``YYYY-MM-DD`` for a dated snapshot, None for the newest.

        Raises:
            UnknownDatabase: listing the databases the source has.
            SourceError: the source cannot be read or is not a BLAST database directory.
        """
        base, snapshot = self.snapshot(date)
        where = base if snapshot is None else f"{self.url} (snapshot {snapshot})"
        first = 1 if snapshot is None else None  # NCBI's site: this is the first contact
        index_doc = self.http.get_json(f"{base}/{METADATA_INDEX}", missing_ok=True, retries=first)
        legacy = index_doc is None
        if legacy:
            index_doc = self.http.get_json(f"{base}/{LEGACY_MANIFEST}", missing_ok=True)
        if index_doc is None:
            raise SourceError(
                f"{base} is not a BLAST database directory: it has neither {METADATA_INDEX} "
                f"nor {LEGACY_MANIFEST}",
                hint="point --source at a copy of https://ftp.ncbi.nlm.nih.gov/blast/db",
            )
        try:
            index = parse_index(index_doc)
        except ValueError as exc:
            raise SourceError(f"{base}: unreadable database index ({exc})") from None
        if name not in index:
            raise unknown_database_error(name, list(index), where)
        metadata = index[name]
        if legacy or "number-of-sequences" not in metadata:
            metadata = self._metadata_file(base, name, metadata)
        volumes = volumes_of(name, list(metadata.get("files") or []))
        if not volumes:
            raise SourceError(f"{where}: the metadata of {name} lists no {name}*.tar.gz volumes")
        return SourceDatabase(name, base, snapshot, metadata, volumes)

    def _metadata_file(self, base: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        for kind in ("nucl", "prot"):
            doc = self.http.get_json(f"{base}/{name}-{kind}-metadata.json", missing_ok=True)
            if isinstance(doc, dict):
                return doc
        # A 1.0 manifest alone still names the tarballs: enough to fetch.
        return {"dbname": name, "description": entry.get("description"), **entry}

    def md5(self, db: SourceDatabase, volume: str) -> str:
        """The published MD5 of one tarball.

        Args:
            db: The database.
            volume: Tarball name.

        Raises:
            SourceError: when the ``.md5`` file is missing or unreadable.
        """
        url = db.url(f"{volume}.md5")
        text = self.http.get_text(url) or ""
        try:
            return parse_md5_file(text)
        except ValueError as exc:
            raise SourceError(f"{url}: {exc}") from None
