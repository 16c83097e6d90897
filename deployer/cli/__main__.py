"""``python -m deployer.cli``: the same app as the ``deployer`` script."""

from deployer.cli.main import app

app(prog_name="deployer")
