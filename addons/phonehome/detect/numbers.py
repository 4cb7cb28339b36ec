"""Detectors for numbers with a check digit: payment cards and national ids (python-stdnum)."""

from __future__ import annotations

from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.nl import bsn
from stdnum.us import ssn

from ..model import Scalar
from .base import Context, Detector, Hit, text_before

__all__ = [
    "CreditCardDetector",
    "NationalIdDetector",
]


# --- credit card ------------------------------------------------------------

_CARD_KEYS = frozenset({"card", "cardnumber", "pan", "cc", "ccnumber", "creditcard",
                        "creditcardnumber", "cardno", "paymentcard"})


def card_brand(digits: str) -> str | None:
    """The card network for an IIN prefix and length, or None."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "Visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "Mastercard"
    if two in (34, 37) and n == 15:
        return "American Express"
    if (digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649) and n in (16, 19):
        return "Discover"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "JCB"
    if (300 <= int(digits[:3]) <= 305 or two in (36, 38)) and n == 14:
        return "Diners Club"
    if two == 62 and 16 <= n <= 19:
        return "UnionPay"
    return None


class CreditCardDetector(Detector):
    type = "credit_card"
    severity = "high"
    single_line = True
    pattern = (
        r"\b[0-9]{13,19}\b"
        r"|\b[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,3})?\b"
        r"|\b[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}\b"
    )
    prefilter = r"[0-9]{4}[ -]?[0-9]{4}|[0-9]{4}[ -][0-9]{6}"
    positive_keys = _CARD_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        prev, nxt = text_before(value, start), value[end : end + 2]
        if prev in (".", ",") or (nxt[:1] in (".", ",") and nxt[1:2].isdigit()):
            return None  # a decimal number
        text = value[start:end]
        digits = "".join(ch for ch in text if ch.isdigit())
        if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
            return None
        separators = {ch for ch in text if not ch.isdigit()}
        if len(separators) > 1:
            return None
        brand = card_brand(digits)
        if brand is None or not luhn.is_valid(digits):
            return None
        confidence = 0.8 + self.context_score(ctx)
        return self.make(text, confidence, f"{brand} number with a valid Luhn check digit")


# --- national id ------------------------------------------------------------

_NATIONAL_KEYS = frozenset(
    {"ssn", "socialsecuritynumber", "nationalid", "nationalidnumber", "taxid", "tin",
     "steuerid", "steueridnr", "idnr", "nir", "insee", "dni", "nie", "nif", "bsn",
     "personalid", "personalnumber", "personnummer", "nationalnumber", "iban", "bankaccount"}
)
_ID_VALIDATORS = (
    ("US SSN", ssn),
    ("DE Steuer-IdNr", idnr),
    ("FR NIR", nir),
    ("ES DNI", dni),
    ("ES NIE", nie),
    ("NL BSN", bsn),
    ("IBAN", iban),
)


class NationalIdDetector(Detector):
    """US SSN (dashed), IBAN and Spanish DNI anywhere; more kinds under id keys (stdnum)."""

    type = "national_id"
    severity = "high"
    numeric = True
    single_line = True
    pattern = (
        r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b"
        r"|\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"
        r"|\b[0-9]{8}-?[A-Z]\b"
    )
    prefilter = r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}|[0-9]{8}-?[A-Z]"
    positive_keys = _NATIONAL_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        text = value[start:end]
        if text[:1].isalpha():
            kind, module = "IBAN", iban
        elif text[3:4] == "-" and text[6:7] == "-":
            kind, module = "US SSN", ssn
        else:
            kind, module = "ES DNI", dni
        if not module.is_valid(text):
            return None
        confidence = 0.8 + self.context_score(ctx)
        return self.make(text, confidence, f"{kind} with valid structure/check digits")

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _NATIONAL_KEYS

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value).strip()
        if not 6 <= len(text) <= 40:
            return None
        for kind, module in _ID_VALIDATORS:
            if module.is_valid(text):
                return self.make(text, 0.9, f"{kind} under key {ctx.raw_key!r}")
        return None
