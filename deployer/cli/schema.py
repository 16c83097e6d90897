"""``deployer schema``: the workload file's JSON Schema."""

from __future__ import annotations

import json

from deployer import workload
from deployer.cli import options as o
from deployer.cli.output import emit, guarded


@guarded("schema")
def command(output: o.OutputOpt = None) -> None:
    """Print the JSON Schema of the workload file."""
    schema = workload.json_schema()
    emit("schema", schema, output, lambda s: print(json.dumps(s, indent=2)))
