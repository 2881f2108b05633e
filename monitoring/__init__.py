"""Monitoring: Evidently drift reports and gated retraining."""
