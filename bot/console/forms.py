"""The console's forms (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from bot.users import ROLES


def options(pairs) -> list[SelectChoice]:
    """Choices of a select or radio field (WTForms 3.3 deprecates plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(), Length(max=40)])
    password = PasswordField("密码", validators=[DataRequired(), Length(max=200)])


class ActionForm(FlaskForm):
    """A button that changes state (POST with a CSRF token): approve, cancel, sign out …"""

    detail = StringField("说明", validators=[Optional(), Length(max=200)])


class AccountForm(FlaskForm):
    account_id = HiddenField(validators=[DataRequired()])


class PostForm(FlaskForm):
    title = StringField("标题", validators=[DataRequired(), Length(max=120)])
    kind = RadioField(
        "形式", choices=options([("text", "文字消息"), ("article", "图文（文章）")]), default="text"
    )
    body = TextAreaField("正文（Markdown）", validators=[DataRequired(), Length(max=20000)])
    digest = StringField("摘要", validators=[Optional(), Length(max=120)])
    audiences = StringField(
        "发送对象（用户标签，用逗号分开；“全体”为所有粉丝）",
        default="全体",
        validators=[DataRequired(), Length(max=200)],
    )
    send_at = StringField(
        "发送时间（如 2026-12-04 09:00）", validators=[Optional(), Length(max=40)]
    )
    on = SelectField("或选择重要日子", choices=[], validate_choice=False)
    at = StringField("当天几点（如 9:00）", default="09:00", validators=[Optional()])


class RescheduleForm(FlaskForm):
    send_at = StringField("新的发送时间", validators=[DataRequired(), Length(max=40)])


class VerdictForm(FlaskForm):
    verdict = RadioField(
        "评价",
        choices=options([("correct", "回答正确"), ("partly", "部分正确"), ("wrong", "回答错误")]),
        validators=[DataRequired()],
    )
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])


class CorrectionForm(FlaskForm):
    snippet_id = StringField("正确的法条条目（编号）", validators=[DataRequired(), Length(max=80)])


class RequestStatusForm(FlaskForm):
    status = SelectField("状态", choices=[], validators=[DataRequired()])
    note = TextAreaField("跟进记录", validators=[Optional(), Length(max=2000)])


class UserForm(FlaskForm):
    username = StringField("用户名（小写字母和数字）", validators=[DataRequired(), Length(max=40)])
    display_name = StringField("姓名", validators=[DataRequired(), Length(max=40)])
    password = PasswordField("初始密码（至少 10 位）", validators=[DataRequired(), Length(max=200)])
    role = SelectField("角色", choices=options(ROLES.items()), validators=[DataRequired()])


class PasswordForm(FlaskForm):
    current = PasswordField("当前密码", validators=[DataRequired(), Length(max=200)])
    new = PasswordField("新密码（至少 10 位）", validators=[DataRequired(), Length(max=200)])
    again = PasswordField("再输一遍新密码", validators=[DataRequired(), Length(max=200)])


class ExportForm(FlaskForm):
    start = DateField("从", validators=[Optional()])
    end = DateField("到", validators=[Optional()])
    fmt = SelectField("格式", choices=options([("csv", "CSV"), ("xlsx", "Excel（XLSX）")]))


class AccountSettingsForm(FlaskForm):
    """An official account's settings; its secrets are named (environment variables), never
    typed here."""

    slug = StringField(
        "账号标识（小写字母、数字和 -，微信服务器地址是 /wechat/标识，如 dazhai）",
        validators=[Optional(), Length(max=24)],
    )
    name = StringField("账号名称（如 某某镇普法）", validators=[DataRequired(), Length(max=80)])
    app_id = StringField("AppID（wx 开头）", validators=[Optional(), Length(max=40)])
    original_id = StringField("原始ID（gh_ 开头，可不填）", validators=[Optional(), Length(max=40)])
    account_type = SelectField(
        "账号类型", choices=options([("subscription", "订阅号"), ("service", "服务号")])
    )
    encryption = SelectField(
        "消息加解密方式",
        choices=options([("plain", "明文模式"), ("compatible", "兼容模式"), ("safe", "安全模式")]),
    )
    token_env = StringField("存放 Token 的环境变量名", validators=[Optional(), Length(max=80)])
    aes_key_env = StringField(
        "存放 EncodingAESKey 的环境变量名（明文模式可不填）",
        validators=[Optional(), Length(max=80)],
    )
    app_secret_env = StringField(
        "存放 AppSecret 的环境变量名（不填就不能群发）", validators=[Optional(), Length(max=80)]
    )
    office_name = StringField("司法所名称", validators=[Optional(), Length(max=80)])
    office_phone = StringField("司法所电话", validators=[Optional(), Length(max=40)])
    office_address = StringField("司法所地址", validators=[Optional(), Length(max=200)])
    office_hours = StringField("办公时间", validators=[Optional(), Length(max=80)])
    help_channels = TextAreaField(
        "其他求助渠道（一行一个：名称，电话，地址；电话和地址可不填）",
        validators=[Optional(), Length(max=2000)],
    )
