"""Database shards: contiguous volume ranges searched with the whole database's statistics (pure).

A BLAST database of several volumes (``makeblastdb -max_file_sz``, or NCBI's ``nt.00`` ...)
is cut along its volume boundaries into ``N`` shards. A shard is only an alias file
(``.nal``/``.pal``) beside the volumes, so the database is never rewritten::

    TITLE nt
    DBLIST nt.04 nt.05 nt.06
    STATS_NSEQ 102345678
    STATS_TOTLEN 987654321012

**Statistics.** ``STATS_NSEQ`` and ``STATS_TOTLEN`` are BLAST's own alias keys for the numbers
its statistics use (``CSeqDB::GetNumSeqsStats`` / ``GetTotLenStats``): with the whole
database's sequence count and letters there, a shard's length adjustment, effective search
space, cut-off scores and e-values are those of one search of the whole database, bit for bit.
``-dbsize`` alone is not enough: it fixes the letters but the length adjustment still uses
the shard's sequence count, and ``-searchsp`` would need that adjustment computed per query
before the search. Recomputing e-values at the merge (mpiBLAST's way) cannot work for blastp,
whose composition-based statistics give every subject its own e-value for a score.

**Order.** BLAST sorts a query's subjects by e-value (all below 1e-180 are equal), then by the
best HSP's raw score (higher first), then by ordinal id, the higher first. A shard's subjects
all have ordinal ids above those of the shards before it (``first_oid``), so across shards a
tie goes to the later shard; within one shard BLAST's own order stands
(:mod:`blast_client.shardmerge`).

**max_target_seqs.** Each shard is asked for exactly the user's ``max_target_seqs`` (the
margin is 0, :func:`shard_max_target_seqs`), and the merge cuts to it again.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_MAX_TARGET_SEQS = 500
"""BLAST's own default ``-max_target_seqs``; the merge cuts to it when a job sets none."""

_SHARD = re.compile(r"^(?P<db>.+)\.shard(?P<index>\d+)of(?P<count>\d+)$")
# A worker's cache of one shard: <cache>/nt.shard2of4/nt.shard2of4 (its own directory).
_CACHED_SHARD = re.compile(
    r"^(?P<dir>.*/)?(?P<db>[^/]+)\.shard(?P<tag>\d+of\d+)/(?P=db)\.shard(?P=tag)$"
)
ALIAS_SUFFIXES = (".nal", ".pal")
"""A database's alias file: nucleotide, protein."""


@dataclass(frozen=True)
class Volume:
    """One volume of a BLAST database (``blastdbcmd -info`` of ``nt.00``, or its files).

    Attributes:
        name: The volume's name, e.g. ``nt.00`` (its files are ``nt.00.nsq``, ...).
        sequences: Its sequences.
        letters: Its bases or residues.
        bytes: Bytes its files take in memory (what a worker caches for it).
    """

    name: str
    sequences: int
    letters: int
    bytes: int


@dataclass(frozen=True)
class Shard:
    """A contiguous range of a database's volumes.

    Attributes:
        db: The database's name (``nt``).
        index: Position among the shards, from 0.
        count: How many shards the database has.
        volumes: Its volumes, in database order.
        first_oid: Ordinal id, in the whole database, of its first sequence.
    """

    db: str
    index: int
    count: int
    volumes: tuple[Volume, ...]
    first_oid: int

    @property
    def name(self) -> str:
        """The alias's name, ``nt.shard2of4`` (1-based): the ``-db`` a worker searches."""
        return shard_name(self.db, self.index, self.count)

    @property
    def sequences(self) -> int:
        """Sequences in the shard."""
        return sum(v.sequences for v in self.volumes)

    @property
    def bytes(self) -> int:
        """Bytes a worker caches for the shard."""
        return sum(v.bytes for v in self.volumes)


def shard_name(db: str, index: int, count: int) -> str:
    """The alias name of shard ``index`` (0-based) of ``count``: ``nt.shard1of4``."""
    return f"{db}.shard{index + 1}of{count}"


def whole_db(path: str) -> str:
    """The database a shard's ``-db`` belongs to (``/c/nt/nt.shard2of4`` -> ``/c/nt/nt``,
    and a worker's cached shard ``/c/nt.shard2of4/nt.shard2of4`` -> ``/c/nt/nt``, the path
    of the whole database in a worker's cache); any other path is returned as is."""
    cached = _CACHED_SHARD.match(path)
    if cached:
        return f"{cached.group('dir') or ''}{cached.group('db')}/{cached.group('db')}"
    found = _SHARD.match(path)
    return found.group("db") if found else path


def alias_volumes(alias: str) -> tuple[str, ...]:
    """The volumes a database's alias file lists (its ``DBLIST``), in order.

    Raises:
        ValueError: When it has no DBLIST.
    """
    for line in alias.splitlines():
        if line.startswith("DBLIST "):
            return tuple(line.split()[1:])
    raise ValueError("the alias file has no DBLIST line")


def stored_volumes(db: str, alias: str, sizes: Mapping[str, int]) -> tuple[Volume, ...]:
    """A stored database's volumes, each with the bytes of its files, for :func:`split`.

    Every worker and the deployer compute the same shards from the same storage: volumes in
    the order of the database's alias file, weighed by their blobs' sizes (sequence counts
    are not known here and are left 0).

    Args:
        db: The database.
        alias: Its alias file (``nt.nal``).
        sizes: File name -> bytes of every file of the database.

    Raises:
        ValueError: When the alias file lists a volume without files.
    """
    volumes = []
    for name in alias_volumes(alias):
        files = [n for n in sizes if n.startswith(f"{name}.")]
        if not files:
            raise ValueError(f"database {db}: volume {name} of its alias file has no files")
        volumes.append(Volume(name, 0, 0, sum(sizes[n] for n in files)))
    return tuple(volumes)


