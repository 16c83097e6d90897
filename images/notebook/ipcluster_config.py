# ipyparallel reads this profile config whenever Cluster() or `ipcluster` runs here.
# Upstream examples begin with `rc = ipp.Cluster().start_and_connect_sync()`, which
# would start a second controller inside this container and then die writing to the
# read-only security/ folder. This server is the front door of a cluster that runs
# outside its container, so refuse before anything starts and say what to do instead.
from ipyparallel.cluster.launcher import ControllerLauncher

MESSAGE = "this server is connected to an existing cluster: use `ipp.Client()`"


class ExistingClusterError(RuntimeError):
    """Shown as one line in a notebook, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ExistingCluster(ControllerLauncher):
    """A controller launcher that refuses to start a second cluster."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        # Nothing was started: nothing to record in, or clean from, the read-only folder.
        self.parent.cluster_file = ""
        self.parent.shutdown_atexit = False
        raise ExistingClusterError(MESSAGE)


c = get_config()  # noqa: F821
c.Cluster.controller_launcher_class = ExistingCluster
