"""Shared package: event schema, loaders, configuration and the sequence-feature contract."""
