"""Headless Chromium (Debian's) driven by Playwright, on the app served by `app_server`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture
def page(app_server: str) -> Iterator[object]:
    """A fresh Chromium page on the app. Request it last: Playwright's sync API keeps an
    event loop running in this thread, after which fixtures can no longer use async_to_sync.

    It bypasses the Content-Security-Policy: Playwright's polling `wait_for_function` evaluates
    its predicate with eval, which the policy forbids. `page_under_csp` keeps the policy."""
    yield from _page(app_server, bypass_csp=True)


@pytest.fixture
def page_under_csp(app_server: str) -> Iterator[object]:
    """A page that enforces the app's Content-Security-Policy, as a user's browser does. Do not
    poll with `wait_for_function` on it; use `wait_for_selector` or evaluate in a loop."""
    yield from _page(app_server, bypass_csp=False)


class ConsoleErrors:
    """Every error the page reports: console.error lines (a failed fetch or websocket, a
    Content-Security-Policy violation, a 404 for a resource) and uncaught exceptions. The page
    fixtures fail the test on any of them that the test did not declare with `expect`."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def add(self, text: str) -> None:
        self.seen.append(text)

    def expect(self, pattern: str) -> None:
        """Declare errors matching `pattern` (a regex, searched) as part of what the test does."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [text for text in self.seen if not any(p.search(text) for p in self.expected)]


def console_errors(page) -> ConsoleErrors:
    """The page's error collector, to `expect` errors that a test provokes on purpose."""
    return page._multillm_console_errors


def _page(app_server: str, *, bypass_csp: bool) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    # The ORM calls that tests make between browser steps are plain blocking calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(base_url=app_server, bypass_csp=bypass_csp)
            page = context.new_page()
            page.set_default_timeout(10_000)
            errors = ConsoleErrors()
            page._multillm_console_errors = errors
            page.on("console", lambda message: _on_console(errors, message))
            page.on("pageerror", lambda error: errors.add(f"uncaught: {error}"))
            yield page
            browser.close()
            unexpected = errors.unexpected()
            assert not unexpected, f"the browser console reported errors: {unexpected}"
            # ORM calls made while Playwright runs use their own connection (asgiref's
            # context-local storage sees a different context there): close it here.
            connections.close_all()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def _on_console(errors: ConsoleErrors, message) -> None:
    if message.type == "error":
        location = message.location or {}
        errors.add(f"{message.text} ({location.get('url', '')})")


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
