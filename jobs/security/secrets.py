"""Committed secrets, found by detect-secrets in-process: every plugin with its default settings
(including the Base64 and hex entropy plugins at their default limits) and its default filters.

Only the type, the place and detect-secrets' SHA-1 of the value leave this module; the value itself,
any part of it and the line it is on are dropped as soon as a match is found. detect-secrets' own
`# pragma: allowlist secret` comment is honoured, as are its filters (lock files, templated values,
UUIDs, sequential strings...).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.scan import scan_file
from detect_secrets.settings import configure_settings_from_baseline, get_settings

from jobs.security.config import Severity
from jobs.security.issues import Issue

SECRET_SEVERITY: Severity = "high"
GENERIC_TYPES = frozenset({"Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String"})

_configure_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class SecretHit:
    type: str  # detect-secrets' secret type, e.g. "AWS Access Key"
    plugin: str  # the plugin that found it, e.g. "AWSKeyDetector"
    path: str
    line: int
    hashed: str  # SHA-1 of the value (as in a detect-secrets baseline), only to tell repeats apart; never shown


def use_default_plugins() -> None:
    """Turn on every built-in plugin in detect-secrets' process-wide settings, once.

    Not `detect_secrets.settings.default_settings()`: it swaps the global settings in and out, so two
    scans in threads of one worker could see each other's half-restored (empty) plugin list."""
    with _configure_lock:
        if get_settings().plugins:
            return
        plugins = [{"name": name} for name in plugin_names().values()]
        configure_settings_from_baseline({"plugins_used": plugins})


def plugin_names() -> dict[str, str]:
    """Secret type -> plugin class name, e.g. "AWS Access Key" -> "AWSKeyDetector"."""
    mapping: dict[str, type] = get_mapping_from_secret_type_to_class()
    return {secret_type: plugin.__name__ for secret_type, plugin in mapping.items()}


def scan_secrets(root: Path, paths: Iterable[str]) -> list[SecretHit]:
    """The secrets in the files at `paths` (relative to `root`), in file and line order (blocking)."""
    use_default_plugins()
    plugins = plugin_names()
    hits: list[SecretHit] = []
    for path in paths:  # a PotentialSecret holds the plain value: only these five fields are kept of it
        hits += most_specific(
            SecretHit(secret.type, plugins.get(secret.type, secret.type), path, secret.line_number, secret.secret_hash)
            for secret in scan_file(str(root / path))
        )
    return hits


def most_specific(hits: Iterable[SecretHit]) -> list[SecretHit]:
    """Per line, the specific matches ("AWS Access Key", "GitHub Token") when there are any, else the
    generic keyword or entropy matches; one hit per value either way."""
    by_line: dict[int, list[SecretHit]] = {}
    for hit in hits:
        by_line.setdefault(hit.line, []).append(hit)
    kept: list[SecretHit] = []
    for line in sorted(by_line):
        specific = [hit for hit in by_line[line] if hit.type not in GENERIC_TYPES]
        per_value: dict[str, SecretHit] = {}
        for hit in specific or by_line[line]:
            per_value.setdefault(hit.hashed, hit)
        kept += sorted(per_value.values(), key=lambda hit: hit.type)
    return kept


def secret_issue(hit: SecretHit) -> Issue:
    return Issue(
        scanner="secrets",
        rule=hit.plugin,
        severity=SECRET_SEVERITY,
        path=hit.path,
        start_line=hit.line,
        end_line=hit.line,
        title=hit.type,
        message=(
            f"{hit.type} committed in {hit.path} line {hit.line}: remove it, rotate the "
            f"{_credential_word(hit.type)}, and load it from the environment or a secret store. "
            f"If it is not a secret, add `# aqe: ignore[{hit.plugin}]` at the end of the line."
        ),
        aliases=(hit.type,),
    )


def _credential_word(secret_type: str) -> str:
    lowered = secret_type.casefold()
    for word in ("password", "token", "private key", "key"):
        if word in lowered:
            return word
    return "credential"
