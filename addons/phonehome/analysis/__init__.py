"""Whole-session analysis over stored flows: timeline, the audited app, claims, fleet."""
