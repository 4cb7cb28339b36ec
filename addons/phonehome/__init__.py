"""phonehome: a privacy-auditing intercepting proxy."""

__version__ = "0.1.0"
