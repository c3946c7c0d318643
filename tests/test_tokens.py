"""One access_token for every process, refreshed under a lock (no 40001 races)."""

from __future__ import annotations

import threading

import pytest

from bot import wechat_client
from tests.factories import publishing_app


def with_client(app, fn):
    with app.app_context():
        return fn(wechat_client.client())


@pytest.fixture(params=["database", "redis"])
def workers(request, tmp_path, fake_api):
    extra = {}
    if request.param == "redis":
        extra["REDIS_URL"] = request.getfixturevalue("redis_url")
    return [publishing_app(tmp_path, fake_api, **extra) for _ in range(2)]


def test_workers_and_the_scheduler_share_one_token(workers, fake_api):
    first = with_client(workers[0], lambda c: c.access_token)
    second = with_client(workers[1], lambda c: c.access_token)
    assert first == second
    assert fake_api.token_fetches["stable"] == 1 and fake_api.token_fetches["legacy"] == 0


def test_a_crowd_of_processes_fetches_the_token_once(workers, fake_api):
    tokens, barrier = [], threading.Barrier(6)

    def fetch(app):
        barrier.wait()
        tokens.append(with_client(app, lambda c: c.access_token))

    threads = [threading.Thread(target=fetch, args=(workers[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and len(tokens) == 6
    assert fake_api.token_fetches["stable"] == 1


def test_a_refused_token_is_refreshed_once_and_the_others_use_the_new_one(workers, fake_api):
    with_client(workers[0], wechat_client.tags)
    with_client(workers[1], wechat_client.tags)
    fake_api.valid_tokens.clear()  # WeChat no longer accepts the token we hold
    assert "学生家长" in with_client(workers[0], wechat_client.tags)  # 40001 → refresh → retry
    assert "学生家长" in with_client(workers[1], wechat_client.tags)
    assert fake_api.token_fetches["stable_forced"] == 1
    assert [c["errcode"] for c in fake_api.calls if c["endpoint"] == "tags/get"].count(40001) == 1


def test_a_wrong_app_secret_is_a_permanent_error_with_a_reason(tmp_path, fake_api):
    app = publishing_app(tmp_path, fake_api, WECHAT_APP_SECRET="wrong")
    with pytest.raises(wechat_client.ApiError) as caught:
        with_client(app, wechat_client.tags)
    assert caught.value.code == 40125 and not caught.value.transient
    assert "AppSecret" in caught.value.reason
