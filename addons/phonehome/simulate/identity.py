"""The simulated user's synthetic personal values, from Faker seeded with the run's seed."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from faker import Faker

__all__ = ["SyntheticIdentity", "make_identity", "write_identity"]


@dataclass(frozen=True, slots=True)
class SyntheticIdentity:
    """Field names follow the identity file (DESIGN.md)."""

    email: str
    name: str
    phone: str
    username: str
    device_name: str
    hostname: str
    ip: str
    mac: str
    meeting_id: str
    meeting_title: str
    chat_message: str

    def identity_file(self) -> dict[str, object]:
        """The identity file's content: what an auditor would declare as their own."""
        data = asdict(self)
        data.pop("chat_message")
        data["meeting_ids"] = [data.pop("meeting_id")]
        data["meeting_titles"] = [data.pop("meeting_title")]
        return data


_LETTERS = re.compile(r"[^a-z]")
_MAX_TRIES = 50


def _public_ipv4(fake: Faker) -> str:
    """A global unicast IPv4 whose /28 mask differs from itself (see masking)."""
    for _ in range(_MAX_TRIES):
        address = ipaddress.IPv4Address(fake.ipv4_public())
        if address.is_global and int(address) & 0x0F and not str(address).endswith(".0"):
            return str(address)
    raise RuntimeError("Faker gave no usable public IPv4")


def _unicast_mac(fake: Faker) -> str:
    octets = [int(part, 16) for part in fake.mac_address().split(":")]
    octets[0] &= 0xFC  # globally administered unicast
    return ":".join(f"{octet:02x}" for octet in octets)


def _distinct(values: list[str]) -> bool:
    """No value contains another (case-insensitive), so each leak is unambiguous."""
    lowered = [v.lower() for v in values]
    return all(a == b or a not in b for a in lowered for b in lowered)


def _candidate(fake: Faker) -> SyntheticIdentity:
    first, last = fake.first_name(), fake.last_name()
    domain = fake.domain_name()
    username = _LETTERS.sub("", (first[0] + last).lower())
    if len(username) < 6:
        username = _LETTERS.sub("", (first + last).lower())
    meeting_number = str(fake.random_int(2_000_000_000, 2_999_999_999))
    return SyntheticIdentity(
        email=f"{_LETTERS.sub('', first.lower())}.{_LETTERS.sub('', last.lower())}@{domain}",
        name=f"{first} {last}",
        phone=fake.numerify("+1-202-555-0###"),
        username=username,
        device_name=f"{first}'s MacBook Pro",
        hostname=f"lt-{fake.numerify('####')}{fake.lexify('??').lower()}.corp.{domain}",
        ip=_public_ipv4(fake),
        mac=_unicast_mac(fake),
        meeting_id=meeting_number,
        meeting_title=f"{fake.catch_phrase()} review",
        chat_message=fake.sentence(nb_words=10),
    )


def make_identity(seed: int) -> SyntheticIdentity:
    """The same seed always gives the same identity."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    for _ in range(_MAX_TRIES):
        identity = _candidate(fake)
        values = [identity.email, identity.name, identity.phone, identity.username,
                  identity.device_name, identity.hostname, identity.ip, identity.mac,
                  identity.meeting_id, identity.meeting_title]
        # The username must not look like hex, so no random hex id can contain it.
        if _distinct(values) and re.search(r"[g-z]", identity.username):
            return identity
    raise RuntimeError(f"no distinct synthetic identity for seed {seed}")


def write_identity(identity: SyntheticIdentity, path: Path) -> Path:
    """Writes the identity file (YAML), owner-only."""
    text = "# Synthetic identity of the simulated user (phonehome simulate).\n" + yaml.safe_dump(
        identity.identity_file(), sort_keys=False, allow_unicode=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
