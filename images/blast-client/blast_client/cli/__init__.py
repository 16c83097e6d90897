"""The ``blast-jobs`` command line: :mod:`.main` declares the commands (Typer), one module
per group of commands does the work, :mod:`.render` prints every result."""
