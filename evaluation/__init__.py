"""Evaluation shared by training, the promotion gate and monitoring: metrics and baselines."""
