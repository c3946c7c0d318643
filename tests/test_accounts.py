"""One deployment, several townships' official accounts: each keeps its residents, logs,
posts and help channels apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import accounts, posts
from bot.extensions import db
from bot.models import Account, Delivery, Exchange, Post
from bot.posts import publishing
from bot.wechat.simulator import Simulator
from tests.factories import AES_KEY, APP_ID, TOKEN, WeChat, make_app

OTHER_TOKEN = "xinglong-token-另一个镇"
OTHER_APP_ID = "wx00000000000000a2"
OTHER_KEY = "XinglongKey0123456789abcdefghijklmnopqrstuv"
T0 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


@pytest.fixture
def county(tmp_path, monkeypatch):
    """The test township's account (configured) and 兴隆镇's (a row, secrets in the env)."""
    monkeypatch.setenv("PUFA_XL_TOKEN", OTHER_TOKEN)
    monkeypatch.setenv("PUFA_XL_AES", OTHER_KEY)
    app = make_app(tmp_path)
    with app.app_context():
        accounts.create(
            slug="xinglong",
            name="兴隆镇普法",
            app_id=OTHER_APP_ID,
            original_id="gh_xinglong0001",
            token_env="PUFA_XL_TOKEN",
            aes_key_env="PUFA_XL_AES",
            encryption="safe",
            office_name="兴隆镇司法所",
            office_phone="0871-22223333",
            help_channels=[{"name": "兴隆镇人民调解委员会", "phone": "0871-22224444"}],
        )
    return app


def ours() -> WeChat:
    return WeChat(Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode="plain"))


def theirs(**kw) -> WeChat:
    sim = Simulator(
        token=OTHER_TOKEN,
        app_id=OTHER_APP_ID,
        aes_key=OTHER_KEY,
        mode="safe",
        account="gh_xinglong0001",
        **kw,
    )
    return WeChat(sim, path="/wechat/xinglong")


def test_each_account_answers_with_its_own_justice_office(county):
    client = county.test_client()
    here = ours().ask(client, "老板拖欠我三个月工资，咋个整？")
    there = theirs().ask(client, "老板拖欠我三个月工资，咋个整？")
    assert "劳动法》第五十条" in here and "劳动法》第五十条" in there
    assert "测试镇司法所" in here and "兴隆镇" not in here
    assert "兴隆镇司法所" in there and "0871-22223333" in there
    assert "兴隆镇人民调解委员会 0871-22224444" in there
    assert "测试镇司法所" not in there


def test_the_same_msgid_at_two_accounts_is_two_messages_logged_apart(county):
    client = county.test_client()
    here = ours().ask(client, "你好", msg_id=777001)
    there = theirs().ask(client, "老板拖欠工资咋个整", msg_id=777001)
    assert "劳动法" not in here and "劳动法" in there  # not the other account's stored reply
    with county.app_context():
        rows = db.session.scalars(select(Exchange).order_by(Exchange.id)).all()
        assert [(r.account_id, r.question) for r in rows] == [
            (1, "你好"),
            (2, "老板拖欠工资咋个整"),
        ]
        # the same openid at two accounts is two residents: no shared hash, state or log
        assert rows[0].openid_hash != rows[1].openid_hash


def test_a_message_signed_for_one_account_is_refused_at_the_other(county):
    client = county.test_client()
    forged = ours().text_message("老板拖欠工资咋个整")
    forged["path"] = "/wechat/xinglong"
    assert client.post(**forged).status_code == 403
    assert client.post(**{**forged, "path": "/wechat/nowhere"}).status_code == 404
    with county.app_context():
        assert db.session.scalar(select(Exchange.id)) is None


def test_a_message_addressed_to_another_official_account_is_refused(county):
    client = county.test_client()
    stray = theirs()
    stray.sim.account = "gh_someoneelse99"
    response = client.post(**stray.text_message("老板拖欠工资咋个整"))
    assert response.status_code == 403


def test_an_account_whose_secret_is_missing_answers_503_and_says_why(county, monkeypatch, caplog):
    monkeypatch.delenv("PUFA_XL_TOKEN")
    with county.app_context():
        accounts.forget_cached()
    response = county.test_client().post(**theirs().text_message("你好"))
    assert response.status_code == 503  # WeChat retries; the operator reads the log
    assert "PUFA_XL_TOKEN" in caplog.text
    # the configured account is not affected
    assert "您好" in ours().ask(county.test_client(), "你好")


def test_accounts_are_created_with_secrets_by_reference_only(county):
    runner = county.test_cli_runner()
    refused = runner.invoke(
        args=["accounts", "add", "dazhai", "--name", "大寨乡", "--app-id", "wx00000000000000a3",
              "--token-env", "my-plain-token-value"]
    )  # fmt: skip
    assert refused.exit_code != 0 and "环境变量名" in refused.output
    added = runner.invoke(
        args=["accounts", "add", "dazhai", "--name", "大寨乡", "--app-id", "wx00000000000000a3",
              "--token-env", "PUFA_DZ_TOKEN", "--help-channel", "大寨村调解委员会=13800001111"]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "/wechat/dazhai" in added.output
    listed = runner.invoke(args=["accounts", "list"]).output
    assert '"slug": "dazhai"' in listed and "不可用" in listed and "PUFA_DZ_TOKEN" in listed
    with county.app_context():
        row = db.session.scalar(select(Account).where(Account.slug == "dazhai"))
        assert row.token_env == "PUFA_DZ_TOKEN"
        assert row.help_channels == [{"name": "大寨村调解委员会", "phone": "13800001111"}]
        with pytest.raises(accounts.AccountError):
            accounts.create(
                slug="dazhai", name="x", app_id="wx00000000000000a4", token_env="PUFA_X"
            )


def _draft(account_id: int, title: str) -> int:
    post = posts.create(
        actor="张三",
        title=title,
        body="宪法规定：公民在法律面前一律平等。",
        audiences=["全体"],
        send_at=T0,
        now=T0 - timedelta(days=3),
        account_id=account_id,
    )
    posts.act(post.id, "submit", actor="张三")
    return post.id


def test_posts_of_two_accounts_keep_their_own_quota_and_send_keys(county):
    with county.app_context():
        mine, other = _draft(1, "宪法日·本镇"), _draft(2, "宪法日·兴隆镇")
        # one send a day for each subscription account: no warning across accounts
        assert posts.quota_warnings(db.session.get(Post, other)) == []
        second = _draft(2, "宪法日·兴隆镇（二）")
        assert "每天只能群发 1 次" in posts.quota_warnings(db.session.get(Post, second))[0]
        assert publishing.clientmsgid(mine, "全体", 1) != publishing.clientmsgid(mine, "全体", 2)


def test_a_job_report_only_touches_its_own_accounts_delivery(county):
    with county.app_context():
        post_id = _draft(1, "宪法日")
        posts.act(post_id, "approve", actor="李四", now=T0 - timedelta(days=1))
        posts.publish_due(now=T0, worker="t")  # no AppSecret: the delivery is not sent
        delivery = db.session.scalar(select(Delivery).where(Delivery.post_id == post_id))
        delivery.msg_id, delivery.state = "1000001", "submitted"
        db.session.commit()
        report = {"MsgID": "1000001", "Status": "send success", "SentCount": "9"}
        assert posts.record_job_finish(report, account_id=2) is False  # not the other's msg_id
        assert posts.record_job_finish(report, account_id=1) is True


def test_a_townships_own_key_dates_are_added_to_the_national_calendar(county, tmp_path):
    additions = tmp_path / "xinglong-calendar.toml"
    additions.write_text(
        '[[date]]\nid = "xinglong-market"\nname = "兴隆街赶集天"\nrule = "market 5"\n',
        encoding="utf-8",
    )
    with county.app_context():
        row = db.session.get(Account, 2)
        row.calendar_file = str(additions)
        db.session.commit()
        accounts.forget_cached()
        assert "xinglong-market" in posts.key_dates(2) and "constitution-day" in posts.key_dates(2)
        assert "xinglong-market" not in posts.key_dates(1)
        post = posts.create(
            actor="张三", title="赶集天普法", body="正文", audiences=["全体"],
            on="xinglong-market", at="9点", now=T0, account_id=2,
        )  # fmt: skip
        assert post.calendar_id == "xinglong-market" and post.send_at.day in (5, 15, 25)
        with pytest.raises(posts.PostError, match="没有关键日期"):
            posts.create(
                actor="张三", title="x", body="y", audiences=["全体"],
                on="xinglong-market", now=T0, account_id=1,
            )  # fmt: skip


def test_a_time_out_of_range_is_a_clear_error(county):
    with county.app_context(), pytest.raises(posts.PostError, match="时间不对"):
        posts.parse_time("0001-01-01 00:00")
