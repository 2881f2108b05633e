"""Serving: the registered champion as a BentoML service."""
