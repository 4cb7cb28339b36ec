"""Identity matching: every encoding of the auditor's own values is found and named,
in one pass over body, query, headers, cookies and the URL; the identity file loader."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote, quote_plus

import pytest

from builders import identity_of, make_payload
from phonehome.detect import DetectionEngine, IdentityError, load_identity
from phonehome.detect.identity import IDENTITY_FIELDS, IdentityIndex, expand

EMAIL = "Jane.Roe@Example.org"
LOWER = EMAIL.lower()
ENGINE = DetectionEngine(identity_of({"email": EMAIL, "name": "Jane Roe",
                                                "phone": "+1 415 555 2671",
                                                "mac": "A4:83:E7:12:34:56",
                                                "meeting_ids": "2634 987 1234",
                                                "custom": "jane>>>roe?"}))
CUSTOM = "jane>>>roe?"  # its base64 holds "+", so base64 and base64url differ


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def h(algo: str, text: str) -> bytes:
    return hashlib.new(algo, text.encode()).digest()


# (planted string, expected encoding)
ENCODINGS = [
    (EMAIL, "plain"),
    (LOWER, "case-folded"),
    (EMAIL.upper(), "case-folded"),
    (EMAIL[::-1], "reversed"),
    (quote(EMAIL, safe=""), "url"),
    (quote_plus("Jane Roe"), "url"),
    (EMAIL.encode().hex(), "hex"),
    (EMAIL.encode().hex().upper(), "hex"),
    (b64(EMAIL.encode()), "base64"),
    (b64(EMAIL.encode()).rstrip("="), "base64"),
    (b64(CUSTOM.encode()), "base64"),
    (b64u(CUSTOM.encode()), "base64url"),
    (base64.urlsafe_b64encode(CUSTOM.encode()).decode(), "base64url"),
    (base64.urlsafe_b64encode(b"\xfb\xff" + CUSTOM.encode()).decode()[3:], "base64url"),
    (b64(quote(EMAIL, safe="").encode()), "url>base64"),
    (quote(b64(EMAIL.encode()), safe=""), "base64>url"),
    *[(h(a, EMAIL).hex(), a) for a in ("md5", "sha1", "sha224", "sha256", "sha512")],
    *[(h(a, LOWER).hex(), f"{a}(lower)") for a in ("md5", "sha1", "sha224", "sha256", "sha512")],
    (h("sha256", LOWER).hex().upper(), "sha256(lower)"),
    (b64(h("sha256", LOWER)), "sha256(lower)>base64"),
    (b64u(h("sha1", EMAIL)), "sha1>base64url"),
    (b64(h("md5", LOWER).hex().encode()), "md5(lower)>hex>base64"),
    (h("sha256", "+14155552671").hex(), "sha256"),
    ("+14155552671", "plain"),
    ("(415) 555-2671", "plain"),
    ("a4-83-e7-12-34-56", "plain"),
    ("26349871234", "plain"),
]


@pytest.mark.parametrize(("planted", "encoding"), ENCODINGS)
@pytest.mark.parametrize("where", ["body", "query", "header", "cookie"])
def test_each_encoding_is_found_and_named(planted, encoding, where):
    if where == "body":
        payload = make_payload({"metrics": [{"x": {"v": planted}}]})
        location = "$.metrics[0].x.v"
    elif where == "query":
        payload = make_payload(query=[("uid", planted)])
        location = "query:uid"
    elif where == "header":
        payload = make_payload(headers=[("X-Client", planted)])
        location = "header:X-Client"
    else:
        payload = make_payload(cookies=[("tr", planted)])
        location = "cookie:tr"
    matches = [f for f in ENGINE.detect(payload) if f.type == "identity_match"]
    assert [(f.encoding, f.location) for f in matches] == [(encoding, location)]
    (finding,) = matches
    assert finding.category == "personal_data" and finding.severity == "high"
    assert finding.detector == "identity"
    assert planted not in finding.evidence and EMAIL.lower() not in finding.evidence.lower()
    assert CUSTOM not in finding.evidence
    assert finding.value in planted  # the matched part (a base64 middle for blobs)


# One declared value per identity file key, and how its evidence must read: masked
# the way that kind of value is (redact.py), never the value itself.
PLAIN_EVIDENCE = {
    "email": ("jane.roe@example.org", "j***@e***.org"),
    "name": ("Jane Roe", "J*** R***"),
    "phone": ("+1 415 555 2671", "+1********71"),
    "username": ("jroe1984", "j***"),
    "device_name": ("JANES-MACBOOK", "J***"),
    "hostname": ("janes-mbp.corp.example", "j***.example"),
    "ip": ("203.0.113.42", "203.0.113.x"),
    "mac": ("a4:83:e7:12:34:56", "a4:83:e7:xx:xx:xx"),
    "meeting_ids": ("2634 987 1234", "2634… (13 chars)"),
    "meeting_titles": ("Q3 budget review", "Q*** (3 words, 16 chars)"),
    "custom": ("jane>>>roe?", "jane… (11 chars)"),
}


def test_every_identity_key_has_its_evidence_rule():
    assert set(PLAIN_EVIDENCE) == set(IDENTITY_FIELDS)


@pytest.mark.parametrize("field", sorted(PLAIN_EVIDENCE))
def test_a_plain_identity_match_is_masked_as_its_kind(field):
    value, evidence = PLAIN_EVIDENCE[field]
    engine = DetectionEngine(identity_of({field: value}))
    matches = [f for f in engine.detect(make_payload({"v": value}))
               if f.type == "identity_match"]
    assert [(f.identity, f.encoding, f.evidence) for f in matches] == [
        (field, "plain", evidence)]


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5])
def test_base64_inside_a_longer_blob_at_every_alignment(offset):
    blob = b64(b"{" * offset + b'"user":"' + EMAIL.encode() + b'","n":1}')
    (finding,) = [f for f in ENGINE.detect(make_payload({"data": blob}))
                  if f.type == "identity_match"]
    assert finding.encoding == "base64"
    if (offset + 8) % 3:  # the value does not start on a 3-byte boundary of the blob
        assert "inside a base64 blob" in finding.reason


def test_url_leaf_and_embedded_text():
    url = "https://t.example.net/p?e=" + quote(EMAIL, safe="") + "&n=Jane%20Roe"
    payload = make_payload({"log": f"signed in as {EMAIL} ok"}, url=url)
    found = {(f.location, f.encoding) for f in ENGINE.detect(payload)
             if f.type == "identity_match"}
    assert found == {("$.log", "plain"), ("url", "url")}


def test_same_value_same_place_reported_once_most_specific():
    # the padded base64 contains the unpadded and aligned forms: one finding
    payload = make_payload({"a": b64(EMAIL.encode()), "b": EMAIL + " " + EMAIL})
    matches = [f for f in ENGINE.detect(payload) if f.type == "identity_match"]
    assert [(f.location, f.encoding) for f in matches] == [("$.a", "base64"), ("$.b", "plain")]


@pytest.mark.parametrize("text", ["xJane Roex", "Jane Roebuck", "MJane Roe"])
def test_plain_needles_need_word_boundaries(text):
    payload = make_payload({"a": text})
    assert not [f for f in ENGINE.detect(payload) if f.type == "identity_match"]


def test_no_identity_no_identity_matches():
    assert DetectionEngine().detect(make_payload({"email": EMAIL})) != []
    assert not [f for f in DetectionEngine().detect(make_payload({"email": EMAIL}))
                if f.type == "identity_match"]


def test_short_values_are_skipped_with_a_note():
    identity = identity_of({"username": ["jo", "jroe"], "custom": "abc"})
    assert [v for _, v in identity.values] == ["jroe"]
    assert len(identity.notes) == 2 and all("skipped" in n for n in identity.notes)
    assert all(len(form.needle) >= 4 for form in identity.forms)


def test_expansion_is_done_once_and_needles_are_unique():
    identity = identity_of({"email": EMAIL, "name": "Jane Roe"})
    needles = [form.needle for form in identity.forms]
    assert len(needles) == len(set(needles))
    index = IdentityIndex(identity)
    assert index.needles == len(needles)
    encodings = {form.encoding for form in identity.forms}
    for expected in ("plain", "case-folded", "reversed", "url", "hex", "base64",
                     "md5", "sha1", "sha224", "sha256", "sha512", "sha256(lower)>base64",
                     "url>base64", "base64>url", "sha1>base64url"):
        assert expected in encodings


def test_expand_hash_forms_are_marked_hashed():
    for needle, encoding, hashed, _ in expand("email", EMAIL):
        assert hashed == encoding.startswith(("md5", "sha"))
        assert needle


# --- identity files -----------------------------------------------------------


def test_load_identity_reads_every_field(tmp_path):
    path = tmp_path / "identity.yaml"
    path.write_text(
        "email: jane.roe@example.org\nname: Jane Roe\nphone: '+1 415 555 2671'\n"
        "username: jroe\ndevice_name: Jane's MacBook Pro\nhostname: janes-mbp.local\n"
        "ip: 203.0.113.42\nmac: a4:83:e7:12:34:56\nmeeting_ids: [2634 987 1234, 12345678]\n"
        "meeting_titles:\n  - Q3 budget review\ncustom: [employee-4711]\n"
    )
    identity = load_identity(path)
    assert {field for field, _ in identity.values} == set(IDENTITY_FIELDS)
    assert ("meeting_ids", "12345678") in identity.values


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("email: a@example.org\nemial: b@example.org\n", 2, "unknown key 'emial'"),
        ("email: a@example.org\nname:\n  first: Jane\n", 2, "got a mapping"),
        ("name: Jane Roe\nphone: true\n", 2, "a boolean"),
        ("name: Jane Roe\nphone: ~\n", 2, "null"),
        ("email: [a@example.org, [b]]\n", 1, "nested list"),
        ("email: a@example.org\nemail: b@example.org\n", 2, "duplicate key"),
        ("email: a@example.org\n  bad: [\n", 2, "invalid YAML"),
        ("- a@example.org\n", 1, "expected a mapping"),
        ("", 1, "empty"),
        ("email: []\n", 1, "empty list"),
        ("email: ''\n", 1, "empty value"),
    ],
)
def test_load_identity_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "id.yaml"
    path.write_text(text)
    with pytest.raises(IdentityError) as info:
        load_identity(path)
    assert str(info.value).startswith(f"{path}:{line}:")
    assert message in str(info.value)


def test_load_identity_gathers_every_error(tmp_path):
    path = tmp_path / "id.yaml"
    path.write_text("foo: 1\nname: Jane Roe\nbar: 2\nphone: true\n")
    with pytest.raises(IdentityError) as info:
        load_identity(path)
    assert [e.split(":")[1] for e in info.value.errors] == ["1", "3", "4"]


def test_load_identity_missing_file(tmp_path):
    with pytest.raises(IdentityError, match="cannot read"):
        load_identity(tmp_path / "nope.yaml")
