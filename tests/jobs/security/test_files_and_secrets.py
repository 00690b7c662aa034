"""The files the scanners read (tracked, regular, text, capped) and detect-secrets over them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jobs.security.files import RepoFiles, tracked_paths
from jobs.security.secrets import SecretHit, most_specific, scan_secrets, secret_issue

AWS_KEY = "AKIAZ7QW3RT5YU8IOP2X"
GITHUB_TOKEN = "ghp_Zq7Xw9Rt2Lm4Np6Vb8Hc1Jd3Kf5Gs0Ae2Yu4"
SECRETS_PY = f'''\
import os

AWS_ACCESS_KEY_ID = "{AWS_KEY}"
GITHUB = "{GITHUB_TOKEN}"
DEBUG = os.environ.get("DEBUG") == "1"
DOCS_ONLY = "{AWS_KEY[:-1]}Y"  # pragma: allowlist secret
'''


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


def repo(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


async def test_only_tracked_regular_text_files_within_the_cap_are_scanned(tmp_path: Path) -> None:
    outside = tmp_path / "worker.env"
    outside.write_text(f"TOKEN={GITHUB_TOKEN}\n")
    root = repo(tmp_path, {"a.py": "x = 1\n", "big.txt": "y" * 2048, "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0",
                           "sub/b.txt": "text\n"})
    (root / "leak.env").symlink_to(outside)
    git(root, "add", "leak.env")
    (root / "untracked.py").write_text(f'KEY = "{AWS_KEY}"\n')
    tracked = await tracked_paths(root, tmp_path / "home")
    assert tracked == ["a.py", "big.txt", "leak.env", "logo.png", "sub/b.txt"]
    files = RepoFiles.scan(root, tracked, max_bytes=1024)
    assert files.paths == ["a.py", "sub/b.txt"]
    assert files.too_large == ["big.txt"]
    assert files.skipped == 2  # the link and the image
    assert files.text("leak.env") is None and files.text("untracked.py") is None
    assert files.text("big.txt", max_bytes=4096) == "y" * 2048


async def test_a_directory_that_is_not_a_git_work_tree_is_walked(tmp_path: Path) -> None:
    (tmp_path / "src" / "node_modules").mkdir(parents=True)
    (tmp_path / "src" / "m.py").write_text("")
    (tmp_path / "src" / "node_modules" / "x.js").write_text("")
    assert await tracked_paths(tmp_path / "src", tmp_path / "home") == ["m.py"]


def test_secrets_are_found_by_type_and_line_and_the_allowlist_pragma_is_honoured(tmp_path: Path) -> None:
    root = tmp_path
    (root / "settings.py").write_text(SECRETS_PY)
    hits = scan_secrets(root, ["settings.py"])
    assert [(h.type, h.plugin, h.path, h.line) for h in hits] == [
        ("AWS Access Key", "AWSKeyDetector", "settings.py", 3),
        ("GitHub Token", "GitHubTokenDetector", "settings.py", 4),
    ]
    assert all(AWS_KEY not in repr(hit) and GITHUB_TOKEN not in repr(hit) for hit in hits)


def test_entropy_plugins_find_unlabelled_secrets_with_their_default_limits(tmp_path: Path) -> None:
    (tmp_path / "deploy.sh").write_text('SIGNATURE="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"\n'
                                        'echo "aGVsbG8gd29ybGQgdGhpcyBpcyBhIGxvbmcgYmFzZTY0IHN0cmluZyE9PT0K"\n'
                                        'echo "hello world"\n')
    assert [(h.type, h.line) for h in scan_secrets(tmp_path, ["deploy.sh"])] == [
        ("Hex High Entropy String", 1), ("Base64 High Entropy String", 2)]  # fmt: skip


def test_a_specific_match_hides_the_generic_matches_of_its_line() -> None:
    hits = [SecretHit("Secret Keyword", "KeywordDetector", "a.py", 3, "h1"),
            SecretHit("AWS Access Key", "AWSKeyDetector", "a.py", 3, "h1"),
            SecretHit("Base64 High Entropy String", "Base64HighEntropyString", "a.py", 4, "h2"),
            SecretHit("GitHub Token", "GitHubTokenDetector", "a.py", 4, "h3"),
            SecretHit("Secret Keyword", "KeywordDetector", "a.py", 9, "h4"),
            SecretHit("Hex High Entropy String", "HexHighEntropyString", "a.py", 9, "h4")]
    assert [(h.type, h.line) for h in most_specific(hits)] == [
        ("AWS Access Key", 3), ("GitHub Token", 4), ("Secret Keyword", 9)]  # fmt: skip


def test_a_secret_issue_names_the_type_and_place_and_what_to_do() -> None:
    issue = secret_issue(SecretHit("AWS Access Key", "AWSKeyDetector", "config.py", 3, "d6c9af"))
    assert (issue.rule, issue.severity, issue.title, issue.aliases) == (
        "AWSKeyDetector", "high", "AWS Access Key", ("AWS Access Key",))
    assert issue.message == (
        "AWS Access Key committed in config.py line 3: remove it, rotate the key, and load it from the environment "
        "or a secret store. If it is not a secret, add `# aqe: ignore[AWSKeyDetector]` at the end of the line.")
