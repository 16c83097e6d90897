"""The ``blast-jobs`` command line: one module per command, one renderer for all output."""
