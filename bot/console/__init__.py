"""The console for staff and advisers at /console: login, roles per account, CSRF on forms.

Every page needs a signed-in user and checks the user's role in the account being worked on;
objects are looked up within that account, so an id from another account is a 404.
"""

from flask import Blueprint

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

from bot.console import (  # noqa: E402,F401
    accounts,
    auth,
    posts,
    requests,
    reviews,
    snippet_edits,
    snippets,
    users,
    views,
)
