"""jieba's data read from our own pickles: the same words, a private file, a broken file survived."""

from __future__ import annotations

import logging
import stat

import pytest

from bot import segmentation
from bot.segmentation import jieba

SENTENCE = "老板拖欠农民工工资半年了，宅基地也被村里收回去了，咋个整"


@pytest.fixture
def fresh(monkeypatch):
    """A process that has read nothing yet."""
    monkeypatch.setattr(segmentation, "_LOADED", {})


def _jieba_own() -> list[str]:
    tok = jieba.Tokenizer()
    tok.initialize()
    return list(tok.cut_for_search(SENTENCE))


def test_a_cached_dictionary_cuts_exactly_as_jiebas_own(tmp_path, fresh, monkeypatch):
    first = segmentation.tokenizer(tmp_path)
    assert list(first.cut_for_search(SENTENCE)) == _jieba_own()
    (pickle_file,) = tmp_path.glob("jieba-dictionary-*.pickle")
    assert stat.S_IMODE(pickle_file.stat().st_mode) == 0o600  # never world-readable

    # A second process reads the pickle and never builds the dictionary again.
    monkeypatch.setattr(segmentation, "_LOADED", {})
    monkeypatch.setattr(segmentation, "_build_dictionary", lambda: pytest.fail("rebuilt"))
    second = segmentation.tokenizer(tmp_path)
    assert list(second.cut_for_search(SENTENCE)) == _jieba_own()


def test_words_added_to_one_tokenizer_stay_in_it(tmp_path, fresh):
    mine = segmentation.tokenizer(tmp_path)
    mine.add_word("咋个整", freq=20000)
    assert "咋个整" in list(mine.cut(SENTENCE))
    assert "咋个整" not in list(segmentation.tokenizer(tmp_path).cut(SENTENCE))
    assert "咋个整" not in list(segmentation.tokenizer(shared=True).cut(SENTENCE))


def test_a_broken_cache_file_is_rebuilt_with_a_warning(tmp_path, fresh, caplog):
    segmentation.tokenizer(tmp_path)
    (pickle_file,) = tmp_path.glob("jieba-dictionary-*.pickle")
    pickle_file.write_bytes(b"not a pickle")
    segmentation._LOADED.clear()
    with caplog.at_level(logging.WARNING, logger="bot.segmentation"):
        tok = segmentation.tokenizer(tmp_path)
    assert "unreadable" in caplog.text
    assert list(tok.cut_for_search(SENTENCE)) == _jieba_own()
    segmentation._LOADED.clear()
    assert list(segmentation.tokenizer(tmp_path).cut(SENTENCE)) == list(tok.cut(SENTENCE))


def test_the_idf_table_is_jiebas_and_is_kept_beside_the_dictionary(tmp_path, fresh):
    segmentation.tokenizer(tmp_path)  # a worker's law base names the folder
    table, median = segmentation.idf()
    assert list(tmp_path.glob("jieba-idf-*.pickle"))
    path = segmentation._idf_file()
    first = path.read_text(encoding="utf-8").splitlines()[0].split(" ")
    assert table[first[0]] == float(first[1])
    assert 5.0 < median < 15.0
