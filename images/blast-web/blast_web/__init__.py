"""The BLAST web page: search, follow and read BLAST jobs of the queue-driven service."""

__version__ = "0.1.0"
