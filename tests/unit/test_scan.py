"""The leak scan: .gitignore rules, what is skipped, where values and patterns are found, that
no finding, repr or error holds a value or a line's text, and --fix's atomic rewrite."""

from __future__ import annotations

import json
import os
import random
import stat
import string
from pathlib import Path

import pytest

from its_desktop.core.secrets import Secret
from its_desktop.scan import fix as fixmod
from its_desktop.scan.fix import fix_findings
from its_desktop.scan.matcher import Matcher, Source, secret_sources
from its_desktop.scan.report import ScanStats
from its_desktop.scan.scanner import ScanOptions, find_in, scan
from its_desktop.scan.walker import WalkOptions, parse_gitignore, walk

KEY = "Zx9Qw7Er5Ty3Ui1OpLk2"  # letters and digits only
PASSWORD = "p@ss:w0rd!Tr4d3r"  # punctuation inside
PASSPHRASE = "mild tea on a wet day"  # only short words: searched across whitespace


def matcher(*pairs: tuple[str, str]) -> Matcher:
    return Matcher(Source(label, value) for label, value in pairs)


def scanned(root: Path, options: WalkOptions = WalkOptions()) -> tuple[list[str], ScanStats]:
    stats = ScanStats()
    names = sorted(Path(p).relative_to(root).as_posix() for p, _ in walk([root], options, stats))
    return names, stats


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# -- .gitignore -------------------------------------------------------------------------------


def test_gitignore_negation_dir_only_anchored_and_nested(tmp_path):
    write(tmp_path / ".gitignore", "*.log\n!keep.log\nbuild/\n/top.txt\ndocs/**/draft.md\n# comment\n\\#hash\n")
    for name in ("a.log", "keep.log", "top.txt", "sub/top.txt", "build/x.py", "sub/build/y.py", "docs/a/b/draft.md",
                 "docs/draft.md", "#hash", "ok.py", "sub/build.txt"):
        write(tmp_path / name, "x\n")
    write(tmp_path / "sub/.gitignore", "!a.log\n*.py\n")  # deeper file wins
    write(tmp_path / "sub/a.log", "x\n")
    write(tmp_path / "sub/b.py", "x\n")
    write(tmp_path / "nested/deep/.gitignore", "secret.env\n")
    write(tmp_path / "nested/deep/secret.env", "x\n")
    write(tmp_path / "nested/other/secret.env", "x\n")
    names, stats = scanned(tmp_path)
    assert names == [".gitignore", "keep.log", "nested/deep/.gitignore", "nested/other/secret.env", "ok.py",
                     "sub/.gitignore", "sub/a.log", "sub/build.txt", "sub/top.txt"]
    assert stats.skipped_ignored >= 7
    everything, _ = scanned(tmp_path, WalkOptions(gitignore=False))
    assert "a.log" in everything and "build/x.py" in everything


def test_gitignore_translation_edge_cases():
    rules = parse_gitignore("a/**/b\n**/c\nd/**\n[!x]y?\n\\!bang\ntrailing\\ \n")
    assert [r.anchored for r in rules] == [True, True, True, False, False, False]
    assert rules[0].regex.fullmatch("a/b") and rules[0].regex.fullmatch("a/x/y/b")
    assert rules[1].regex.fullmatch("c") and rules[1].regex.fullmatch("p/q/c")
    assert rules[2].regex.fullmatch("d/e/f") and not rules[2].regex.fullmatch("d")
    assert rules[3].regex.fullmatch("zy1") and not rules[3].regex.fullmatch("xy1")
    assert rules[4].regex.fullmatch("!bang") and not rules[4].negated
    assert rules[5].regex.fullmatch("trailing ")


def test_an_ignored_folder_cannot_be_reincluded_and_excludes_win(tmp_path):
    write(tmp_path / ".gitignore", "out/\n!out/keep.txt\n")
    write(tmp_path / "out/keep.txt", "x\n")
    write(tmp_path / "a/b.txt", "x\n")
    write(tmp_path / "a/c.txt", "x\n")
    names, _ = scanned(tmp_path, WalkOptions(excludes=("b.txt",)))
    assert names == [".gitignore", "a/c.txt"]


