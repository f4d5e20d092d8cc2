"""Settings, ids, keyed hashes and key checks: the small parts the API rests on."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.api.auth import key_owner
from chalicelib.api.ids import UlidFactory, is_ulid, ulid
from chalicelib.api.privacy import Pseudonymiser
from chalicelib.settings import DEV_PSEUDONYM_KEY, Settings, SettingsError, parse_api_keys
from tests.support.api import Clock, Entropy


def test_settings_defaults_and_overrides() -> None:
    default = Settings.from_env({})
    assert (default.stage, default.table_name, default.region) == ("dev", "pss-decisions-dev",
                                                                   "eu-west-2")
    assert default.dynamodb_endpoint is None and default.pseudonym_key == DEV_PSEUDONYM_KEY.encode()
    custom = Settings.from_env({"PSS_STAGE": "prod", "PSS_PSEUDONYM_KEY": "s",
                                "PSS_DYNAMODB_ENDPOINT": "http://127.0.0.1:1",
                                "PSS_PUBLIC_BASE_URL": "https://pss.example.nhs.uk/api/",
                                "PSS_AUDIT_CLIENTS": "audit-1, ,audit-2"})
    assert custom.table_name == "pss-decisions-prod"
    assert custom.public_base_url == "https://pss.example.nhs.uk/api"
    assert custom.audit_clients == {"audit-1", "audit-2"}
    assert Settings.from_env({"PSS_API_KEYS": "a:1, b:2"}).keys_by_client() == {"a": "1",
                                                                               "b": "2"}


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Settings.from_env({"PSS_API_KEYS": "a:topsecret", "PSS_PSEUDONYM_KEY": "pk1"}))
    assert "topsecret" not in text and "pk1" not in text


PROD = {"PSS_STAGE": "prod", "PSS_PSEUDONYM_KEY": "s",
        "PSS_PUBLIC_BASE_URL": "https://pss.example.nhs.uk"}


@pytest.mark.parametrize("env", [
    {"PSS_STAGE": "test"}, {"PSS_STAGE": "prod"},
    {"PSS_API_KEYS": "nocolon"}, {"PSS_API_KEYS": "a:"},
    {**PROD, "PSS_API_KEYS": "a:nocolon1"},  # API keys are for the dev stage only
    {**PROD, "PSS_PUBLIC_BASE_URL": ""}, {**PROD, "PSS_PUBLIC_BASE_URL": "http://pss.example"},
    {"PSS_PUBLIC_BASE_URL": "ftp://x"},
    {"PSS_CDS_CLIENTS": "nocolon"}, {"PSS_CDS_CLIENTS": "{}"},
    {"PSS_CDS_CLIENTS": '[{"client_id": "a", "iss": "x"}]'},  # no keys
    {"PSS_CDS_CLIENTS": '[{"client_id": "a", "iss": "x", "jwks_url": "http://k"}]'},
    {"PSS_CDS_CLIENTS": '[{"client_id": "a", "iss": "x", "jwks": {"keys": []},'
                        ' "fhir_servers": ["http://fhir.example"]}]'},  # https only
    {"PSS_CDS_CLIENTS": '[{"client_id": "a", "iss": "x", "jwks": {"keys": []}},'
                        ' {"client_id": "b", "iss": "x", "jwks": {"keys": []}}]'},
    {"PSS_OAUTH_ISSUERS": '[{"iss": "x", "jwks": {"keys": []}}]'},  # no audience
    # Two issuers: each must list the clients it speaks for, and no client twice.
    {"PSS_OAUTH_ISSUERS": '[{"iss": "x", "jwks": {"keys": []}, "audience": "a"},'
                          ' {"iss": "y", "jwks": {"keys": []}, "audience": "a"}]'},
    {"PSS_OAUTH_ISSUERS": '[{"iss": "x", "jwks": {"keys": []}, "audience": "a",'
                          ' "clients": ["c"]}, {"iss": "y", "jwks": {"keys": []},'
                          ' "audience": "a", "clients": ["c"]}]'},
    {"PSS_OAUTH_ISSUERS": '[{"iss": "x", "jwks": {"keys": []}, "audience": "a",'
                          ' "clients": ["epr#a"]}]'},
    {"PSS_CDS_CLIENTS": '[{"client_id": "c", "iss": "e", "jwks": {"keys": []}}]',
     "PSS_OAUTH_ISSUERS": '[{"iss": "x", "jwks": {"keys": []}, "audience": "a",'
                          ' "clients": ["c"]}]'},  # an EHR's client id
])
def test_bad_settings_are_rejected(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert "nocolon" not in str(caught.value)


def test_parse_api_keys_skips_blanks() -> None:
    assert parse_api_keys(" a:1 ,, b:x:y ") == (("a", "1"), ("b", "x:y"))


def test_key_owner() -> None:
    keys = {"epr": "k1", "lab": "k2"}
    assert key_owner("k2", keys) == "lab"
    for token in ("", "k3", "k1 "):
        assert key_owner(token, keys) is None
    assert key_owner("", {"empty": ""}) is None


def test_ulids_sort_by_time_and_are_distinct() -> None:
    clock = Clock()
    make = UlidFactory(clock, Entropy())
    first, second = make(), make()
    clock.advance(milliseconds=1)
    third = make()
    assert first != second and all(is_ulid(i) for i in (first, second, third))
    assert first[:10] == second[:10] and third > second
    assert ulid(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), bytes(10)) == "0" * 26
    with pytest.raises(ValueError):
        ulid(clock(), b"short")


def test_keyed_hashes_depend_on_the_key_not_on_key_order() -> None:
    one, two = Pseudonymiser(b"one"), Pseudonymiser(b"two")
    assert one.nhs_number("9434765919") != two.nhs_number("9434765919")
    assert one.digest({"a": 1, "b": [1, 2]}) == one.digest({"b": [1, 2], "a": 1})
    assert one.digest({"a": 1}) != one.digest({"a": 2})


def test_api_key_client_ids_may_not_hold_a_key_separator() -> None:
    assert parse_api_keys("epr-a.1:k") == (("epr-a.1", "k"),)
    with pytest.raises(SettingsError, match="entry 2"):
        parse_api_keys("epr:k1,epr#b:k2")
