"""`generate_password`: lengths, character classes, alphabet and randomness."""

from __future__ import annotations

import string
from collections import Counter

import pytest

from its_desktop.core.dotenv import parse_dotenv
from its_desktop.core.errors import InvalidInput
from its_desktop.core.passwords import DEFAULT_LENGTH, MAX_LENGTH, MIN_LENGTH, SYMBOLS, generate_password

CLASSES = {"lower": string.ascii_lowercase, "upper": string.ascii_uppercase, "digit": string.digits,
           "symbol": SYMBOLS}
ALPHABET = "".join(CLASSES.values())


def test_bounds_are_sensible():
    assert MIN_LENGTH >= 8
    assert MIN_LENGTH <= DEFAULT_LENGTH <= MAX_LENGTH
    assert DEFAULT_LENGTH >= 20


def test_default_length():
    assert len(generate_password()) == DEFAULT_LENGTH


@pytest.mark.parametrize("length", [MIN_LENGTH, MIN_LENGTH + 1, 16, 40, 64, MAX_LENGTH])
def test_exact_length(length):
    assert len(generate_password(length)) == length
    assert len(generate_password(length, symbols=False)) == length


@pytest.mark.parametrize("length", [-1, 0, 1, MIN_LENGTH - 1, MAX_LENGTH + 1, 10**9])
def test_out_of_range_lengths_are_refused(length):
    with pytest.raises(InvalidInput):
        generate_password(length)


def test_every_class_is_present_even_at_the_minimum_length():
    for _ in range(300):
        password = generate_password(MIN_LENGTH)
        for name, chars in CLASSES.items():
            assert any(ch in chars for ch in password), f"no {name} character in a generated password"


def test_without_symbols_only_letters_and_digits_and_all_three_classes():
    for _ in range(300):
        password = generate_password(MIN_LENGTH, symbols=False)
        assert password.isascii() and password.isalnum()
        assert any(ch.islower() for ch in password)
        assert any(ch.isupper() for ch in password)
        assert any(ch.isdigit() for ch in password)


def test_only_characters_from_the_alphabet():
    password = generate_password(MAX_LENGTH)
    assert set(password) <= set(ALPHABET)


def test_symbols_need_no_quoting_in_a_dotenv_file():
    assert not set(SYMBOLS) & set(" \t\n\"'`\\$")
    for _ in range(100):
        password = generate_password(64)
        assert [(e.key, e.value) for e in parse_dotenv(f"KEY={password}")] == [("KEY", password)]


def test_no_repeats_across_many_draws():
    draws = [generate_password(MIN_LENGTH) for _ in range(5000)]
    assert len(set(draws)) == len(draws)
    draws = [generate_password(MIN_LENGTH, symbols=False) for _ in range(5000)]
    assert len(set(draws)) == len(draws)


def test_the_whole_alphabet_is_used_evenly():
    counts = Counter("".join(generate_password(64) for _ in range(400)))  # 25,600 characters
    assert set(counts) == set(ALPHABET)
    expected = 400 * 64 / len(ALPHABET)  # about 330 each
    assert all(0.6 * expected < count < 1.4 * expected for count in counts.values()), counts


def test_no_position_is_biased_to_a_class():
    # A generator that put, say, the required upper-case letter always first would show here.
    first, last = Counter(), Counter()
    for _ in range(400):
        password = generate_password(MIN_LENGTH)
        first.update(name for name, chars in CLASSES.items() if password[0] in chars)
        last.update(name for name, chars in CLASSES.items() if password[-1] in chars)
    assert set(first) == set(CLASSES) and set(last) == set(CLASSES)
