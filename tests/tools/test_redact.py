"""Redactor: each secret pattern, secret fields by name in text and in nested JSON, the
configured names, and what must stay as it is."""

from __future__ import annotations

import json
import time

import pytest

from automatos.store.keys import SECRET_PREFIX
from automatos.tools import REDACTED, Redactor
from automatos.tools.redact import _SECRET_PREFIX

R = REDACTED
OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8t"
ANTHROPIC = "sk-ant-api03-" + "x1Y2z3W4v5U6t7S8r9Q0p1O2n3M4"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7\nabc+/def==\n-----END RSA PRIVATE KEY-----"
)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"key {OPENAI} here", f"key {R} here"),
        (f"x={ANTHROPIC}", f"x={R}"),
        ("id AKIAIOSFODNN7EXAMPLE used", f"id {R} used"),
        ("clone with ghp_" + "a" * 36, f"clone with {R}"),
        ("github_pat_" + "11ABCDEFG0" * 4, R),
        ("slack xoxb-1234567890-abcdefghij", f"slack {R}"),
        ("google AIza" + "S" * 35, f"google {R}"),
        ("stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", f"stripe {R}"),
        ("hf hf_" + "A" * 34, f"hf {R}"),
        (f"engine {SECRET_PREFIX}" + "Zq" * 21 + "9", f"engine {R}"),
        ("Authorization: Bearer abcdefghijklmnop1234.xyz", f"Authorization: {R}"),
        ("curl -H 'bearer abcdefghijklmnopqrstuvwx'", f"curl -H 'bearer {R}'"),
        (f"token {JWT} end", f"token {R} end"),
        (f"before\n{PEM}\nafter", f"before\n{R}\nafter"),
        ("cut -----BEGIN PRIVATE KEY-----\nMIIE never ends", f"cut {R}"),
        ("postgresql://app:hunter2@db:5432/x", f"postgresql://app:{R}@db:5432/x"),
        ("redis://:pass@127.0.0.1:6379", f"redis://:{R}@127.0.0.1:6379"),
    ],
)
def test_each_secret_pattern_is_redacted(text: str, redacted: str) -> None:
    assert Redactor().text(text) == redacted


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("password=hunter2", f"password={R}"),
        ("DB_PASSWORD = hunter2 and more", f"DB_PASSWORD = {R} and more"),
        ("login?user=ada&passwd=x1&next=/", f"login?user=ada&passwd={R}&next=/"),
        ("api_key: abc123", f"api_key: {R}"),
        ("X-Api-Key:abc123", f"X-Api-Key:{R}"),
        ("apiKey=abc123", f"apiKey={R}"),
        ("GITHUB_TOKEN=abc123", f"GITHUB_TOKEN={R}"),
        ("client_secret='a b c'", f"client_secret='{R}'"),
        (
            '{"password": "correct horse battery", "user": "ada"}',
            f'{{"password": "{R}", "user": "ada"}}',
        ),
        ('{"secret": "a \\" quote"}', f'{{"secret": "{R}"}}'),
        ("authorization: Basic YWxhZGRpbjpvcGVu", f"authorization: {R}"),
    ],
)
def test_values_of_secret_names_are_redacted_in_text(text: str, redacted: str) -> None:
    assert Redactor().text(text) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=512 and tokens_in: 30",
        "the author: Ada Lovelace",
        "a task-force-management-system-with-long-name",
        "xAKIAIOSFODNN7EXAMPLE and AKIAIOSFODNN7EXAMPLEX",
        "axoxb-1234567890-abcdefghij",
        "highp_" + "a" * 36,
        "theyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
        "Basic understanding of the bearer of bad news",
        "sk-short",
        "AKIA is a prefix",
        "just text",
        "",
        "password=[REDACTED] already",
    ],
)
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert Redactor().text(text) == text


def test_text_whose_lower_case_is_longer_is_redacted_too() -> None:
    # "İ" lowers to two characters: the names are then matched in the text as it is
    text = "İstanbul office: PASSWORD=hunter2, Bearer abcdefghijklmnopqrstu"
    assert len(text.lower()) != len(text)
    assert Redactor().text(text) == f"İstanbul office: PASSWORD={R}, Bearer {R}"


def test_redacting_twice_changes_nothing_more() -> None:
    redactor = Redactor()
    text = f'password=x1 {{"token": "abc"}} Bearer {"a" * 20} {OPENAI}'
    once = redactor.text(text)
    assert redactor.text(once) == once
    assert "x1" not in once and "abc" not in once and OPENAI not in once


def test_secret_fields_of_nested_json_are_redacted_whole() -> None:
    value = {
        "query": "weather",
        "api_key": "k-123",
        "nested": [
            {"Password": 1234, "name": "ada"},
            {"headers": {"Authorization": "Basic abc", "Accept": "text/plain"}},
            {"credentials": {"user": "ada", "pin": "0000"}},
        ],
        "note": f"use {OPENAI}",
        "token": None,
        "secret": False,
        "max_tokens": 100,
        "tokens": {"in": 3, "out": 4},
    }
    original = json.dumps(value)
    assert Redactor().value(value) == {
        "query": "weather",
        "api_key": R,
        "nested": [
            {"Password": R, "name": "ada"},
            {"headers": {"Authorization": R, "Accept": "text/plain"}},
            {"credentials": R},
        ],
        "note": f"use {R}",
        "token": None,
        "secret": False,
        "max_tokens": 100,
        "tokens": {"in": 3, "out": 4},
    }
    assert json.dumps(value) == original  # the value given is not changed


def test_tuples_and_scalars_pass_through() -> None:
    redactor = Redactor()
    assert redactor.value((1, "password=x1", 2.5, None)) == [1, f"password={R}", 2.5, None]
    assert redactor.value(7) == 7


def test_configured_names_are_redacted_however_they_are_written() -> None:
    redactor = Redactor(["customer_ssn", "pin"])
    assert redactor.names[-2:] == ("customer_ssn", "pin")
    assert redactor.value({"customerSsn": "123-45-6789", "old_customer_ssn": 1, "pin": "0000"}) == {
        "customerSsn": R,
        "old_customer_ssn": R,
        "pin": R,
    }
    assert redactor.text("CUSTOMER-SSN: 123-45-6789; spinning=yes") == (
        f"CUSTOMER-SSN: {R}; spinning=yes"
    )
    assert redactor.value({"pinned": True, "spin": "x"}) == {"pinned": True, "spin": "x"}
    assert Redactor().value({"customer_ssn": "1"}) == {"customer_ssn": "1"}


def test_deep_nesting_is_redacted_rather_than_walked() -> None:
    value: object = "password=x"
    for _ in range(200):
        value = [value]
    redacted = Redactor().value(value)
    depth = 0
    while isinstance(redacted, list):
        redacted = redacted[0]
        depth += 1
    assert redacted == R and depth == 64


def test_the_engine_key_prefix_is_the_stores() -> None:
    assert _SECRET_PREFIX == SECRET_PREFIX


def test_long_text_without_secrets_is_redacted_in_linear_time() -> None:
    redactor = Redactor()
    # runs that a backtracking pattern would retry from every position
    texts = [
        "a" * 1_000_000,
        "token" * 200_000,
        "password" + " " * 500_000 + "x",
        "://" + "u" * 300_000,
        "eyJ" + "a" * 500_000,
        '"password": "' + "x" * 500_000,
    ]
    began = time.perf_counter()
    for text in texts:
        redactor.text(text)
    assert time.perf_counter() - began < 5
