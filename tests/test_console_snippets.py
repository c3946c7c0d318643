"""Advisers sign off machine-written snippets; the sign-off lands in content/laws/."""

from __future__ import annotations

from bot import lawbase
from tests.factories import console_post, copy_content, login, make_app, make_user

WAGES = "t-labor-050-wages"


def test_an_adviser_signs_off_a_snippet_and_it_lands_in_the_content_file(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    make_user(app, "guwen", "adviser", name="赵律师")
    client = app.test_client()
    login(client, "guwen")
    listed = client.get("/console/snippets?status=awaiting").get_data(as_text=True)
    assert "待律师审核（3）" in listed and "《中华人民共和国劳动法》第五十条" in listed
    page = f"/console/snippets/{WAGES}"
    assert "我已审核，内容无误" in client.get(page).get_data(as_text=True)
    done = console_post(client, f"{page}/signoff", {"detail": "解释准确"}, page=page)
    assert done.status_code == 302
    shown = client.get(page).get_data(as_text=True)
    assert "律师已审核" in shown and "赵律师" in shown and "我已审核，内容无误" not in shown
    assert "待律师审核（2）" in client.get("/console/snippets").get_data(as_text=True)

    exported = app.test_cli_runner().invoke(args=["content", "signoffs"])
    assert f"已写入：{WAGES}" in exported.output
    text = (content / "laws" / "labor.toml").read_text(encoding="utf-8")
    assert text.count('status = "adviser-reviewed", by = "赵律师（guwen）"') == 1
    assert text.count('status = "quote-verified"') == 1  # the other snippet is untouched
    with app.app_context():
        base = lawbase.load(str(content))
        assert base.by_id[WAGES].review["status"] == "adviser-reviewed"
    again = app.test_cli_runner().invoke(args=["content", "signoffs"])
    assert "共写入 0 条" in again.output


def test_only_advisers_and_admins_sign_off(app):
    make_user(app, "zhangsan", "staff")
    client = app.test_client()
    login(client, "zhangsan")
    page = f"/console/snippets/{WAGES}"
    assert "我已审核" not in client.get(page).get_data(as_text=True)
    assert console_post(client, f"{page}/signoff", page=page).status_code == 403
    assert client.get("/console/snippets/no-such-snippet").status_code == 404