def test_the_repository_gitignore_applies_to_a_scanned_sub_folder(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path / ".gitignore", "*.env\nsub/generated/\n")
    write(tmp_path / "sub/app.env", "x\n")
    write(tmp_path / "sub/app.py", "x\n")
    write(tmp_path / "sub/generated/g.py", "x\n")
    write(tmp_path / ".git/config", "x\n")
    names, _ = scanned(tmp_path / "sub")
    assert names == ["app.py"]
    assert ".git/config" not in scanned(tmp_path)[0]


# -- skipped files ----------------------------------------------------------------------------


def test_binaries_large_files_and_symlinks_are_skipped(tmp_path):
    write(tmp_path / "bin.dat", b"abc\x00" + KEY.encode())
    write(tmp_path / "late-nul.txt", b"x" * 9000 + b"\x00")  # NUL after the first 8 KiB: text
    write(tmp_path / "big.txt", "y" * 2048)
    write(tmp_path / "small.txt", "z")
    (tmp_path / "link.txt").symlink_to(tmp_path / "small.txt")
    (tmp_path / "linkdir").symlink_to(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    names, stats = scanned(tmp_path, WalkOptions(max_size=1024))
    assert names == ["small.txt"]
    assert (stats.skipped_binary, stats.skipped_large, stats.skipped_other) == (1, 2, 3)
    names, stats = scanned(tmp_path)
    assert names == ["big.txt", "late-nul.txt", "small.txt"]
    assert stats.skipped_binary == 1


# -- finding values ---------------------------------------------------------------------------


def test_values_are_found_at_their_line_and_column(tmp_path):
    m = matcher(("brokers/ibkr/api_key", KEY), ("db/main", PASSWORD), ("notes/phrase", PASSPHRASE))
    text = (f"first line\nurl = https://u:{PASSWORD}@db.example:5432/x  # {KEY}\n"
            f'{{"a": 1, "key": "{KEY}"}}\nAPI_KEY={KEY}\nsay {PASSPHRASE}.\n')
    found = find_in("f.txt", text.encode(), m)
    assert [(f.line, f.column, f.label) for f in found] == [
        (2, 17, "db/main"), (2, 55, "brokers/ibkr/api_key"), (3, 18, "brokers/ibkr/api_key"),
        (4, 9, "brokers/ibkr/api_key"), (5, 5, "notes/phrase")]
    unicode_line = f"prix: 10 € {KEY}\n".encode()
    assert [(f.line, f.column) for f in find_in("u.txt", unicode_line, m)] == [(1, 12)]


def test_a_value_in_a_json_document_with_escapes_is_found():
    value = 'ab"cd\\ef-ghijk'
    m = matcher(("odd/value", value))
    document = json.dumps({"nested": {"secret": value}}).encode()
    assert [(f.label, f.column) for f in find_in("d.json", document, m)] == [("odd/value", 24)]


def test_a_shared_prefix_alone_is_not_a_finding():
    m = matcher(("k", KEY), ("p", PASSWORD))
    for near in (KEY[:-1], KEY[:8], KEY[:-1] + "X", PASSWORD[:-2], PASSWORD.replace("!", "?")):
        assert find_in("n.txt", f"x = {near}\n".encode(), m) == []


def test_values_glued_to_letters_are_missed_unless_they_hold_punctuation():
    """The documented limit: an alphanumeric value right after a letter or digit."""
    m = matcher(("k", KEY), ("p", PASSWORD))
    assert find_in("g.txt", f"0x{KEY}\n".encode(), m) == []
    assert len(find_in("g.txt", f"0x{PASSWORD}\n".encode(), m)) == 1


def test_short_values_are_not_searched_and_fields_that_look_secret_are():
    secret = Secret(name="db/main", value="short", fields={"password": PASSWORD, "host": "db1.example.com"})
    m = Matcher(secret_sources([secret]))
    assert (m.values, m.too_short) == (1, 1)
    text = f"host=db1.example.com\npw={PASSWORD}\n".encode()
    assert [f.label for f in find_in("x", text, m)] == ["db/main#password"]


def test_seen_tokens_do_not_hide_a_later_leak(tmp_path):
    m = matcher(("k", KEY))
    write(tmp_path / "a.txt", "common words here\n" * 50)
    write(tmp_path / "b.txt", "common words here\n" * 50 + f"KEY={KEY}\n")
    write(tmp_path / "c.txt", f"KEY={KEY}\n")
    report = scan([tmp_path], m)
    assert [(Path(f.path).name, f.line) for f in report.findings] == [("b.txt", 51), ("c.txt", 1)]


# -- patterns ---------------------------------------------------------------------------------


def test_well_known_credentials_are_found_by_kind():
    aws_id = "AKIA" + "Q" * 16
    lines = [f"aws_access_key_id = {aws_id}", "aws_secret_access_key = " + "a/B+" * 10,
             "-----BEGIN OPENSSH PRIVATE KEY-----", "token: ghp_" + "a1" * 18,
             "SLACK=xoxb-123456789-abcdefghijklmnop", "stripe sk_live_" + "x9" * 12,
             "google AIza" + "b" * 35, "not AKIA" + "Q" * 15, "no ghp_short"]
    found = find_in("c.txt", "\n".join(lines).encode(), None)
    assert [(f.line, f.pattern) for f in found] == [
        (1, "aws-access-key-id"), (2, "aws-secret-access-key"), (3, "private-key"), (4, "github-token"),
        (5, "slack-token"), (6, "stripe-secret-key"), (7, "google-api-key")]
    assert found[0].describe() == "c.txt:1: AWS access key id (pattern)"
    assert find_in("c.txt", b"\n".join(x.encode() for x in lines), None, patterns=False) == []


def test_a_vault_value_shaped_like_a_pattern_is_reported_once_as_the_secret():
    aws_id = "AKIA" + "R" * 16
    found = find_in("c.txt", f"id={aws_id}\n".encode(), matcher(("aws/id", aws_id)))
    assert [(f.kind, f.label) for f in found] == [("secret", "aws/id")]


# -- hygiene ----------------------------------------------------------------------------------


def test_no_value_or_line_text_in_findings_reprs_json_or_errors(tmp_path):
    m = matcher(("brokers/ibkr/api_key", KEY), ("db/main", PASSWORD))
    line_text = f"the context words {KEY} around it"
    write(tmp_path / "a.txt", line_text + f"\nAKIA{'Z' * 16}\npw={PASSWORD}\n")
    report = scan([tmp_path], m)
    assert len(report.findings) == 3
    dumps = [repr(m), repr(report), report.stats.summary(), report.audit_detail(),
             json.dumps([f.to_json() for f in report.findings])] + [f.describe() for f in report.findings]
    for text in dumps:
        for forbidden in (KEY, PASSWORD, KEY[:8], PASSWORD[:8], "context words", "AKIA" + "Z" * 16):
            assert forbidden not in text
    with pytest.raises(FileNotFoundError) as error:
        scan([tmp_path / "missing"], m)
    assert KEY not in str(error.value)


# -- fix --------------------------------------------------------------------------------------


def test_fix_rewrites_atomically_and_keeps_the_mode(tmp_path, monkeypatch):
    m = matcher(("brokers/ibkr/api_key", KEY), ("db/main#password", PASSWORD))
    env = write(tmp_path / "bot/.env", f'# bot\nexport API_KEY="{KEY}"  # prod\nDB_PASS={PASSWORD}\nOTHER=1\n')
    env.chmod(0o640)
    config = write(tmp_path / "bot/config.json", f'{{"key": "{KEY}", "aws": "AKIA{"Y" * 16}"}}\n')
    config.chmod(0o600)
    inode = env.stat().st_ino
    report = scan([tmp_path], m)
    assert len(report.secret_findings) == 3 and len(report.pattern_findings) == 1

    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(fixmod.os, "replace", lambda a, b: (replaced.append((a, b)), real_replace(a, b)))
    result = fix_findings(report.findings, m)
    assert (result.replaced, result.files, result.stale, result.failed) == (3, 2, 0, [])
    assert env.read_text() == ("# bot\nexport API_KEY=its://brokers/ibkr/api_key  # prod\n"
                               "DB_PASS=its://db/main#password\nOTHER=1\n")
    assert config.read_text() == f'{{"key": "its://brokers/ibkr/api_key", "aws": "AKIA{"Y" * 16}"}}\n'
    assert stat.S_IMODE(env.stat().st_mode) == 0o640 and stat.S_IMODE(config.stat().st_mode) == 0o600
    assert env.stat().st_ino != inode  # a new file renamed over the old one
    assert len(replaced) == 2 and all(Path(a).parent == Path(b).parent for a, b in replaced)
    assert sorted(p.name for p in (tmp_path / "bot").iterdir()) == [".env", "config.json"]  # no temp left
    after = scan([tmp_path], m)
    assert after.secret_findings == [] and len(after.pattern_findings) == 1


def test_fix_leaves_a_file_changed_since_the_scan_alone(tmp_path, monkeypatch):
    m = matcher(("k", KEY))
    target = write(tmp_path / "a.txt", f"one {KEY}\n")
    report = scan([tmp_path], m)
    write(target, f"zero\none {KEY}\n")  # moved by an edit
    result = fix_findings(report.findings, m)
    assert (result.replaced, result.stale) == (0, 1)
    assert target.read_text() == f"zero\none {KEY}\n"

    report = scan([tmp_path], m)

    def crash(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fixmod.os, "replace", crash)
    result = fix_findings(report.findings, m)
    assert result.failed == [str(target)]
    assert target.read_text() == f"zero\none {KEY}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


# -- worker processes -------------------------------------------------------------------------


def _tree_with_leaks(root: Path, files: int = 700) -> Matcher:
    rng = random.Random(11)
    values = ["".join(rng.choices(string.ascii_letters + string.digits, k=24)) for _ in range(20)]
    for i in range(files):
        lines = [f"line {n} of file {i}" for n in range(rng.randint(1, 30))]
        if i % 37 == 0:
            lines.insert(rng.randrange(len(lines) + 1), f"KEY={values[i % 20]}")
        if i % 101 == 0:
            lines.append("AKIAIOSFODNN7EXAMPLE")
        write(root / f"p{i % 7}" / f"d{i // 60}" / f"f{i}.txt", "\n".join(lines))
    write(root / "p0" / "blob.bin", b"\0" * 100)
    write(root / "p1" / "big.txt", "x" * (2 * 1024 * 1024))
    write(root / "p2" / ".gitignore", "d0/\n")
    return matcher(*((f"s/{i}", v) for i, v in enumerate(values)))


def test_worker_processes_give_the_same_report_as_one_process(tmp_path):
    m = _tree_with_leaks(tmp_path)
    one = scan([tmp_path], m, ScanOptions())
    two = scan([tmp_path], m, ScanOptions(), workers=2)
    assert len(one.secret_findings) > 10 and one.pattern_findings
    assert two.findings == one.findings  # the same findings, in the same (folder) order
    counts = lambda stats: {k: v for k, v in stats.to_json().items() if k not in ("seconds", "files_per_second")}  # noqa: E731
    assert counts(two.stats) == counts(one.stats)
    assert one.stats.skipped_binary == 1 and one.stats.skipped_large == 1 and one.stats.skipped_ignored == 1


def test_worker_processes_report_progress_and_stop_when_cancelled(tmp_path):
    import threading

    m = _tree_with_leaks(tmp_path, files=2500)
    seen: list[int] = []
    report = scan([tmp_path], m, ScanOptions(), progress=seen.append, workers=2)
    assert seen and seen == sorted(seen) and seen[-1] <= report.stats.files_scanned == 2500 - 9 + 1  # p2/d0 ignored, + .gitignore
    cancel = threading.Event()
    cancel.set()
    stopped = scan([tmp_path], m, ScanOptions(), cancel=cancel, workers=2)
    assert stopped.cancelled and stopped.stats.files_scanned == 0


# -- speed ------------------------------------------------------------------------------------


def test_files_scanned_per_second(tmp_path, capsys):
    """The figure `make test` shows: 2,000 small files, 200 secrets."""
    rng = random.Random(5)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10))) for _ in range(3000)]
    values = ["".join(rng.choices(string.ascii_letters + string.digits + "-_", k=32)) for _ in range(200)]
    m = matcher(*((f"s/{i}", v) for i, v in enumerate(values)))
    for i in range(2000):
        lines = [" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(rng.randint(5, 40))]
        if i % 400 == 0:
            lines.append(f"TOKEN={values[i % 200]}")
        write(tmp_path / f"d{i // 50}" / f"f{i}.txt", "\n".join(lines))
    report = scan([tmp_path], m, ScanOptions())
    rate = report.stats.files_per_second
    assert len(report.secret_findings) == 5
    assert rate > 500, f"files scanned per second: {rate:,.0f}"
    workers = max(2, os.cpu_count() or 1)
    parallel = scan([tmp_path], m, ScanOptions(), workers=workers)
    assert parallel.findings == report.findings
    with capsys.disabled():  # past pytest's capture, so `make test` shows the figure
        print(f"\nleak scan: {rate:,.0f} files scanned per second in one process, "
              f"{parallel.stats.files_per_second:,.0f} with {workers} workers "
              f"({report.stats.files_scanned} files, 200 secrets)")
