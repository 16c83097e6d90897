"""``python -m aci_emulator``: the same as the ``aci-emulator`` command."""

from .cli import main

main()
