"""The browser tests' JupyterLab (one per session) and chromium (one per module, torn down with it: Playwright's
sync API keeps an event loop that other tests' asyncio must not meet)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # figure_text, shared with the notebook tests

import pytest  # noqa: E402
from lab_driver import chromium_missing, launch_chromium, running_lab  # noqa: E402


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


@pytest.fixture(scope="session")
def chromium_installed() -> None:
    """Skip with the reason where chromium (or Playwright) is truly absent; in CI fail instead: `make setup`
    installs both, and `labtwin doctor` requires chromium, so a CI machine without it is broken."""
    reason = chromium_missing()
    if reason and in_ci():
        pytest.fail(f"{reason} (CI=true: make setup must have installed it)", pytrace=False)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab(chromium_installed, tmp_path_factory):
    """JupyterLab on a free port of 127.0.0.1 over a temporary copy of notebooks/; stopped at the end."""
    with running_lab(tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="module")
def browser(chromium_installed):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
