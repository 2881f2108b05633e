"""Synthetic behaviour logs with known ground truth, for the demo, tests and benchmarks."""
