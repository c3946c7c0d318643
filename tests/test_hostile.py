"""No input yields a 500: generated bodies, signed as WeChat signs them, in every mode.

Bounded so that CI runs it in seconds (hypothesis); the long run over the same path is
`bench/fuzz_webhook.py` (atheris), with its counts in docs/security.md.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.wechat.simulator import Simulator
from tests.factories import AES_KEY, APP_ID, TOKEN, make_app

ACCEPTABLE = {200, 400, 403, 413}
NAMES = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "Event",
    "EventKey",
    "Recognition",
    "MediaId",
    "Encrypt",
    "PicUrl",
    "Ticket",
]
TYPES = ["text", "voice", "image", "event", "location", "link", "video", "unknown", ""]
EVENTS = ["subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "MASSSENDJOBFINISH", "x"]

safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
value = st.one_of(
    safe_text.map(lambda t: f"<![CDATA[{t.replace(']]>', '')}]]>"),
    safe_text.map(escape),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(TYPES + EVENTS),
    st.just("<a>1</a><a>2</a>"),  # nested and repeated
    st.text(max_size=20),  # raw: may break the XML, must still not break the server
)
field = st.tuples(st.sampled_from(NAMES), value)
body = st.one_of(
    st.lists(field, max_size=14).map(
        lambda fs: "<xml>" + "".join(f"<{n}>{v}</{n}>" for n, v in fs) + "</xml>"
    ),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
)


@pytest.fixture
def hostile_app(tmp_path):
    return make_app(tmp_path, RATE_LIMITS=False)


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(xml=body)
def test_signed_bodies_of_any_shape_never_get_a_500(hostile_app, mode, xml):
    sim = Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode=mode)
    args, data = sim.request(xml)
    response = hostile_app.test_client().post(
        "/wechat", query_string=args, data=data, content_type="text/xml"
    )
    assert response.status_code in ACCEPTABLE, response.get_data(as_text=True)
    assert b"Traceback" not in response.get_data()


query = st.dictionaries(
    st.sampled_from(
        ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr"]
    ),
    st.one_of(safe_text, st.sampled_from(["aes", "0", "9" * 30, "-1"])),
    max_size=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(args=query, data=st.binary(max_size=200))
def test_any_query_and_body_never_get_a_500(hostile_app, args, data):
    client = hostile_app.test_client()
    for response in (
        client.post("/wechat", query_string=args, data=data, content_type="text/xml"),
        client.get("/wechat", query_string=args),
    ):
        assert response.status_code in ACCEPTABLE, response.get_data(as_text=True)
