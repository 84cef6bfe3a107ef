"""Browser tests: a real waitress server on 127.0.0.1 (a free port, real commits, tables
truncated after each test) driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.processes import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="session")
def live_server(app_settings):
    """The app behind waitress on 127.0.0.1:<free port>; checkout links point at it."""
    import waitress.server

    from payportal import main

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = main({}, **{**app_settings, "payportal.public_url": base_url})
    server = waitress.server.create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield base_url
    server.close()
    thread.join(timeout=5)
    app.registry.dbengine.dispose()


@pytest.fixture
def db(committed_db):
    """A session that commits for real (the server is another thread with its own connections)."""
    with Session(bind=committed_db, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, live_server, committed_db):
    """new_page(width=1280, height=860) -> a page in a fresh browser context (its own cookies)."""
    contexts = []

    def open_page(width: int = 1280, height: int = 860):
        context = chromium.new_context(
            base_url=live_server,
            viewport={"width": width, "height": height},
            accept_downloads=True,
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, name): a full-page PNG under tests/browser/screenshots/ for people."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
