"""The staff pages for posts: the calendar, the editor with its preview, a post and its actions."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import accounts, posts
from bot.extensions import db
from bot.models import Post
from bot.posts import publishing, render
from tests.factories import console_post, csrf_token, login, make_user, publishing_app

YEAR = datetime.now(posts.TZ).year + 1  # a December ahead, so approving is never too late
DAY = f"{YEAR}-12-04"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def draft(**fields) -> dict[str, str]:
    """What staff type into the editor."""
    return {
        "title": "宪法日普法",
        "kind": "text",
        "body": "**12月4日**是国家宪法日。\n\n- 宪法是根本法\n- 人人平等",
        "digest": "",
        "audiences": "全体",
        "send_at": f"{DAY} 09:00",
        "on": "",
        "at": "09:00",
        **fields,
    }


def write(client, **fields):
    """Save (or, with preview="1", preview) a draft through the editor."""
    return console_post(client, "/console/posts/new", draft(**fields))


def text(response) -> str:
    return response.get_data(as_text=True)


def day_cell(page: str, day: str) -> str:
    found = re.search(rf'id="d-{day}"[^>]*>(.*?)</div>', page, re.S)
    assert found, f"no cell for {day}"
    return found.group(1)


def new_post(app, *, title="宪法日普法", account_id=1, actor="张三（zhang）", **extra) -> int:
    with app.app_context():
        return posts.create(
            actor=actor,
            title=title,
            body=extra.pop("body", "宪法规定：公民在法律面前一律平等。"),
            audiences=extra.pop("audiences", ["全体"]),
            send_at=extra.pop("send_at", f"{DAY} 09:00"),
            account_id=account_id,
            **extra,
        ).id


def post_state(app, post_id: int) -> str:
    with app.app_context():
        return db.session.get(Post, post_id).state


@pytest.fixture
def staff(app):
    make_user(app, "zhang", "staff", name="张三")
    client = app.test_client()
    login(client, "zhang")
    return client


@pytest.fixture
def colleague(app):
    make_user(app, "li", "staff", name="李四")
    client = app.test_client()
    login(client, "li")
    return client


def signed_in(app, username: str, role: str, **kw):
    make_user(app, username, role, **kw)
    client = app.test_client()
    login(client, username)
    return client


# -- the calendar and the editor ------------------------------------------------------------


def test_staff_write_a_draft_and_find_it_on_the_calendar_on_its_day(app, staff):
    response = write(staff)
    assert response.status_code == 302
    page = text(staff.get(response.headers["Location"]))
    assert "已保存草稿《宪法日普法》" in page and f"计划 {DAY} 09:00 发送" in page
    calendar = text(staff.get(f"/console/posts?month={YEAR}-12"))
    cell = day_cell(calendar, DAY)
    assert "宪法日普法" in cell and "草稿" in cell and "09:00" in cell
    assert "国家宪法日" in cell  # the key date from content/calendar.toml
    assert "宪法日普法" not in day_cell(calendar, f"{YEAR}-12-05")
    assert "宪法宣传周（12月1日至7日）" in calendar  # a span, above the grid
    assert "写新推送" in calendar
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert (post.account_id, post.created_by, post.state) == (1, "张三（zhang）", "draft")
        assert posts.local(post.send_at) == f"{DAY} 09:00"


def test_the_calendar_starts_weeks_on_monday_and_moves_between_months(staff):
    page = text(staff.get(f"/console/posts?month={YEAR}-12"))
    headers = re.findall(r'class="dow"[^>]*>(.*?)</div>', page)
    assert headers == ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    assert f"month={YEAR}-11" in page and f"month={YEAR + 1}-01" in page
    first_cell = re.search(r'id="d-(\d{4}-\d{2}-\d{2})"', page).group(1)
    assert datetime.fromisoformat(first_cell).weekday() == 0
    odd = staff.get("/console/posts?month=十二月")
    assert odd.status_code == 200 and "月份格式不对" in text(odd)


def test_a_post_on_a_key_date_is_scheduled_on_that_day(app, staff):
    response = write(staff, send_at="", on="constitution-day", at="9点半")
    assert response.status_code == 302
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert post.calendar_id == "constitution-day"
        assert posts.local(post.send_at).endswith("-12-04 09:30")


def test_the_preview_shows_the_message_as_followers_see_it(staff):
    page = text(write(staff, preview="1"))
    assert "预览（文字消息）" in page
    assert "【宪法日普法】" in page and "12月4日是国家宪法日。" in page and "• 宪法是根本法" in page
    assert "**" not in page.split('aria-label="预览"')[1]  # no raw Markdown in the preview
    assert "计划发送：" in page
    article = text(write(staff, kind="article", digest="宪法日", preview="1"))
    preview = article.split('aria-label="预览"')[1]
    assert "<h1>宪法日普法</h1>" in preview and "<strong>12月4日</strong>" in preview
    assert "<li>宪法是根本法</li>" in preview and "**" not in preview
    assert "摘要：宪法日" in preview and "需要封面图" in preview


def test_nothing_is_saved_by_a_preview(app, staff):
    write(staff, preview="1")
    with app.app_context():
        assert db.session.scalar(select(Post)) is None


def test_typed_html_stays_inert_on_every_page(app, staff):
    hostile = {
        "title": f"宪法{SCRIPT}{IMG}",
        "body": f"正文{SCRIPT}\n\n{IMG}\n\n[点我](javascript:alert(1))",
    }
    for kind in ("text", "article"):
        for page in (text(write(staff, kind=kind, preview="1", **hostile)),):
            assert "<script>" not in page and "<img src=x" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    response = write(staff, kind="article", **hostile)
    post_id = int(response.headers["Location"].rsplit("/", 1)[1])
    pages = [
        text(staff.get(f"/console/posts/{post_id}")),
        text(staff.get(f"/console/posts?month={YEAR}-12")),
        text(staff.get(f"/console/posts/{post_id}/edit")),
    ]
    for page in pages:
        assert "<script>" not in page and "<img src=x" not in page
        assert 'href="javascript:' not in page
        assert "宪法&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x" in page
    assert "<a>点我</a>" in pages[0]  # the link's text stays, its address goes


def test_a_bad_time_is_a_clear_error_on_the_form_not_a_crash(app, staff):
    response = write(staff, send_at="9点")
    assert response.status_code == 200
    assert "时间格式不对：9点（应为 2026-12-04 09:00）" in text(response)
    assert 'value="宪法日普法"' in text(response)  # what was typed is kept
    bad_hour = write(staff, send_at="", on="constitution-day", at="25点")
    assert bad_hour.status_code == 200 and "时刻格式不对：25点" in text(bad_hour)
    both = write(staff, on="constitution-day")
    assert "发送时间和重要日子只能选一个" in text(both)
    neither = write(staff, send_at="")
    assert "请填写发送时间" in text(neither)
    previewed = write(staff, send_at="明天上午", preview="1")
    assert previewed.status_code == 200 and "时间格式不对：明天上午" in text(previewed)
    with app.app_context():
        assert db.session.scalar(select(Post)) is None


def test_missing_fields_are_named_in_chinese(staff):
    page = text(write(staff, title="", audiences=""))
    assert "请填写标题" in page and "请填写发送对象" in page
    assert "This field is required" not in page
    commas = text(write(staff, audiences="，, 、"))
    assert "请至少选择一个发送对象" in commas


def test_audiences_are_tag_names_separated_by_commas(app, staff):
    write(staff, audiences="学生家长，农户, 农户、全体")
    with app.app_context():
        assert db.session.scalar(select(Post)).audiences == ["学生家长", "农户", "全体"]


def test_a_draft_is_edited_and_the_history_says_what_changed(app, staff):
    post_id = new_post(app)
    form = text(staff.get(f"/console/posts/{post_id}/edit"))
    assert 'value="宪法日普法"' in form and f"{DAY} 09:00" in form
    response = console_post(
        staff,
        f"/console/posts/{post_id}/edit",
        draft(title="宪法日：人人平等", send_at=f"{DAY} 10:00"),
    )
    assert response.status_code == 302
    page = text(staff.get(f"/console/posts/{post_id}"))
    assert "《宪法日：人人平等》" in page and "修改草稿" in page
    assert f"修改了标题、正文、发送时间（发送时间 {DAY} 09:00 → {DAY} 10:00）" in page


def test_only_a_draft_can_be_edited(app, staff):
    post_id = new_post(app)
    console_post(staff, f"/console/posts/{post_id}/submit")
    response = staff.get(f"/console/posts/{post_id}/edit", follow_redirects=True)
    assert "现在是待审核，只有草稿可以修改" in text(response)
    forged = console_post(staff, f"/console/posts/{post_id}/edit", draft(title="偷改"))
    assert forged.status_code == 302
    with app.app_context():
        assert db.session.get(Post, post_id).title == "宪法日普法"


# -- a post's page and its actions ----------------------------------------------------------


def test_the_writer_cannot_approve_and_a_colleague_can(app, staff, colleague):
    post_id = new_post(app)
    console_post(staff, f"/console/posts/{post_id}/submit")
    assert post_state(app, post_id) == "awaiting_approval"
    page = text(staff.get(f"/console/posts/{post_id}"))
    assert f"/console/posts/{post_id}/approve" not in page
    assert "须由另一位同事审核" in page
    forged = console_post(staff, f"/console/posts/{post_id}/approve")
    assert "是您写的或您提交的，须由另一位同事审核" in text(staff.get(forged.headers["Location"]))
    assert post_state(app, post_id) == "awaiting_approval"

    page = text(colleague.get(f"/console/posts/{post_id}"))
    assert f'action="/console/posts/{post_id}/approve"' in page
    approved = console_post(colleague, f"/console/posts/{post_id}/approve")
    assert "已审核通过，现在是已排期" in text(colleague.get(approved.headers["Location"]))
    assert post_state(app, post_id) == "scheduled"
    history = text(colleague.get(f"/console/posts/{post_id}"))
    assert "李四（li）" in history and "待审核 → 已排期" in history


def test_someone_who_submitted_a_colleagues_draft_cannot_approve_it(app, staff, colleague):
    post_id = new_post(app, actor="王五（wang）")
    console_post(colleague, f"/console/posts/{post_id}/submit")
    assert f"/console/posts/{post_id}/approve" not in text(
        colleague.get(f"/console/posts/{post_id}")
    )
    console_post(staff, f"/console/posts/{post_id}/approve")
    assert post_state(app, post_id) == "scheduled"


def test_cancel_reopen_and_reschedule(app, staff):
    post_id = new_post(app)
    moved = console_post(staff, f"/console/posts/{post_id}/reschedule", {"send_at": f"{DAY} 08:00"})
    assert f"改为 {DAY} 08:00 发送" in text(staff.get(moved.headers["Location"]))
    bad = console_post(staff, f"/console/posts/{post_id}/reschedule", {"send_at": "9点"})
    assert "时间格式不对：9点" in text(staff.get(bad.headers["Location"]))
    console_post(staff, f"/console/posts/{post_id}/cancel", {"detail": "活动改期"})
    assert post_state(app, post_id) == "cancelled"
    page = text(staff.get(f"/console/posts/{post_id}"))
    assert "活动改期" in page and "草稿 → 已取消" in page
    assert f"/console/posts/{post_id}/reopen" in page
    again = console_post(staff, f"/console/posts/{post_id}/cancel")
    assert "现在是已取消，不能取消" in text(staff.get(again.headers["Location"]))
    console_post(staff, f"/console/posts/{post_id}/reopen")
    assert post_state(app, post_id) == "draft"


def test_posts_needing_action_are_listed_under_the_calendar(app, staff):
    waiting = new_post(app, title="等审核的")
    quiet = new_post(app, title="安静的草稿")
    with app.app_context():
        posts.act(waiting, "submit", actor="张三（zhang）")
    page = text(staff.get("/console/posts"))
    listed = page.split("待处理的推送")[1]
    assert "等审核的" in listed and "等待另一位同事审核" in listed
    assert "安静的草稿" not in listed and quiet


def test_a_viewer_reads_but_changes_nothing(app):
    post_id = new_post(app)
    viewer = signed_in(app, "lingdao", "viewer")
    assert viewer.get(f"/console/posts?month={YEAR}-12").status_code == 200
    page = text(viewer.get(f"/console/posts/{post_id}"))
    assert "宪法日普法" in page and "提交审核" not in page and "写新推送" not in page
    assert viewer.get("/console/posts/new").status_code == 403
    assert viewer.get(f"/console/posts/{post_id}/edit").status_code == 403
    assert write(viewer).status_code == 403
    for action in ("submit", "approve", "cancel", "reopen", "reschedule"):
        response = console_post(viewer, f"/console/posts/{post_id}/{action}", {"send_at": "x"})
        assert response.status_code == 403, action
    assert post_state(app, post_id) == "draft"


def test_an_adviser_cannot_approve(app):
    post_id = new_post(app)
    with app.app_context():
        posts.act(post_id, "submit", actor="张三（zhang）")
    adviser = signed_in(app, "guwen", "adviser")
    assert "审核通过</button>" not in text(adviser.get(f"/console/posts/{post_id}"))
    assert console_post(adviser, f"/console/posts/{post_id}/approve").status_code == 403
    assert post_state(app, post_id) == "awaiting_approval"


def test_another_accounts_post_is_not_found(app, staff, monkeypatch):
    monkeypatch.setenv("PUFA_B_TOKEN", "x")
    with app.app_context():
        accounts.create(
            slug="b", name="乙镇", app_id="wx00000000000000b2", token_env="PUFA_B_TOKEN"
        )
    theirs = new_post(app, title="乙镇的推送", account_id=2, actor="赵六（zhao）")
    assert staff.get(f"/console/posts/{theirs}").status_code == 404
    assert staff.get(f"/console/posts/{theirs}/edit").status_code == 404
    for action in ("submit", "approve", "cancel", "reschedule"):
        response = console_post(staff, f"/console/posts/{theirs}/{action}", {"send_at": "x"})
        assert response.status_code == 404, action
    assert post_state(app, theirs) == "draft"
    assert "乙镇的推送" not in text(staff.get(f"/console/posts?month={YEAR}-12"))
    b_staff = signed_in(app, "zhao", "staff", account_id=2)
    assert "乙镇的推送" in text(b_staff.get(f"/console/posts/{theirs}"))


def test_a_post_without_the_csrf_token_is_refused(app, staff):
    post_id = new_post(app)
    assert staff.post(f"/console/posts/{post_id}/submit").status_code == 400
    assert staff.post("/console/posts/new", data=draft()).status_code == 400
    assert (
        staff.post(f"/console/posts/{post_id}/cancel", data={"csrf_token": "x"}).status_code == 400
    )
    assert post_state(app, post_id) == "draft"
    assert csrf_token(staff, "/console/posts")  # the pages' own forms carry one


def test_actions_are_never_a_get(app, staff):
    post_id = new_post(app)
    for action in ("submit", "approve", "cancel", "reopen", "reschedule"):
        assert staff.get(f"/console/posts/{post_id}/{action}").status_code == 405


# -- deliveries, and what residents receive -------------------------------------------------


def test_the_post_page_shows_each_delivery_with_wechats_report(tmp_path, fake_api):
    app = publishing_app(tmp_path, fake_api)
    t0 = datetime(YEAR, 12, 4, 1, 0, tzinfo=UTC)
    post_id = new_post(app, audiences=["全体", "没有这个标签"], send_at=t0)
    with app.app_context():
        posts.act(post_id, "submit", actor="张三（zhang）")
        posts.act(post_id, "approve", actor="李四（li）", now=t0 - timedelta(days=1))
        posts.publish_due(now=t0, worker="test")
        msg_id = next(iter(fake_api.sends.values()))["msg_id"]
        publishing.record_job_finish(
            {
                "MsgID": msg_id,
                "Status": "send success",
                "TotalCount": "120",
                "FilterCount": "118",
                "SentCount": "117",
                "ErrorCount": "1",
            }
        )
    client = signed_in(app, "zhang", "staff")
    page = text(client.get(f"/console/posts/{post_id}"))
    assert "发送失败" in page and "已送达" in page and str(msg_id) in page
    assert "送达 117 人 / 共 120 人，过滤 118，失败 1" in page
    assert "没有这个标签：用户标签不存在（40050）：请在公众号后台检查标签" in page
    assert "发送程序" in page and "微信群发报告" in page
    listed = text(client.get(f"/console/posts?month={YEAR}-12")).split("待处理的推送")[1]
    assert "没有这个标签" in listed  # a failed post waits for staff with its reason


def test_an_article_reaches_wechat_with_typed_html_inert(tmp_path, fake_api):
    app = publishing_app(tmp_path, fake_api)
    t0 = datetime(YEAR, 12, 4, 1, 0, tzinfo=UTC)
    body = f"宪法**很重要**{SCRIPT}\n\n{IMG}\n\n<div onclick=alert(1)>块</div>\n\n[人大网](http://www.npc.gov.cn)"
    post_id = new_post(app, body=body, send_at=t0, kind="article", cover_media_id="thumb-1")
    with app.app_context():
        posts.act(post_id, "submit", actor="张三")
        posts.act(post_id, "approve", actor="李四", now=t0 - timedelta(days=1))
        posts.publish_due(now=t0, worker="test")
    [sent] = fake_api.drafts.values()
    html = sent["articles"][0]["content"]
    assert "<strong>很重要</strong>" in html and '<a href="http://www.npc.gov.cn">' in html
    assert "<script" not in html and "<img" not in html and "<div" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize(
    "markdown",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java\tscript:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](&#x6A;avascript&colon;alert(1))",
        "[x][1]\n\n[1]: javascript:alert(1)",
        "![x](javascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
    ],
)
def test_an_article_keeps_no_script_address(markdown):
    html = render.article_html(markdown)
    assert "href" not in html and "src" not in html and "x" in html


def test_an_article_keeps_web_mail_and_phone_links():
    html = render.article_html("[网](https://www.npc.gov.cn) [信](mailto:a@b.cn) [电](tel:12348)")
    assert html.count("href=") == 3


def test_a_text_message_still_reads_as_clean_text():
    message = render.text_message("标题", f"**要点**{SCRIPT}\n\n[人大网](http://www.npc.gov.cn)")
    assert message == "【标题】\n\n要点alert(1)\n\n人大网（http://www.npc.gov.cn）"


# -- an article's cover ---------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def upload(client, post_id: int, data: bytes | None, *, token: bool = True, name="封面.png"):
    form: dict = {"csrf_token": csrf_token(client, "/console/")} if token else {}
    if data is not None:
        form["cover"] = (io.BytesIO(data), name)
    return client.post(f"/console/posts/{post_id}/cover", data=form)


@pytest.fixture
def wechat_app(tmp_path, fake_api):
    return publishing_app(tmp_path, fake_api)


def test_staff_upload_an_articles_cover_and_wechat_gets_it(wechat_app, fake_api):
    app = wechat_app
    t0 = datetime(YEAR, 12, 4, 1, 0, tzinfo=UTC)
    post_id = new_post(app, kind="article", send_at=t0)
    client = signed_in(app, "zhang", "staff", name="张三")
    assert "还没有封面（群发前需要）" in text(client.get(f"/console/posts/{post_id}"))
    response = upload(client, post_id, PNG)
    page = text(client.get(response.headers["Location"]))
    assert "封面已上传到公众号素材库" in page and "已设置" in page and "上传封面" in page
    [(media_id, image)] = fake_api.materials.items()
    assert image["size"] == len(PNG)
    with app.app_context():
        assert db.session.get(Post, post_id).cover_media_id == media_id
        posts.act(post_id, "submit", actor="张三（zhang）")
        posts.act(post_id, "approve", actor="李四（li）", now=t0 - timedelta(days=1))
        posts.publish_due(now=t0, worker="test")
    [sent] = fake_api.drafts.values()
    assert sent["articles"][0]["thumb_media_id"] == media_id
    assert upload(client, post_id, JPEG).status_code == 302
    assert len(fake_api.materials) == 1  # no longer a draft: nothing uploaded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "请先选择一张封面图片"),
        (b"", "请先选择一张封面图片"),
        (b"GIF89a" + b"\x00" * 10, "封面只能是 JPG 或 PNG 图片"),
        (b"<svg onload=alert(1)>", "封面只能是 JPG 或 PNG 图片"),
        (JPEG + b"\x00" * 2000, "图片太大了：封面最大 2 MB"),  # over the limit
        (JPEG + b"\x00" * 100_000, "图片太大了：封面最大 2 MB"),  # so far over it is not read
    ],
)
def test_a_wrong_cover_is_refused_with_a_reason(wechat_app, fake_api, monkeypatch, data, message):
    monkeypatch.setattr(publishing, "COVER_LIMIT", 1000)  # 2 MB, made small for the test
    post_id = new_post(wechat_app, kind="article")
    client = signed_in(wechat_app, "zhang", "staff")
    response = upload(client, post_id, data)
    assert response.status_code == 302
    assert message in text(client.get(response.headers["Location"]))
    assert fake_api.materials == {}


def test_wechat_refusing_a_cover_is_shown_in_chinese(wechat_app, fake_api):
    fake_api.faults.append({"endpoint": "material/add_material", "errcode": 45001})
    post_id = new_post(wechat_app, kind="article")
    client = signed_in(wechat_app, "zhang", "staff")
    page = text(client.get(upload(client, post_id, PNG).headers["Location"]))
    assert "封面没有上传成功：微信接口拒绝了请求（45001）" in page
    with wechat_app.app_context():
        assert db.session.get(Post, post_id).cover_media_id is None


def test_a_cover_needs_the_token_the_role_and_the_account(wechat_app, fake_api, monkeypatch):
    app = wechat_app
    post_id = new_post(app, kind="article")
    staff = signed_in(app, "zhang", "staff")
    assert upload(staff, post_id, PNG, token=False).status_code == 400
    viewer = signed_in(app, "lingdao", "viewer")
    assert upload(viewer, post_id, PNG).status_code == 403
    monkeypatch.setenv("PUFA_B_TOKEN", "x")
    with app.app_context():
        accounts.create(
            slug="b", name="乙镇", app_id="wx00000000000000b2", token_env="PUFA_B_TOKEN"
        )
    theirs = new_post(app, kind="article", account_id=2)
    assert upload(staff, theirs, PNG).status_code == 404
    text_post = new_post(app)
    page = text(staff.get(upload(staff, text_post, PNG).headers["Location"]))
    assert "只有图文草稿可以上传封面" in page
    assert fake_api.materials == {}


def test_the_editor_offers_the_accounts_tags_and_warns_of_one_it_lacks(wechat_app, fake_api):
    client = signed_in(wechat_app, "zhang", "staff", name="张三")
    editor = text(client.get("/console/posts/new"))
    assert "公众号里的用户标签：全体、企业、农户、外出务工人员、学生家长、村组干部" in editor
    saved = write(client, audiences="学生家长，留守老人")
    shown = text(client.get(saved.headers["Location"]))
    assert "公众号里没有“留守老人”这个用户标签，发送会失败" in shown
    assert "学生家长”这个" not in shown
