"""A real web process (`aqe web`, uvicorn) on loopback, a real Redis, and Debian's Chromium driven by Playwright.

The browser tests are skipped, saying why, where /usr/bin/chromium or the `playwright` package is missing
(`apt-get install -y chromium`; `pip install -e '.[test]'`). Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from tests.app.conftest import with_redis
from tests.fakes.processes import free_port

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).parents[2]
JWT_SECRET = "browser-test-jwt-secret-" + "b" * 24



def require_browser() -> None:
    """Skip the calling test module, saying why, when Chromium or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium: apt-get install -y chromium)",
                    allow_module_level=True)
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                                      "(pip install -e '.[test]')")


def run_async(redis_url: str, action: Callable[[Redis], Any]) -> Any:
    """`action(redis)` to its end (on a thread of its own: Playwright's sync API keeps a loop in this one)."""
    return with_redis(action, redis_url)


@dataclass
class Web:
    url: str
    redis_url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, action: Callable[[Redis], Any]) -> Any:
        return run_async(self.redis_url, action)


@pytest.fixture
def web(tmp_path: Path, redis_url: str, private_key_file: Path) -> Iterator[Web]:
    redis_sync.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REDIS_URL": redis_url, "PORT": str(port),
           "AQE_PUBLIC_URL": f"http://127.0.0.1:{port}", "AQE_DATA_DIR": str(tmp_path / "data"),
           "AQE_JWT_SECRET": JWT_SECRET, "AQE_LOG_LEVEL": "WARNING", "GITHUB_APP_ID": "424242",
           "GITHUB_PRIVATE_KEY_PATH": str(private_key_file), "GITHUB_WEBHOOK_SECRET": "browser-test-webhook"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the web process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within 30 s")
            time.sleep(0.1)
        yield Web(url, redis_url, log, env)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        sys.stdout.write(log.read_text(errors="replace")[-4000:])


@pytest.fixture(scope="module")  # not longer: Playwright's sync API keeps an event loop running in this thread
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# Recorded in every page before its own scripts run: what the CSP refused.
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


@dataclass
class Watched:
    page: Any
    console_errors: list[str]
    page_errors: list[str]
    dialogs: list[str]

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp || []"))

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [], self.page_errors
        assert self.dialogs == [], self.dialogs
        assert self.csp_violations() == []


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Watched]]:
    contexts: list[Any] = []

    def make() -> Watched:
        context = browser.new_context()
        contexts.append(context)
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        watched = Watched(page, [], [], [])
        page.on("console", lambda msg: watched.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: watched.page_errors.append(str(exc)))

        def on_dialog(dialog: Any) -> None:
            watched.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return watched

    yield make
    for context in contexts:
        context.close()
