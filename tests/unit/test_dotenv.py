"""`parse_dotenv`: every form a trader's .env file may hold, every error, and two properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from its_desktop.core.dotenv import DotenvError, EnvEntry, guess_type, parse_dotenv
from its_desktop.core.errors import InvalidInput

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)


def parsed(text: str) -> dict[str, str]:
    return {entry.key: entry.value for entry in parse_dotenv(text)}


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text, "bot.env")
    return caught.value.problems


# -- accepted forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("line, key, value", [
    ("KEY=value", "KEY", "value"),
    ("key_lower=value", "key_lower", "value"),
    ("_UNDERSCORE=1", "_UNDERSCORE", "1"),
    ("DOTTED.KEY-NAME=v", "DOTTED.KEY-NAME", "v"),
    ("KEY = spaced out ", "KEY", "spaced out"),
    ("   INDENTED=v", "INDENTED", "v"),
    ("KEY=", "KEY", ""),
    ("KEY=a=b==c", "KEY", "a=b==c"),
    ("KEY=value # a comment", "KEY", "value"),
    ("KEY=value\t# a comment", "KEY", "value"),
    ("KEY=value#not-a-comment", "KEY", "value#not-a-comment"),
    ("URL=https://host/path#frag", "URL", "https://host/path#frag"),
    ("KEY=${OTHER}/x", "KEY", "${OTHER}/x"),
    ("KEY=clé 秘密 🔑", "KEY", "clé 秘密 🔑"),
    ("export KEY=value", "KEY", "value"),
    ("export\tKEY=value", "KEY", "value"),
    ("  export   KEY = value", "KEY", "value"),
    ("exported=value", "exported", "value"),
    ("export=value", "export", "value"),
    ("KEY=''", "KEY", ""),
    ("KEY='single # quoted'", "KEY", "single # quoted"),
    ("KEY='literal \\n \\\\ \"x\" ${HOME}'", "KEY", 'literal \\n \\\\ "x" ${HOME}'),
    ("KEY='  padded  '", "KEY", "  padded  "),
    ("KEY='v' # comment", "KEY", "v"),
    ('KEY=""', "KEY", ""),
    ('KEY="double # quoted"', "KEY", "double # quoted"),
    ('KEY="  padded  "', "KEY", "  padded  "),
    ('KEY="a\\nb\\tc\\rd"', "KEY", "a\nb\tc\rd"),
    ('KEY="say \\"hi\\""', "KEY", 'say "hi"'),
    ('KEY="back\\\\slash"', "KEY", "back\\slash"),
    ('KEY="\\$HOME and ${HOME}"', "KEY", "$HOME and ${HOME}"),
    ('KEY="unknown \\q escape"', "KEY", "unknown \\q escape"),
    ('KEY="it\'s"', "KEY", "it's"),
    ('KEY="v" # comment', "KEY", "v"),
    ('KEY="v"# comment', "KEY", "v"),
])
def test_accepted_line(line, key, value):
    [entry] = parse_dotenv(line)
    assert (entry.key, entry.value, entry.line) == (key, value, 1)


def test_blank_lines_and_comments_are_skipped_and_line_numbers_kept():
    text = "# header\n\n   \n\t# indented comment\nA=1\n#B=2\n  # C=3\nD=4\n"
    entries = parse_dotenv(text)
    assert [(e.key, e.value, e.line) for e in entries] == [("A", "1", 5), ("D", "4", 8)]


def test_an_empty_file_has_no_entries():
    assert parse_dotenv("") == []
    assert parse_dotenv("\n\n# only comments\n") == []


def test_an_unquoted_value_that_is_only_a_comment_is_empty():
    # The documented rule: an inline comment starts at " #". Here the value is empty; it must not
    # become the comment text (a placeholder line would otherwise import "# fill me in" as a key).
    assert parsed("API_KEY= # fill me in") == {"API_KEY": ""}
    assert parsed("API_KEY=\t# fill me in") == {"API_KEY": ""}


def test_duplicate_keys_last_one_wins():
    entries = parse_dotenv("TOKEN=first\nOTHER=x\nTOKEN=second\n")
    assert {e.key: e.value for e in entries} == {"TOKEN": "second", "OTHER": "x"}
    assert [e.key for e in entries].count("TOKEN") == 1
    assert next(e for e in entries if e.key == "TOKEN").line == 3


def test_multi_line_double_quoted_pem_key():
    text = f'# keys\nSIGNING_KEY="{PEM}"\nAFTER=yes\n'
    entries = parse_dotenv(text)
    assert [(e.key, e.value, e.line) for e in entries] == [("SIGNING_KEY", PEM, 2), ("AFTER", "yes", 6)]


def test_multi_line_value_keeps_every_character_of_its_first_line():
    # Trailing blanks on the line that opens the quote belong to the value like any others.
    assert parsed('NOTE="first line   \nsecond line"') == {"NOTE": "first line   \nsecond line"}
    assert parsed('NOTE="tab\t\nend"') == {"NOTE": "tab\t\nend"}


def test_multi_line_value_keeps_inner_indentation_and_blank_lines():
    assert parsed('NOTE="a\n\n   indented\nz"\n') == {"NOTE": "a\n\n   indented\nz"}


def test_crlf_files_parse_like_lf_files():
    lf = f'export A=1\nB="two words" # c\nC=\'x\'\nPEM="{PEM}"\n'
    crlf = lf.replace("\n", "\r\n")
    assert parse_dotenv(crlf) == parse_dotenv(lf)
    assert all("\r" not in value for value in parsed(crlf).values())
    assert parsed(crlf)["PEM"] == PEM


def test_values_are_hidden_from_repr():
    [entry] = parse_dotenv("API_KEY=hunter2-value")
    assert isinstance(entry, EnvEntry)
    assert "hunter2-value" not in repr(entry)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line, reason", [
    ("JUST_A_WORD", "expected KEY=VALUE"),
    ("export KEY", "expected KEY=VALUE"),
    ("export", "expected KEY=VALUE"),
    ("=value", "expected KEY=VALUE"),
    ("1KEY=value", "expected KEY=VALUE"),
    ("MY KEY=value", "expected KEY=VALUE"),
    ("KEY:value", "expected KEY=VALUE"),
    ("-KEY=value", "expected KEY=VALUE"),
    ("KEY='unterminated", "KEY: unterminated single quote"),
    ("KEY='multi\nline'", "KEY: unterminated single quote"),
    ('KEY="unterminated', "KEY: unterminated double quote"),
    ('KEY="ends in an escaped quote\\"', "KEY: unterminated double quote"),
    ('KEY="closed" trailing', "KEY: unexpected text after the closing quote"),
    ("KEY='closed'trailing", "KEY: unexpected text after the closing quote"),
    ('KEY="a""b"', "KEY: unexpected text after the closing quote"),
])
def test_malformed_line(line, reason):
    found = problems(line)
    assert found[0] == (1, reason)


def test_every_bad_line_is_reported_with_its_number():
    text = (
        "GOOD=1\n"          # 1
        "bad line\n"        # 2
        "# comment\n"       # 3
        "ALSO_GOOD='x'\n"   # 4
        "K='open\n"         # 5
        "\n"                # 6
        'Q="a" b\n'         # 7
        "LAST=ok\n"         # 8
    )
    assert problems(text) == [(2, "expected KEY=VALUE"), (5, "K: unterminated single quote"),
                              (7, "Q: unexpected text after the closing quote")]


def test_line_numbers_after_crlf_and_multi_line_values_are_right():
    text = f'A="{PEM}"\r\nB=1\r\nnonsense\r\n'  # the PEM takes lines 1 to 4
    assert problems(text) == [(6, "expected KEY=VALUE")]


def test_the_message_is_one_line_names_the_source_and_counts_the_rest():
    with pytest.raises(DotenvError) as caught:
        parse_dotenv("A=1\nbad\nworse one\nB='x\n", "bots/alpha/.env")
    message = str(caught.value)
    assert "\n" not in message
    assert message == "bots/alpha/.env:2: expected KEY=VALUE (and 2 more bad lines)"
    with pytest.raises(DotenvError) as caught:
        parse_dotenv("bad\n", "x.env")
    assert str(caught.value) == "x.env:1: expected KEY=VALUE"


def test_errors_never_quote_values():
    text = 'API_KEY="sk-live-51Hx9" leftover\nsk-live-secret-line\nTOKEN=\'tok-77a1\n'
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text, "x.env")
    message = str(caught.value) + repr(caught.value.problems)
    for secret in ("sk-live-51Hx9", "leftover", "sk-live-secret-line", "tok-77a1"):
        assert secret not in message


def test_dotenv_error_is_an_invalid_input():
    assert issubclass(DotenvError, InvalidInput)


def test_a_bad_line_imports_nothing():
    with pytest.raises(DotenvError):
        parse_dotenv("A=1\nB=2\nbroken\n")


@pytest.mark.parametrize("key, kind", [
    ("DB_PASSWORD", "password"), ("MYSQL_PWD", "password"), ("BINANCE_API_KEY", "api_key"),
    ("GITHUB_TOKEN", "api_key"), ("CLIENT_SECRET", "api_key"), ("DATABASE_URL", "database"),
    ("PG_DSN", "database"), ("LOG_LEVEL", "generic"),
])
def test_guess_type(key, kind):
    assert guess_type(key) == kind


# -- properties ------------------------------------------------------------------------------

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)


def quoted(value: str) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r"))
    return f'"{escaped}"'


@settings(max_examples=200, deadline=None)
@given(env=st.dictionaries(KEYS, VALUES, max_size=8), export=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]))
def test_double_quoted_escaped_values_round_trip(env, export, newline):
    prefix = "export " if export else ""
    text = newline.join(f"{prefix}{key}={quoted(value)}" for key, value in env.items()) + newline
    assert parsed(text) == env


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from([*"AB_=\"'#\\ \t\n\r$x{}é\x00", "export ", "\\n"]), max_size=60).map("".join)
       | st.text(max_size=200))
def test_any_text_parses_or_raises_dotenv_error_only(text):
    try:
        entries = parse_dotenv(text)
    except DotenvError as exc:
        assert exc.problems and "\n" not in str(exc)
        lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1  # a lone CR ends a line too
        assert all(1 <= number <= lines for number, _ in exc.problems)
        assert [n for n, _ in exc.problems] == sorted({n for n, _ in exc.problems})
        return
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", e.key) for e in entries)
    assert len({e.key for e in entries}) == len(entries)
