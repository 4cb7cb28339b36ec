"""Capture: mitmproxy flows and saved captures (.mitm, .har) → Observations."""
