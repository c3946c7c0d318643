"""The demo chat page in a real browser (Debian's chromium, driven by Playwright).

A staff member opens /demo/, types a resident's question, and sees the reply the resident
would get in WeChat; what they type is shown as text, never run as HTML.
"""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.factories import NO_CHROMIUM, launch_chromium, make_app

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NO_CHROMIUM,
        reason="Debian's chromium is not installed here (.ci/run installs it)",
    ),
]


@pytest.fixture
def live_url(tmp_path):
    app = make_app(tmp_path, DEMO_PAGE=True)  # the page exists only when the demo is asked for
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 480, "height": 900})
        yield page
        browser.close()


def test_staff_see_in_the_browser_what_a_resident_would_see(live_url, page, tmp_path):
    page.goto(f"{live_url}/demo/")
    page.fill("#text", "老板拖欠工资咋个整")
    page.click("button[type=submit]")
    reply = page.locator(".msg.bot .bubble").first
    reply.wait_for(timeout=10_000)
    assert "《中华人民共和国劳动法》第五十条" in reply.inner_text()
    assert page.locator(".msg.me .bubble").first.inner_text() == "老板拖欠工资咋个整"
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)


def test_what_staff_type_is_shown_as_text_not_run_as_html(live_url, page):
    page.goto(f"{live_url}/demo/")
    page.fill("#text", "<img src=x onerror=alert(1)>工资")
    page.click("button[type=submit]")
    page.locator(".msg.bot .bubble").first.wait_for(timeout=10_000)
    assert page.locator(".msg.me .bubble").first.inner_text() == "<img src=x onerror=alert(1)>工资"
    assert page.locator(".msg img").count() == 0


def test_the_follow_button_shows_the_welcome(live_url, page):
    page.goto(f"{live_url}/demo/")
    page.click("button[data-event=subscribe]")
    bubble = page.locator(".msg.bot .bubble").first
    bubble.wait_for(timeout=10_000)
    assert "欢迎关注" in bubble.inner_text()
