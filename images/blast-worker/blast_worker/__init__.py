"""Queue-driven BLAST worker: verified databases, results in Blob, a job log in Table.

Modules:
    config: every environment variable, validated at start-up.
    messages: the versioned job message, the legacy shape, the option whitelist.
    provision: verified, resumable, parallel database downloads into a shared cache.
    runner: BLAST and blast_formatter as subprocesses with argument lists.
    worker: the ``blast-worker`` service loop.
    cli: the ``blast-jobs`` command line.
"""

__version__ = "0.1.0"
