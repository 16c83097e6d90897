"""Helpers shared by the integration tests and the benchmarks (no pytest fixtures here).

engine: Docker, Compose, ports, image names and polling waits.
blast_stack: the BLAST service on the compose stack (``Stack``, ``bench_stack``).
"""