def shard_files(shard: Shard, files: Sequence[str]) -> tuple[str, ...]:
    """The files a worker fetches to search ``shard``: its volumes', and the database's own
    (``nt.ndb``, ``nt.nos``... the seqid index that ``blastdbcmd -entry`` and the formatter
    look ids up in), but not the whole database's alias file nor other volumes.

    Args:
        shard: The shard.
        files: Every file of the database.
    """
    own = {f"{shard.db}{ext}" for ext in ALIAS_SUFFIXES}
    prefixes = tuple(f"{v.name}." for v in shard.volumes)
    return tuple(
        f
        for f in files
        if f.startswith(prefixes)
        or (f.startswith(f"{shard.db}.") and "." not in f[len(shard.db) + 1 :] and f not in own)
    )


def split(db: str, volumes: Sequence[Volume], count: int) -> tuple[Shard, ...]:
    """Cut ``volumes`` into ``count`` contiguous shards whose largest caches the least.

    Args:
        db: The database's name.
        volumes: Its volumes in database order.
        count: Shards wanted, 1 to ``len(volumes)``.

    Raises:
        ValueError: When ``count`` is not between 1 and the number of volumes.
    """
    if not 1 <= count <= len(volumes):
        raise ValueError(
            f"database {db} has {len(volumes)} volume(s), so it takes 1 to {len(volumes)} "
            f"shards, not {count}"
        )
    cuts = _balanced_cuts([v.bytes for v in volumes], count)
    shards: list[Shard] = []
    oid = 0
    for index, (start, end) in enumerate(zip((0, *cuts), (*cuts, len(volumes)), strict=True)):
        shard = Shard(db, index, count, tuple(volumes[start:end]), oid)
        shards.append(shard)
        oid += shard.sequences
    return tuple(shards)


def shard_bytes(sizes: Sequence[int], count: int) -> tuple[int, ...]:
    """The bytes of each of :func:`split`'s ``count`` shards of volumes of ``sizes``, in order.

    Raises:
        ValueError: When ``count`` is not between 1 and ``len(sizes)``.
    """
    if not 1 <= count <= len(sizes):
        raise ValueError(f"{len(sizes)} volume(s) take 1 to {len(sizes)} shards, not {count}")
    bounds = (0, *_balanced_cuts(sizes, count), len(sizes))
    return tuple(sum(sizes[a:b]) for a, b in itertools.pairwise(bounds))


def _balanced_cuts(sizes: Sequence[int], count: int) -> tuple[int, ...]:
    """Where to cut ``sizes`` into ``count`` non-empty runs minimising the largest run's sum:
    the linear-partition dynamic programme (volumes are few, hundreds at most)."""
    n = len(sizes)
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    inf = float("inf")
    # best[k][i]: the least largest run when the first i volumes make k runs.
    best = [[inf] * (n + 1) for _ in range(count + 1)]
    cut = [[0] * (n + 1) for _ in range(count + 1)]
    best[0][0] = 0
    for k in range(1, count + 1):
        for i in range(k, n - (count - k) + 1):
            for j in range(k - 1, i):
                cost = max(best[k - 1][j], prefix[i] - prefix[j])
                if cost < best[k][i]:
                    best[k][i], cut[k][i] = cost, j
    cuts: list[int] = []
    i = n
    for k in range(count, 1, -1):
        i = cut[k][i]
        cuts.append(i)
    return tuple(reversed(cuts))


def alias_file(shard: Shard, title: str, total_sequences: int, total_letters: int) -> str:
    """The shard's alias file (``.nal`` for nucleotides, ``.pal`` for proteins).

    Args:
        shard: The shard.
        title: The whole database's title (reports name it, not the shard).
        total_sequences: Sequences of the whole database (``STATS_NSEQ``).
        total_letters: Letters of the whole database (``STATS_TOTLEN``).
    """
    return (
        f"# Shard {shard.index + 1} of {shard.count} of {shard.db}: whole-database statistics\n"
        f"TITLE {title}\n"
        f"DBLIST {' '.join(v.name for v in shard.volumes)}\n"
        f"STATS_NSEQ {total_sequences}\n"
        f"STATS_TOTLEN {total_letters}\n"
    )


def shard_max_target_seqs(max_target_seqs: int | None) -> int:
    """What each shard is asked for so the merge can cut to ``max_target_seqs``.

    Exactly the user's limit, no more. A shard's candidates for the limit (BLAST keeps about
    twice the limit before its final alignments) include every candidate of the whole search
    that lies in the shard, because both rank them by the same statistics. So every hit the
    whole search reports is among its shard's top ``max_target_seqs``, unless a subject the
    whole search never aligned outranks it, which would then be reported instead (a better hit
    that BLAST's own early cut-off had dropped). A larger margin only adds such subjects.

    Args:
        max_target_seqs: The job's limit; None for BLAST's default (500).
    """
    return DEFAULT_MAX_TARGET_SEQS if max_target_seqs is None else max_target_seqs
