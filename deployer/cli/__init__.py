"""The ``deployer`` command line: one module per command, one renderer."""
