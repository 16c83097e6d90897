"""Helpers shared by the tests and the benchmarks (no pytest fixtures here; the conftests
wrap these). One module per test bed:

engine: Docker, Compose, ports, image names, polling waits, running images.
fake_arm: the deployer against the fake ARM server (specs, environment, a cluster workload).
first_hour: a machine with no Azure sign-in, and what a failing command must print.
elastic: autoscaled workloads and the scalers built for them.
blast_stack: the BLAST service on the compose stack (``Stack``, ``bench_stack``).
soak: the chaos soak of the BLAST service.
cluster: the ipyparallel cluster of a compose stack; cluster_stack: a stack for the benches.
notebooks: the shipped notebooks, run headless in the notebook container.
lockdown: the hardening every container of a stack must show.
browser: headless Chromium over the DevTools protocol.
run_stack: ``deployer run`` on the local ACI emulator.
imagebuild: the fake ACR, a loopback registry and tiny image trees for ``deployer build``.
web: stand-ins for the web page's tests and bench.
mirror_server, ncbi_mirror: a local NCBI-style database mirror over HTTP (db fetch).
bench: what every benchmark shares (its typer command line and ``--smoke`` mode).
"""
