"""``deployer db``: the deployment's BLAST databases.

* :mod:`.fetch`: the library API behind ``deployer db fetch`` (NCBI's database fetched by a
  one-off ACI group, followed through its log, billed, deleted);
* :mod:`.follow`: reading that group's log and state (pure).

The group itself is :mod:`deployer.plan.dbfetch`; the databases' sizes for planning are
:mod:`deployer.plan.databases` and :mod:`deployer.dbsizes`.
"""
