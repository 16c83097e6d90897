"""The BLAST service's client library: the job protocol and the ``BlastClient`` API.

Modules:
    client: ``BlastClient`` (submit with batching, status, wait, results, recent, databases).
    messages: the versioned job message, the legacy shape, the option whitelist, the output
        formats and their file names.
    merge: a search's batches merged into one file per format (``deployer run``, the page).
    fasta: FASTA validation, molecule detection, ElasticBLAST-style batching.
    names: checks for names that end up in paths, blobs and storage resources.
    joblog: the job log table (job rows, time index, run index, final states).
    databases: database manifests and what they say about each database.
    ncbi: NCBI's preformatted databases: the source layout and its HTTP edge.
    dbfetch: ``db fetch``: NCBI volumes streamed into Blob storage, verified, resumable.
    config: the storage settings, read from the environment.
    storage: the storage clients.
    errors: the errors of the API, shaped like the CLI's JSON error envelope; the exit codes.
    cli: the ``blast-jobs`` command line, a thin layer over ``BlastClient``; its ``output``
        module (``--output`` and the JSON envelope) is ``deployer``'s too.

The worker (``blast_worker``) imports its message and validation code from here.
"""

from blast_client.client import BlastClient, JobStatus, new_job_id, plan_jobs
from blast_client.config import ConfigError, StorageConfig
from blast_client.databases import DatabaseInfo
from blast_client.dbfetch import FetchError, FetchResult
from blast_client.errors import (
    BlastClientError,
    InvalidRequest,
    JobNotFound,
    NoResult,
    StorageError,
)
from blast_client.messages import FORMAT_FILES, PROGRAMS, JobSpec, Options, Query
from blast_client.ncbi import SourceError, UnknownDatabase

__version__ = "0.1.0"

__all__ = [
    "FORMAT_FILES",
    "PROGRAMS",
    "BlastClient",
    "BlastClientError",
    "ConfigError",
    "DatabaseInfo",
    "FetchError",
    "FetchResult",
    "InvalidRequest",
    "JobNotFound",
    "JobSpec",
    "JobStatus",
    "NoResult",
    "Options",
    "Query",
    "SourceError",
    "StorageConfig",
    "StorageError",
    "UnknownDatabase",
    "new_job_id",
    "plan_jobs",
]
