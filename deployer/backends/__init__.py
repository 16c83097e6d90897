"""Backends: where container groups live. See :class:`deployer.backends.base.Backend`."""
