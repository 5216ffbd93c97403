"""nnkit: the tooling of the Neural Networks from Scratch course kit (grading, releases, benchmarks)."""
