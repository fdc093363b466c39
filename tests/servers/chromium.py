"""Debian's Chromium, headless, driven through the system's ChromeDriver: the browser of the
console's tests, the API docs' browser test and the console benchmark.

Nothing is downloaded: the browser and its driver are the system's (``make browser`` installs
the ``chromium`` and ``chromium-driver`` packages) and Selenium Manager stays offline. No host
name but 127.0.0.1's resolves and no background service runs, so whatever a page asks for, the
browser sends nothing off this machine (such a request fails, and is logged).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

__all__ = ["CHROMEDRIVER", "CHROMIUM", "CHROMIUM_FLAGS", "chromium", "missing"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: We run as root in CI containers (hence no sandbox); nothing in the background may reach out.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--no-proxy-server", "--window-size=1400,1000",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)  # fmt: skip


def missing() -> list[str]:
    """The browser's files that are not installed (empty when it can run)."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]


def chromium(profile: Path, logs: Mapping[str, str] | None = None) -> Any:
    """A headless Chromium with a fresh profile in ``profile``; ``logs`` sets the
    ``goog:loggingPrefs`` capability (``{"browser": "ALL"}``, ``{"performance": "ALL"}``)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if logs:
        options.set_capability("goog:loggingPrefs", dict(logs))
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never look for a driver online
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
