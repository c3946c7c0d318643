"""Retrieval quality on phrasings the index has never seen, and honesty on off-topic questions.

Each snippet's last phrasing is held out of the index (lawbase.load(holdout=True)) and asked;
a set of questions the base must not answer checks that the bot says "I don't know" instead of
citing a loosely related article. Prints the rates that docs/benchmarks.md reports.

    python bench/recall.py [--content content] [--grid]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import answering, lawbase  # noqa: E402

# Questions a township resident might send that the base has no business answering.
OFF_TOPIC = [
    "今天天气怎么样",
    "明天赶集卖猪能卖多少钱",
    "你好",
    "谢谢你",
    "哈哈哈",
    "在吗",
    "红烧肉怎么做好吃",
    "玉米什么时候播种最好",
    "手机怎么连不上wifi",
    "我想买个电视机哪个牌子好",
    "附近哪家饭馆好吃",
    "我家狗狗不吃饭咋办",
    "今年烟叶什么价",
    "怎么减肥",
    "拼多多怎么退款最快",
    "高考志愿怎么填",
    "血压高吃什么药",
    "猪瘟疫苗在哪里打",
    "怎么下载抖音",
    "周末去哪里玩",
    "鸡蛋多少钱一斤",
    "孩子发烧39度怎么办",
    "帮我写一首诗",
    "今天几号",
    "火车票怎么买",
    "怎么种辣椒产量高",
    "茶叶怎么炒",
    "石头剪刀布",
    "你是机器人吗",
    "村里什么时候发大米",
]


def evaluate(base: lawbase.LawBase, office: answering.Office) -> dict[str, float]:
    outcomes: Counter[str] = Counter()
    top1 = top3 = 0
    for s in base.snippets:
        question = s.questions[-1]
        hits = base.search(question, k=3)
        ids = [h.id for h, _ in hits]
        top1 += bool(ids) and ids[0] == s.id
        top3 += s.id in ids
        result = answering.answer(question, base=base, office=office)
        cited = [c["id"] for c in result.citations[:1]] if result.outcome == "answered" else []
        if result.outcome == "answered":
            same_article = base.by_id[cited[0]].citation == s.citation
            outcomes["answered right" if same_article else "answered wrong"] += 1
        elif result.outcome == "choices":
            outcomes[
                "choices with it"
                if s.id in result.choices
                or any(base.by_id[c].citation == s.citation for c in result.choices)
                else "choices without"
            ] += 1
        else:
            outcomes["no answer"] += 1
    n = len(base.snippets)
    off = Counter(answering.answer(q, base=base, office=office).outcome for q in OFF_TOPIC)
    return {
        "snippets": n,
        "top1": top1 / n,
        "top3": top3 / n,
        **{
            k: outcomes[k] / n
            for k in (
                "answered right",
                "answered wrong",
                "choices with it",
                "choices without",
                "no answer",
            )
        },
        "off-topic refused": off["no_answer"] / len(OFF_TOPIC),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--content", default=str(Path(__file__).resolve().parent.parent / "content")
    )
    parser.add_argument("--grid", action="store_true", help="try threshold combinations")
    args = parser.parse_args()
    base = lawbase.load(args.content, holdout=True)
    office = answering.Office("本乡镇司法所")
    if not args.grid:
        report(evaluate(base, office))
        return
    for score, cover, ratio in itertools.product(
        (0.5, 1.0, 2.0, 3.0), (0.35, 0.45, 0.55, 0.65), (0.8, 0.88, 0.95)
    ):
        answering.MIN_SCORE, answering.MIN_COVERAGE, answering.CHOICE_RATIO = score, cover, ratio
        r = evaluate(base, office)
        good = r["answered right"] + r["choices with it"]
        print(
            f"score>={score} coverage>={cover} ratio={ratio}: useful {good:.1%} "
            f"right {r['answered right']:.1%} wrong {r['answered wrong']:.1%} "
            f"none {r['no answer']:.1%} off-topic refused {r['off-topic refused']:.0%}"
        )


def report(r: dict[str, float]) -> None:
    print(f"held-out phrasings: {int(r['snippets'])} (one per snippet, not in the index)")
    print(f"retrieval top-1: {r['top1']:.1%}   top-3: {r['top3']:.1%}")
    for key in (
        "answered right",
        "choices with it",
        "answered wrong",
        "choices without",
        "no answer",
    ):
        print(f"  {key:16s} {r[key]:.1%}")
    print(f"off-topic questions refused honestly: {r['off-topic refused']:.0%} of {len(OFF_TOPIC)}")


if __name__ == "__main__":
    main()
