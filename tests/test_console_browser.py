"""The console in a real browser (Debian's chromium, driven by Playwright): what people see.

Staff, advisers and residents each do what they do: staff sign in, write a post, preview it,
submit it, a colleague approves it and the scheduler's tick sends it to the stand-in WeChat
API; an adviser corrects a wrong answer and another worker answers with the correction; a
resident asks for mediation in the chat and staff follow the request up to closed. What
residents type is shown as text and never runs, and no page breaks its Content-Security-Policy.

With PUFA_SCREENSHOTS set to a directory, the tour saves full-page screenshots of the console
there (docs/img holds the ones in the docs: `PUFA_SCREENSHOTS=docs/img pytest -k tour ...`).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from bot import posts
from bot.extensions import db
from bot.models import Delivery, Post
from bot.posts.states import TZ
from bot.wechat.simulator import Simulator
from tests.factories import (
    AES_KEY,
    APP_ID,
    CONSOLE_PASSWORD,
    NO_CHROMIUM,
    REAL_CONTENT,
    TOKEN,
    WeChat,
    launch_chromium,
    make_app,
    make_user,
    publishing_app,
)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NO_CHROMIUM,
        reason="Debian's chromium is not installed here (.ci/run installs it)",
    ),
]

DESKTOP = {"width": 1280, "height": 800}
SHOTS = os.environ.get("PUFA_SCREENSHOTS")
TIMEOUT = 10_000  # ms: a page or an element that has not come by then is a failure

CHILD_LABOUR = "《中华人民共和国劳动法》第十五条"
CHILD_LABOUR_QUOTE = "禁止用人单位招用未满十六周岁的未成年人。"
UNANSWERED = "娃儿在厂里头做工，老板说他年纪小不给工钱"  # the fixture base has no answer
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
PHONE = "13812345678"

# Runs in every page before its own scripts (DevTools injects it: the page's CSP does not
# apply): records what the page's Content-Security-Policy refused.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


# -- a live console and people in browsers --------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture
def serve():
    """serve(app) → the address of a live server running the app (in a thread)."""
    running = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join(timeout=5)


@dataclass
class Person:
    """Someone at the console in their own browser context (their own cookies)."""

    page: object  # playwright Page
    problems: list[str] = field(default_factory=list)  # console errors and page errors

    def go(self, path: str) -> None:
        self.page.goto(path)

    def sign_in(self, username: str, password: str = CONSOLE_PASSWORD) -> None:
        self.go("/console/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_load_state()

    def nav(self, name: str) -> None:
        """Follow a link of the menu at the top of every page."""
        self.page.locator("header.top nav").get_by_role("link", name=name, exact=True).click()

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def text(self, selector: str = "main") -> str:
        return self.page.locator(selector).inner_text()

    def flash(self) -> str:
        return self.page.locator("p.flash").first.inner_text()

    def shot(self, name: str) -> None:
        """A full-page screenshot in PUFA_SCREENSHOTS, when it is set."""
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / name), full_page=True)

    def assert_clean(self) -> None:
        """Nothing ran that should not have, the CSP refused nothing, the styles applied."""
        assert self.page.evaluate("typeof window.__pwned") == "undefined"
        assert self.page.evaluate("window.__csp") == []
        assert self.problems == []
        sheets = self.page.evaluate(
            "[...document.styleSheets].map(s => [s.href, s.cssRules.length])"
        )
        assert sheets and all(href and rules > 0 for href, rules in sheets), sheets
        assert all(href.startswith(self.page.url.split("/console")[0]) for href, _ in sheets)
        # console.css is in force: the page background, not the browser's white
        background = "getComputedStyle(document.body).backgroundColor"
        assert self.page.evaluate(background) == "rgb(246, 248, 250)"


@pytest.fixture
def person(browser):
    """person(base_url) → a Person in a new browser context at a desktop viewport."""
    contexts = []

    def open_(base_url: str) -> Person:
        context = browser.new_context(
            base_url=base_url, viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(TIMEOUT)
        context.add_init_script(WATCH_CSP)
        contexts.append(context)
        page = context.new_page()
        who = Person(page)
        page.on("console", lambda m: _problem(m) and who.problems.append(m.text))
        page.on("pageerror", lambda e: who.problems.append(str(e)))
        return who

    yield open_
    for context in contexts:
        context.close()


def _problem(message) -> bool:
    """A console error of the page's own making (the browser's own asking for /favicon.ico,
    which the app does not serve, is not one)."""
    where = (message.location or {}).get("url", "")
    return message.type == "error" and not where.endswith("/favicon.ico")


@pytest.fixture
def resident():
    """resident(app, text, openid) → the reply a resident gets through the signed webhook."""
    wechat = WeChat(Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode="plain"))

    def ask(app, text: str, openid: str = "o-resident-0001") -> str:
        return wechat.ask(app.test_client(), text, openid=openid)

    return ask


def beijing_now() -> datetime:
    return datetime.now(TZ)


# -- 1. signing in --------------------------------------------------------------------------


def test_signing_in_shows_the_chinese_error_then_the_home_page_with_the_name(
    tmp_path, serve, person
):
    app = make_app(tmp_path)
    make_user(app, "wangfang", "staff", name="王芳")
    staff = person(serve(app))

    staff.go("/console/reviews")  # not signed in: sent to the login page
    assert staff.page.url.endswith("/console/login?next=%2Fconsole%2Freviews")
    assert "请先登录" in staff.flash()

    staff.sign_in("wangfang", "not-the-password")
    assert "/console/login" in staff.page.url
    assert staff.flash() == "用户名或密码不对"
    assert staff.page.locator("header.top").count() == 0  # nobody signed in yet
    staff.assert_clean()

    staff.sign_in("wangfang")
    assert staff.page.url.endswith("/console/")
    assert staff.page.title() == "概况 · 普法"
    assert staff.text("header.top .me") == "王芳 · 普法办工作人员"
    assert "法律咨询人次" in staff.text()
    assert staff.page.locator("header.top nav").get_by_role("link", name="概况").is_visible()
    staff.assert_clean()

    staff.button("退出").click()
    assert "/console/login" in staff.page.url
    staff.go("/console/")
    assert "/console/login" in staff.page.url


# -- 2. a post from draft to sent -----------------------------------------------------------

TITLE = "12月4日国家宪法日"
BODY = (
    "**12月4日**是国家宪法日。\n\n"
    "- 宪法是国家的根本法\n"
    "- 公民在法律面前一律平等\n\n"
    "详见[中国人大网](http://www.npc.gov.cn)。"
)
SENT_TEXT = (
    f"【{TITLE}】\n\n12月4日是国家宪法日。\n\n"
    "• 宪法是国家的根本法\n• 公民在法律面前一律平等\n\n"
    "详见中国人大网（http://www.npc.gov.cn）。"
)


def test_a_post_goes_from_draft_through_a_colleagues_approval_to_sent(
    tmp_path, serve, person, fake_api
):
    app = publishing_app(tmp_path, fake_api)
    make_user(app, "wangfang", "staff", name="王芳")
    make_user(app, "lisi", "staff", name="李四")
    url = serve(app)
    send_at = (beijing_now() + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M")

    writer = person(url)
    writer.sign_in("wangfang")
    writer.nav("推送日历")
    writer.page.get_by_role("link", name="写新推送").click()
    writer.page.get_by_label("标题").fill(TITLE)
    writer.page.get_by_label("文字消息").check()
    writer.page.get_by_label("正文（Markdown）").fill(BODY)
    assert writer.page.get_by_label("发送对象").input_value() == "全体"
    writer.page.get_by_role("textbox", name="发送时间").fill(send_at)
    writer.button("预览").click()

    preview = writer.page.locator(".preview-pane")
    assert "预览（文字消息）" in preview.inner_text()
    assert f"计划发送：{send_at}" in preview.inner_text()
    shown = preview.locator("pre.message").inner_text()
    assert shown == SENT_TEXT  # the title on top, no **, no "- ", no [](): a chat's text
    assert "**" not in shown
    writer.assert_clean()

    writer.button("保存草稿").click()  # the form kept what was typed
    assert writer.flash().startswith(f"已保存草稿《{TITLE}》，计划 {send_at} 发送")
    assert "草稿" in writer.text("h1 .tag")
    post_url = writer.page.url
    writer.button("提交审核").click()
    assert "已提交审核，现在是待审核" in writer.flash()
    assert writer.text("h1 .tag") == "待审核"
    assert writer.button("审核通过").count() == 0  # nobody approves their own post
    assert "须由另一位同事审核" in writer.text(".actions")
    writer.assert_clean()

    colleague = person(url)
    colleague.sign_in("lisi")
    colleague.nav("推送日历")
    pending = colleague.page.locator("table tr", has_text=TITLE)
    assert "等待另一位同事审核" in pending.inner_text()
    pending.get_by_role("link", name=TITLE).click()
    colleague.button("审核通过").click()
    assert "已审核通过，现在是已排期" in colleague.flash()
    assert colleague.text("h1 .tag") == "已排期"
    colleague.assert_clean()

    with app.app_context():  # the scheduler's tick, just after the send time
        post = db.session.scalar(select(Post))
        report = posts.publish_due(now=post.send_at + timedelta(minutes=1), worker="test-tick")
        assert report.started == [post.id] and len(report.submitted) == 1
        msg_id = db.session.scalar(select(Delivery.msg_id))

    [sent] = fake_api.sends.values()
    assert str(sent["msg_id"]) == msg_id
    assert sent["data"]["filter"] == {"is_to_all": True}
    assert sent["data"]["text"]["content"] == SENT_TEXT and "**" not in SENT_TEXT

    writer.page.goto(post_url)
    assert writer.text("h1 .tag") == "已发布"
    delivery = writer.page.locator("table tr", has_text="全体").first
    assert str(msg_id) in delivery.inner_text()
    assert "已提交微信" in delivery.inner_text()
    assert "已发布" in writer.text("table.history")
    assert writer.page.locator("form .primary", has_text="提交审核").count() == 0
    writer.assert_clean()


# -- 3. a correction reaches another worker -------------------------------------------------


def test_an_advisers_correction_changes_the_next_reply_on_another_worker(
    tmp_path, serve, person, resident
):
    first = make_app(tmp_path)  # the worker the adviser's browser talks to
    second = make_app(tmp_path, CORRECTIONS_CHECK_SECONDS=0.2)  # same database, own memory
    make_user(first, "zhanglvshi", "adviser", name="张律师")
    before = resident(first, UNANSWERED, "o-resident-0001")
    assert "还没有可靠的答案" in before and CHILD_LABOUR not in before
    assert resident(second, UNANSWERED, "o-resident-0002") == before

    adviser = person(serve(first))
    adviser.sign_in("zhanglvshi")
    adviser.nav("问答审核")
    adviser.page.get_by_role("link", name="未能答复（2）").click()
    row = adviser.page.locator("table.reviews tbody tr", has_text=UNANSWERED).first
    assert "未能答复" in row.inner_text()
    row.get_by_role("link", name="查看").click()
    assert adviser.text("#question") == UNANSWERED
    assert "还没有可靠的答案" in adviser.text("#reply")

    right = adviser.page.locator("tr", has_text=CHILD_LABOUR).filter(
        has=adviser.page.get_by_role("button", name="用这一条回答")
    )
    right.get_by_role("button", name="用这一条回答").click()
    assert adviser.flash() == f"已更正：以后群众这样问，回答 {CHILD_LABOUR}"
    assert "生效中" in adviser.text()
    assert "目前有顾问更正在生效" in adviser.text()
    adviser.assert_clean()

    time.sleep(0.3)  # longer than the second worker's CORRECTIONS_CHECK_SECONDS
    reply = resident(second, UNANSWERED, "o-resident-0003")
    assert CHILD_LABOUR in reply and CHILD_LABOUR_QUOTE in reply


# -- 4. a resident's request, from the chat to closed ---------------------------------------


def test_a_residents_request_is_followed_up_to_closed_and_the_resident_hears(
    tmp_path, serve, person, resident
):
    app = make_app(tmp_path)
    make_user(app, "wangfang", "staff", name="王芳")
    who = "o-resident-help-01"
    replies = [
        resident(app, text, who)
        for text in ("我要调解", "隔壁占了我家宅基地，说了不听", "大寨村", PHONE)
    ]
    assert "①" in replies[0] and "②" in replies[1] and "③" in replies[2]
    assert "138****5678" in replies[3]

    staff = person(serve(app))
    staff.sign_in("wangfang")
    staff.nav("群众求助")
    row = staff.page.locator("table tbody tr", has_text="大寨村")
    cells = row.inner_text()
    assert "调解" in cells and "隔壁占了我家宅基地" in cells and "待处理" in cells
    assert "138****5678" in cells and PHONE not in staff.text()
    row.get_by_role("link", name="处理").click()
    assert PHONE not in staff.text()

    staff.button("查看完整电话").click()
    assert PHONE in staff.text("table")
    assert "已记录您查看了完整号码" in staff.text()

    staff.page.get_by_label("状态").select_option(label="已联系")
    staff.page.get_by_label("跟进记录").fill("已电话联系，周三到村委会调解")
    staff.button("保存").click()
    # no app secret here: WeChat cannot be asked to tell them now, their next message will
    assert staff.flash() == "已更新为“已联系”；居民下次发消息时会看到这个进展"
    assert PHONE not in staff.text()  # shown on the reveal only
    assert "已联系" in staff.text("h1 .tag")
    notes = staff.text("main table >> nth=1")
    assert "已电话联系，周三到村委会调解" in notes and "王芳（wangfang）" in notes

    staff.page.get_by_label("状态").select_option(label="已办结")
    staff.page.get_by_label("跟进记录").fill("双方在村委会达成调解协议")
    staff.button("保存").click()
    assert staff.flash().startswith("已更新为“已办结”")
    assert "这件求助已办结" in staff.text()
    assert staff.button("保存").count() == 0
    assert "下次群众给公众号发消息时会告诉他“已办结”" in staff.text()
    staff.assert_clean()

    first, second = resident(app, "你好", who), resident(app, "你好", who)
    assert first.splitlines()[0] == "您的求助（调解）已有进展：已办结"
    assert "已有进展" not in second  # once
    staff.page.reload()
    assert "已告知当前状态" in staff.text()
    staff.nav("群众求助")
    assert "已办结" in staff.text("table tbody tr")


# -- 5. residents' markup stays text ---------------------------------------------------------


def test_what_residents_type_is_shown_as_text_and_never_runs(tmp_path, serve, person, resident):
    app = make_app(tmp_path)
    make_user(app, "zhanglvshi", "adviser", name="张律师")
    resident(app, SCRIPT, "o-resident-0001")
    resident(app, IMG, "o-resident-0002")
    for n, about in enumerate((SCRIPT, IMG), start=3):
        for text in ("我要调解", about, "大寨村", "不留"):
            resident(app, text, f"o-resident-{n:04d}")

    adviser = person(serve(app))
    adviser.sign_in("zhanglvshi")

    def inert(*payloads: str) -> None:
        for payload in payloads:
            assert payload in adviser.text()  # visible, literally
        assert adviser.page.locator("img[src=x], [onerror]").count() == 0
        assert adviser.page.locator("script").count() == 0  # the console runs no scripts
        adviser.assert_clean()

    adviser.nav("问答审核")
    inert(SCRIPT, IMG)
    for payload in (SCRIPT, IMG):
        adviser.nav("问答审核")
        row = adviser.page.locator("table.reviews tbody tr").filter(
            has=adviser.page.get_by_text(payload, exact=True)
        )
        row.last.get_by_role("link", name="查看").click()
        assert adviser.text("#question") == payload
        inert(payload)
    adviser.nav("群众求助")
    inert(SCRIPT, IMG)
    adviser.page.locator("table tbody tr", has_text=IMG).get_by_role("link", name="处理").click()
    assert adviser.text("pre.message") == IMG
    inert(IMG)


# -- 6. a tour with demo data (and the screenshots of the docs) ------------------------------

QUESTIONS = [  # (resident, what they write)
    (1, "老板拖欠工资三个月了咋个整"),
    (1, "没用"),
    (2, "十五岁的娃儿能去厂里打工吗"),
    (3, "发现山上冒烟了找哪个"),
    (4, "隔壁占了我家宅基地，说了不听咋办"),
    (5, "我家母猪下崽了明天赶集卖多少钱合适"),
    (6, "离婚了娃儿归哪个"),
    (7, "被狗咬了，狗主人不赔钱"),
    (8, f"我电话{PHONE}，在工地上摔伤了老板不管"),
    (9, UNANSWERED),
]
REQUESTS = [  # (resident, the chat: how they ask, what about, village, phone)
    (10, ("我要调解", "隔壁张三家修房子占了我家宅基地，说了几次都不听", "大寨村", PHONE)),
    (11, ("法律援助", "在浙江工地打工，被欠了两万块工钱", "小河村", "不留")),
    (12, ("人工", "儿子不给赡养费，想找人问问", "石门村", "13987654321")),
]
CONSTITUTION_TITLE = "宪法宣传周｜宪法和我们每个人都有关系"
CONSTITUTION_DAY = """**12月4日是国家宪法日**，12月1日至7日是宪法宣传周。

