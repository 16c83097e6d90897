"""BLAST runs to completion: ``deployer run`` and the janitor.

Pure parts: :mod:`.state` (run ids, the run record), :mod:`.merge` (merged results and the
manifest), :mod:`.billing` (cost from the groups' own start and stop times), :mod:`.groups`
(the run's worker groups), :mod:`.decide` (what the janitor does next). I/O at the
edges: :mod:`.store` (Table storage), :mod:`.janitor` (the loop), :mod:`.api` (the library API
behind the ``deployer run`` commands).
"""
