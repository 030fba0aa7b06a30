"""What a scan found and how long it took. A finding names a file, a place and a secret name
or pattern kind: never the matched value, never the text of the line, so a report can be
printed, logged, sent to a CI log or audited."""

from __future__ import annotations

from dataclasses import dataclass, field

SECRET = "secret"
PATTERN = "pattern"


@dataclass(frozen=True)
class Finding:
    """One occurrence. ``offset``/``length`` are byte positions in the file as scanned, kept
    for ``--fix`` (which re-checks them against the file before it rewrites anything)."""

    path: str
    line: int
    column: int  # 1-based, in characters
    kind: str  # SECRET (a vault value) or PATTERN (a well-known credential shape)
    label: str  # the secret's reference name (NAME or NAME#field) or the pattern's description
    pattern: str | None = None  # the pattern's id (``aws-access-key-id``), for PATTERN findings
    offset: int = field(default=0, compare=False)
    length: int = field(default=0, compare=False)

    @property
    def is_secret(self) -> bool:
        return self.kind == SECRET

    def describe(self) -> str:
        """The CLI's line: ``path:line: secret NAME`` or ``path:line: KIND (pattern)``."""
        if self.is_secret:
            return f"{self.path}:{self.line}: secret {self.label}"
        return f"{self.path}:{self.line}: {self.label} (pattern)"

    def to_json(self) -> dict:
        doc: dict = {"path": self.path, "line": self.line, "column": self.column, "kind": self.kind}
        if self.is_secret:
            doc["secret"] = self.label
        else:
            doc["pattern"] = self.pattern
            doc["description"] = self.label
        return doc


@dataclass
class ScanStats:
    """Counts for the summary line (and the audit record)."""

    files_scanned: int = 0
    bytes_scanned: int = 0
    skipped_ignored: int = 0  # .gitignore / --exclude (a folder counts once)
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_other: int = 0  # symlinks, sockets, fifos, devices, unreadable files
    values_searched: int = 0
    values_too_short: int = 0  # under MIN_VALUE_LENGTH characters: not searched
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return self.skipped_ignored + self.skipped_binary + self.skipped_large + self.skipped_other

    @property
    def files_per_second(self) -> float:
        return self.files_scanned / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        line = (f"scanned {self.files_scanned} files ({self.bytes_scanned / 1e6:.1f} MB) in {self.seconds:.2f} s, "
                f"{self.files_per_second:,.0f} files per second; skipped {self.skipped} "
                f"({self.skipped_ignored} ignored, {self.skipped_binary} binary, {self.skipped_large} large, "
                f"{self.skipped_other} other)")
        if self.values_too_short:
            line += (f"; {self.values_too_short} value{'s' if self.values_too_short != 1 else ''} shorter than "
                     f"8 characters not searched")
        return line

    def add_counts(self, other: ScanStats) -> None:
        """Add another part's file counts (a worker's, or the walk's)."""
        self.files_scanned += other.files_scanned
        self.bytes_scanned += other.bytes_scanned
        self.skipped_ignored += other.skipped_ignored
        self.skipped_binary += other.skipped_binary
        self.skipped_large += other.skipped_large
        self.skipped_other += other.skipped_other

    def to_json(self) -> dict:
        return {"files_scanned": self.files_scanned, "bytes_scanned": self.bytes_scanned,
                "skipped_ignored": self.skipped_ignored, "skipped_binary": self.skipped_binary,
                "skipped_large": self.skipped_large, "skipped_other": self.skipped_other,
                "values_searched": self.values_searched, "values_too_short": self.values_too_short,
                "seconds": round(self.seconds, 3), "files_per_second": round(self.files_per_second, 1)}


@dataclass
class ScanReport:
    findings: list[Finding] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)
    cancelled: bool = False

    @property
    def secret_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.is_secret]

    @property
    def pattern_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_secret]

    def audit_detail(self) -> str:
        """Counts only: no file names (they can say more than the owner wants in a log)."""
        return (f"{self.stats.files_scanned} files, {len(self.secret_findings)} vault values, "
                f"{len(self.pattern_findings)} patterns found")
