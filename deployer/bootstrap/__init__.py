"""``deployer init`` and ``deployer destroy``: from an empty subscription to what a deployment
needs, and back.

* :mod:`.names`: the names of what init creates (pure): the file's, else stable defaults;
* :mod:`.roles`: the role assignments, named so that re-runs find them (pure);
* :mod:`.plan`: what exists vs what is needed -> steps; what destroy deletes; costs (pure);
* :mod:`.azure`: the Azure calls (the real SDK clients);
* :mod:`.api`: :func:`init` and :func:`destroy`, the library API the CLI renders.
"""

from deployer.bootstrap.api import (
    DestroyPreview,
    DestroyResult,
    InitIncomplete,
    InitPlan,
    InitResult,
    destroy,
    init,
)
from deployer.bootstrap.azure import Clock

__all__ = [
    "Clock",
    "DestroyPreview",
    "DestroyResult",
    "InitIncomplete",
    "InitPlan",
    "InitResult",
    "destroy",
    "init",
]
