"""Meaning-based matching: the real model, its caches, and how residents' words are folded."""

from __future__ import annotations

import numpy as np
import pytest

from bot import lawbase, search, semantic
from tests.factories import copy_content, edit_content


class Counting:
    """The real engine, counting how many texts it is asked to embed."""

    def __init__(self) -> None:
        self.engine = semantic.Engine.shared()
        self.embedded = 0

    def passages(self, texts):
        self.embedded += len(texts)
        return self.engine.passages(texts)

    def queries(self, texts):
        self.embedded += len(texts)
        return self.engine.queries(texts)

    def query(self, text):
        return self.engine.query(text)


def test_the_model_puts_a_question_nearer_its_article_than_an_unrelated_one():
    engine = semantic.Engine.shared()
    q = engine.query("老板拖欠工资不给咋个办")
    docs = semantic.normalise_rows(
        engine.passages(["工资应当以货币形式按月支付给劳动者本人。", "禁止毁林开垦。"])
    )
    q = q / np.linalg.norm(q)
    assert docs[0] @ q > docs[1] @ q


def test_a_content_edit_re_embeds_only_the_text_that_changed(tmp_path):
    content = copy_content(tmp_path)
    counting = Counting()
    embedder = semantic.Embedder(counting, semantic.Cache(tmp_path / "vectors.sqlite3"))
    first = lawbase.load(content, embedder=embedder)
    assert first.semantic is not None and counting.embedded > 10
    before = counting.embedded
    lawbase.load(content, embedder=embedder)  # a second worker: everything is cached
    edit_content(content, "老板拖欠工资咋个整", "老板拖欠工钱半年了到底咋个整")
    again = lawbase.load(content, embedder=embedder)
    assert counting.embedded - before == 2  # the new phrasing, as a passage and as a question
    assert again.semantic is not None


def test_shipped_vectors_serve_a_worker_that_has_no_model(tmp_path):
    content = copy_content(tmp_path)
    cache = semantic.Cache(tmp_path / "vectors.sqlite3")
    base = lawbase.load(content, embedder=semantic.Embedder(semantic.Engine.shared(), cache))
    texts = [t for s in base.snippets for t in lawbase.passages(s)]
    shipped = tmp_path / "shipped.npz"
    assert semantic.write_npz(shipped, texts, cache) == len(set(texts))
    offline = semantic.Embedder(None, semantic.Cache(None, [shipped]))
    assert offline.passages(texts) is not None
    assert offline.passages(["一句从没见过的话"]) is None  # nothing cached, nothing to embed it


def test_vectors_made_by_another_model_are_ignored(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, keys=np.array(["k"]), vecs=np.zeros((1, 384)), model=np.array("other"))
    assert semantic.Cache(None, [path]).get_many(["k"]) == {}


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("遭打了咋个整", "被打了怎么整"),
        ("我家老倌", "我家丈夫"),
        ("娃儿不想读书", "孩子辍学"),
        ("離婚後孩子歸誰", "离婚后孩子归谁"),
        ("１３８ＡＢＣ", "138abc"),
    ],
)
def test_dialect_traditional_and_full_width_forms_are_folded(written, folded):
    lexicon = search.Lexicon.read(lawbase_lexicon())
    assert lexicon.fold(written) == folded


def lawbase_lexicon():
    from tests.factories import REAL_CONTENT

    return REAL_CONTENT / "lexicon.toml"


LONG_STORY = (
    "我跟你说嘛，我在外头鞋厂做了三年多了，一直是计件的，老板从来不给我们买社保，"
    "前两个月又说生意不好工资要等到过年才发，我现在想辞职回来带娃娃，"
    "他说辞职就不给最后一个月的工资，这个到底咋个办嘛"
)


def test_a_long_message_is_squeezed_to_its_telling_words_within_the_budget():
    plain = search.normalise(LONG_STORY)
    short = semantic.squeeze(plain)
    assert len(short) <= semantic.QUERY_MAX_CHARS
    for word in ("社保", "工资", "辞职", "不给"):  # the subject and its negation stay
        assert word in short
    assert "咋个办" not in short and "嘛" not in short  # asking words go first
    rest = iter(plain)  # the words keep their order: `short` is a subsequence of the text
    assert all(ch in rest for ch in short)


def test_a_short_message_reaches_the_model_whole():
    assert semantic.squeeze("老板拖欠工资咋个整") == "老板拖欠工资咋个整"


def test_the_shipped_vectors_hold_everything_a_worker_embeds_at_start(tmp_path):
    """A clean install must not spend its first start embedding: `flask --app bot content
    embed` has to be rerun whenever phrasings or the models' examples change."""
    from bot.cli import start_texts
    from tests.factories import REAL_CONTENT, make_app

    app = make_app(tmp_path, REAL_CONTENT)
    texts, examples = start_texts(app)
    shipped = semantic._read_npz(REAL_CONTENT / "embeddings" / "snippets.npz")
    missing = [t for t in texts if semantic.text_key(t) not in shipped]
    missing += [t for t in examples if semantic.text_key(t, query=True) not in shipped]
    assert not missing, f"{len(missing)} texts not shipped, e.g. {missing[:3]}"
