"""phonehome's mitmproxy entry point: `mitmdump -s addons/phonehome_audit.py`.

mitmproxy puts this script's folder on sys.path, so the `phonehome` package
next to it is imported straight from a checkout.
"""

from phonehome.addon import make_addons

addons = make_addons()
