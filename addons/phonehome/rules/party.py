"""Registrable domains (Public Suffix List, offline) and first/third-party lookup."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import tldextract

__all__ = [
    "DomainResolver",
    "default_resolver",
    "PartyEntry",
    "PartyIndex",
    "Attribution",
    "attribute",
    "host_suffixes",
    "is_ip_or_local",
]


class DomainResolver:
    """Wraps one tldextract instance that uses only its bundled PSL snapshot.

    `suffix_list_urls=()` keeps it offline (by default tldextract fetches the
    list over the network and logs a traceback when it can't); `cache_dir=None`
    keeps it from writing a cache file.
    """

    def __init__(self) -> None:
        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def registrable(self, host: str) -> str | None:
        """`metrics-a.wbx2.com` → `wbx2.com`; None for IPs, localhost and bare suffixes."""
        host = host.strip().rstrip(".").lower()
        if not host or is_ip_or_local(host):
            return None
        result = self._extract(host)
        if not result.suffix or not result.domain:
            return None
        return f"{result.domain}.{result.suffix}"

    def is_public_suffix(self, name: str) -> bool:
        """True for `com`, `co.uk`, `github.io`-style names nobody can own as a whole."""
        result = self._extract(name.strip().rstrip(".").lower())
        return bool(result.suffix) and not result.domain


@functools.lru_cache(maxsize=1)
def default_resolver() -> DomainResolver:
    """The one resolver of this process (the PSL snapshot is parsed once)."""
    return DomainResolver()


def is_ip_or_local(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost") or "." not in host and ":" not in host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_suffixes(host: str) -> list[str]:
    """`a.b.c.com` → [`a.b.c.com`, `b.c.com`, `c.com`, `com`]."""
    labels = host.strip().rstrip(".").lower().split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


@dataclass(frozen=True, slots=True)
class PartyEntry:
    party: str
    """The listing pack's `party`: first for an app vendor's pack, third for trackers."""
    organization: str | None
    pack: str = ""
    """The id of the pack whose domains list the host."""


@dataclass(frozen=True, slots=True)
class Attribution:
    party: str
    organization: str | None
    vendor_pack: str | None
    """The app vendor's pack that owns the host (None: a tracker, or no pack's domain)."""


def attribute(entry: PartyEntry | None, has_domain: bool, app: str | None) -> Attribution:
    """A host's party from its packs' entry alone, relative to the audited app.

    First party is the audited app's vendor (`app`, a pack id; None: every app
    vendor's pack, until the report picks one). Another app vendor's host is a
    third party. A host without a registrable domain (an IP, localhost) is
    `unknown`: no rule that matched on the path can vouch for it.
    """
    if entry is None:
        return Attribution("third" if has_domain else "unknown", None, None)
    if entry.party != "first":
        return Attribution(entry.party, entry.organization, None)
    party = "first" if app is None or entry.pack == app else "third"
    return Attribution(party, entry.organization, entry.pack)


class PartyIndex:
    """Which organization (and party) a host belongs to, from the packs' domains.

    A listed domain covers itself and its subdomains. Lookup tries the host's
    suffixes from the most specific, but never climbs above the host's
    registrable domain, so a pack cannot claim a whole public suffix.
    """

    def __init__(
        self, entries: Iterable[tuple[str, PartyEntry]], resolver: DomainResolver
    ) -> None:
        self._resolver = resolver
        self._entries: dict[str, PartyEntry] = {}
        for domain, entry in entries:
            self._entries.setdefault(domain.lower(), entry)

    def lookup(self, host: str) -> PartyEntry | None:
        registrable = self._resolver.registrable(host)
        if registrable is None:
            return None
        for suffix in host_suffixes(host):
            entry = self._entries.get(suffix)
            if entry is not None:
                return entry
            if suffix == registrable:
                break
        return None