宪法是国家的根本法，和我们每个人的日子都有关系：

- 公民在法律面前一律平等
- 国家尊重和保障人权
- 公民有受教育的权利和义务，娃儿要读完九年义务教育

本周赶集日，镇司法所在街口设咨询台，律师现场解答，欢迎来问。

详见[中国人大网](http://www.npc.gov.cn)。"""
LATER_POSTS = [  # (title, body, days from now, how far it got)
    (
        "冬季森林防火：上山不带火种",
        "进入森林防火期，**上山不准带火种**，不准烧田埂、烧荒。\n\n发现山火请打 12119。",
        2,
        "submit",
    ),
    ("农民工工资支付条例：工钱按月足额发", "年底了，工钱被拖欠怎么办？", 6, "draft"),
]


def test_a_tour_of_the_console_with_demo_data(tmp_path, serve, person, resident, fake_api):
    """Every page with a township's realistic data; the screenshots of the docs when
    PUFA_SCREENSHOTS is set."""
    app = publishing_app(
        tmp_path,
        fake_api,
        content=REAL_CONTENT,  # the real base and its models, as a township runs it
        ACCOUNT_NAME="大河镇普法",
        JUSTICE_OFFICE_NAME="大河镇司法所",
        JUSTICE_OFFICE_PHONE="0871-6512 3456",
    )
    make_user(app, "wangfang", "staff", name="王芳")
    make_user(app, "lisi", "staff", name="李四")
    make_user(app, "zhanglvshi", "adviser", name="张律师")
    make_user(app, "admin", "admin", name="赵主任")
    for who, text in QUESTIONS:
        resident(app, text, f"o-resident-{who:04d}")
    for who, chat in REQUESTS:
        for text in chat:
            resident(app, text, f"o-resident-{who:04d}")
    with app.app_context():  # two more posts of the weeks ahead, by the same staff
        for title, body, days, reached in LATER_POSTS:
            when = (beijing_now() + timedelta(days=days)).strftime("%Y-%m-%d 09:00")
            post = posts.create(
                actor="王芳（wangfang）", title=title, body=body, audiences=["全体"], send_at=when
            )
            if reached == "submit":
                posts.act(post.id, "submit", actor="王芳（wangfang）")
    url = serve(app)

    staff = person(url)
    staff.go("/console/login")
    staff.shot("console-login.png")
    staff.sign_in("wangfang")

    # the editor and its preview: a text message for 宪法宣传周, a few minutes from now
    staff.nav("推送日历")
    staff.page.get_by_role("link", name="写新推送").click()
    send_at = (beijing_now() + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M")
    staff.page.get_by_label("标题").fill(CONSTITUTION_TITLE)
    staff.page.get_by_label("正文（Markdown）").fill(CONSTITUTION_DAY)
    staff.page.get_by_label("发送对象").fill("全体")
    staff.page.get_by_role("textbox", name="发送时间").fill(send_at)
    staff.button("预览").click()
    shown = staff.text(".preview-pane pre.message")
    assert shown.startswith(f"【{CONSTITUTION_TITLE}】\n\n12月4日是国家宪法日")
    assert "**" not in shown and "• 国家尊重和保障人权" in shown
    staff.shot("console-editor.png")
    staff.button("保存草稿").click()
    post_url = staff.page.url
    staff.button("提交审核").click()
    staff.assert_clean()

    colleague = person(url)
    colleague.sign_in("lisi")
    colleague.go(post_url)
    colleague.button("审核通过").click()
    assert colleague.text("h1 .tag") == "已排期"

    staff.go(f"/console/posts?month={send_at[:7]}")
    day = staff.text(f"#d-{send_at[:10]}")
    assert CONSTITUTION_TITLE in day and "已排期" in day
    assert "待审核" in staff.text("table")  # the fire-season post waits for a colleague
    staff.shot("console-calendar.png")

    with app.app_context():  # its time comes: the scheduler's tick sends it
        moment = db.session.scalar(select(Post.send_at).where(Post.title == CONSTITUTION_TITLE))
        assert posts.publish_due(now=moment, worker="scheduler-1").submitted
    staff.go(post_url)
    assert staff.text("h1 .tag") == "已发布"
    assert "1000000001" in staff.text("table >> nth=0")  # the stand-in's first msg_id
    staff.shot("console-post.png")
    staff.assert_clean()

    adviser = person(url)
    adviser.sign_in("zhanglvshi")
    adviser.nav("问答审核")
    queue = adviser.text("table.reviews")
    assert "138****5678" in queue and PHONE not in queue
    assert "未能答复" in queue and "直接答复" in queue and "紧急：山火" in queue
    adviser.shot("console-reviews.png")
    adviser.page.locator("table.reviews tbody tr", has_text=UNANSWERED).get_by_role(
        "link", name="查看"
    ).click()
    adviser.page.get_by_label("部分正确").check()
    adviser.page.get_by_label("备注").fill("第1个选项就是对的，应当直接回答，不必让群众选。")
    adviser.button("记录评价").click()
    assert adviser.flash() == "已记录评价：部分正确"
    adviser.page.get_by_label("正确的法条条目").fill("child-labor-regulation-002-under-16")
    adviser.button("更正：以后这样问就回答这一条").click()
    assert adviser.flash() == "已更正：以后群众这样问，回答 《禁止使用童工规定》第二条"
    assert "生效中" in adviser.text() and "现在机器人会怎么比对" in adviser.text()
    assert "这个问法也加进了 child-labor-regulation-002-under-16 的群众问法" in adviser.text()
    adviser.shot("console-exchange.png")
    adviser.assert_clean()

    staff.nav("群众求助")
    staff.page.locator("table tbody tr", has_text="小河村").get_by_role("link", name="处理").click()
    staff.page.get_by_label("状态").select_option(label="已联系")
    staff.page.get_by_label("跟进记录").fill("已电话联系，约定周五到司法所申请法律援助")
    staff.button("保存").click()
    staff.nav("群众求助")
    listing = staff.text("table")
    assert "138****5678" in listing and "139****4321" in listing and PHONE not in listing
    assert "已联系" in listing and "待处理" in listing
    staff.shot("console-requests.png")

    staff.nav("概况")
    figures = staff.text("section.figures")
    assert "法律咨询人次" in figures and "待处理求助" in figures
    assert staff.text("h1").startswith("大河镇普法 · ")
    assert "已发布：1 篇" in staff.text() and "待审核：1 篇" in staff.text()
    staff.shot("console-home.png")
    staff.assert_clean()

    # the administrator: a colleague forgot their password; the accounts this deployment serves
    admin = person(url)
    admin.sign_in("admin")
    admin.nav("用户")
    admin.page.locator("table tbody tr", has_text="lisi").get_by_role(
        "button", name="重置密码"
    ).click()
    temporary = admin.text("#temporary code.secret")
    assert len(temporary) == 12 and "只显示这一次" in admin.text("#temporary")
    admin.shot("console-users.png")
    admin.nav("公众号账号")
    assert "/wechat" in admin.text("table.accounts") and "可用" in admin.text("table.accounts")
    admin.shot("console-accounts.png")
    admin.assert_clean()
    colleague = person(url)
    colleague.sign_in("lisi", temporary)
    assert colleague.page.url.endswith("/console/password")
    assert "请先设置自己的新密码" in colleague.flash()
