"""Is someone in danger right now? Recall first: the numbers go on the first line.

A message is scored from cues that generalise rather than one pattern per phrasing:
- hazard cues (what kind of danger: a knife, pesticide, flames, water, a lost child …), each
  hazard with its own numbers, in a registry;
- urgency cues (now, just now, still, come quickly, not breathing, bleeding …);
- distance cues that make the same words harmless (last year, compensation, how is it
  punished, what if, how to prevent, 气死了);
- how the message's characters lean: a naive-Bayes score over character pairs and triples
  (被砍, 没回来, 在打, 去年, 赔多少 …) learnt from the tune half of bench/eval, which catches
  typos and wordings no cue list has;
- when the embedding model is loaded, how close the message is to labelled emergencies and
  to labelled harmless look-alikes (the tune half again; never the held-out half).

A logistic model over these cues, fitted by `bench/calibrate.py` and stored in
`bot/data/emergency.json`, gives one probability; the threshold sits where every tune-half
emergency is caught. When in doubt, the numbers are given: a false alarm costs one line, a
missed emergency costs a life. Nothing here depends on the law base or on retrieval.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DATA = Path(__file__).with_name("data") / "emergency.json"


@dataclass(frozen=True)
class Hazard:
    kind: str
    numbers: tuple[str, ...]  # in the order to call
    cues: re.Pattern[str]


def _cues(*words: str) -> re.Pattern[str]:
    return re.compile("|".join(words))


# Someone's own words of ending their life: a suicide cue, and the `intent` feature below.
SAYS_FAREWELL = (
    r"不想活",
    r"活不下去",
    r"活够了",
    r"一了百了",
    r"今晚就走",
    r"不想拖累",
    r"活着没意思",
    r"交代后事",
    r"遗言",
    r"永别",
)

# Most life-threatening and most specific first: the first hazard whose cues match names the
# numbers. Cues are fragments, so typos around them still match.
HAZARDS: dict[str, Hazard] = {
    h.kind: h
    for h in (
        Hazard(
            "suicide",
            ("120急救", "110报警", "12356心理援助热线"),
            _cues(
                *SAYS_FAREWELL,
                r"自杀",
                r"轻生",
                r"寻短见",
                r"想死",
                r"去死",
                r"跳楼",
                r"跳河",
                r"跳崖",
                r"跳水库",
                r"割腕",
                r"上吊",
                r"烧炭",
                r"安眠药",
                r"遗书",
                r"留了封信",
                r"想不开",
                r"寻死",
            ),
        ),
        Hazard(
            "forest_fire",
            ("119火警", "12119森林火警"),
            _cues(
                r"山火",
                r"森林火",
                r"火烧山",
                r"林子.{0,4}(火|烧|烟)",
                r"山上.{0,6}(火|烧|烟)",
                r"(坡|岭|林|山|荒).{0,6}(着火|起火|失火|烧起来|冒烟|火烧|火势|烧过来)",
                r"烧荒.{0,6}(跑|控制不住|烧过|蔓延|大了)",
                r"火.{0,4}(烧过来|往山上|往林子)",
            ),
        ),
        Hazard(
            "house_fire",
            ("119火警", "120急救"),
            _cues(
                r"着火",
                r"起火",
                r"失火",
                r"火灾",
                r"烧起来",
                r"火烧",
                r"冒烟",
                r"浓烟",
                r"火苗",
                r"火势",
                r"大火",
                r"火.{0,3}(房顶|屋顶|灶房|楼上)",
                r"爆炸",
                r"炸了",
                r"液化气",
                r"煤气罐",
                r"漏气",
                r"泄漏",
                r"火灭不了",
                r"灭不了",
                r"困在",
                r"找火",
                r"着伙",
            ),
        ),
        Hazard(
            "poisoning",
            ("120急救", "110报警"),
            _cues(
                r"农药",
                r"浓药",
                r"百草枯",
                r"敌敌畏",
                r"乐果",
                r"草甘膦",
                r"除草剂",
                r"杀虫",
                r"老鼠药",
                r"耗子药",
                r"鼠药",
                r"中毒",
                r"菌子",
                r"蘑菇",
                r"吐白沫",
                r"口吐",
                r"喝错",
                r"吃错",
                r"误食",
                r"误喝",
                r"一氧化碳",
                r"煤气",
                r"燃气",
                r"烤火",
                r"炭火",
                r"烧炭",
                r"沼气",
                r"地窖",
                r"化粪池",
                r"毒死",
                r"有毒",
                r"药水",
            ),
        ),
        Hazard(
            "scam_in_progress",
            ("110报警", "96110反诈劝阻专线"),
            _cues(
                r"安全账户",
                r"验证码",
                r"屏幕共享",
                r"共享屏幕",
                r"转账",
                r"转帐",
                r"汇款",
                r"自称.{0,6}(公安|警察|民警|法院|检察|客服|领导)",
                r"冒充",
                r"洗钱",
                r"涉嫌",
                r"刷单",
                r"解冻",
                r"保证金",
                r"下载.{0,6}(软件|app|APP)",
                r"会议软件",
                r"通缉",
                r"冻结",
                r"骗子",
                r"诈骗",
                r"被骗",
                r"要我.{0,6}(转|打钱|汇)",
                r"(准备|马上|正在|正要).{0,2}转",
                r"银行柜台",
                r"稳赚不赔",
            ),
        ),
        Hazard(
            "kidnap_extortion",
            ("110报警",),
            _cues(
                r"绑架",
                r"绑走",
                r"绑了",
                r"赎金",
                r"关起来",
                r"关在",
                r"锁在",
                r"不让走",
                r"不准走",
                r"扣着",
                r"扣下",
                r"扣到起",
                r"扣住",
                r"不放人",
                r"关了.{0,3}(天|晚|夜)",
                r"非法拘禁",
                r"传销",
                r"园区",
                r"拿钱赎",
                r"要钱.{0,6}(才放|放人)",
                r"不给钱.{0,6}(就|不放)",
            ),
        ),
        Hazard(
            "child_missing",
            ("110报警",),
            _cues(
                r"(孩子|娃|小孩|儿子|女儿|闺女|姑娘|孙子|孙女|小娃|学生).{0,12}"
                r"(不见|丢了|走丢|找不到|找不着|没回|还没回|没有回|没到家|失踪|被拐|拐走|抱走|跟人走|跑了|离家出走|走散)",
                r"(不见|找不到|没回来).{0,6}(孩子|娃|小孩|儿子|女儿|孙)",
                r"人贩子",
                r"拐卖",
                r"抢孩子",
                r"抱走",
            ),
        ),
        Hazard(
            "sexual_assault",
            ("110报警", "12338妇女维权热线"),
            _cues(r"强奸", r"性侵", r"猥亵", r"非礼", r"扒.{0,3}衣服", r"强行.{0,4}(摸|亲|睡)"),
        ),
        Hazard(
            "robbery",
            ("110报警",),
            _cues(
                r"抢劫",
                r"抢钱",
                r"抢包",
                r"抢手机",
                r"打劫",
                r"抢走",
                r"抢东西",
                r"入室",
                r"撬门",
                r"撬锁",
                r"砸窗",
                r"偷牛",
                r"偷猪",
                r"小偷.{0,6}(在|还|正)",
                r"有贼",
                r"进贼",
            ),
        ),
        Hazard(
            "domestic_violence",
            ("110报警", "12338妇女维权热线"),
            _cues(
                r"(丈夫|老公|老倌|男人|老汉|媳妇|老婆|婆娘|儿子|女婿|公公|婆婆|继父|后爹|后妈|前夫|家里人|爸|爹|妈)"
                r".{0,10}(打|砍|捅|掐|拿刀|拿斧|拿棍|动手|要杀|弄死|揍|踢|勒|吼)",
                r"家暴",
                r"家爆",
            ),
        ),
        Hazard(
            "violence",
            ("110报警", "120急救"),
            _cues(
                r"动刀",
                r"拿刀",
                r"菜刀",
                r"砍刀",
                r"刀子",
                r"持刀",
                r"捅",
                r"砍",
                r"斧头",
                r"锄头",
                r"镰刀",
                r"钢管",
                r"棍子",
                r"棍棒",
                r"板凳",
                r"拿枪",
                r"火药枪",
                r"猎枪",
                r"杀人",
                r"要杀",
                r"弄死",
                r"打死",
                r"砸死",
                r"打人",
                r"打我",
                r"在打",
                r"打起来",
                r"打架",
                r"群殴",
                r"围.{0,3}打",
                r"追着打",
                r"揍",
                r"踢门",
                r"堵.{0,4}门",
                r"威胁",
                r"扬言",
                r"报复",
                r"泼汽油",
                r"硫酸",
            ),
        ),
        Hazard(
            "drowning",
            ("120急救", "119应急救援", "110报警"),
            _cues(
                r"溺水",
                r"淹",
                r"落水",
                r"掉.{0,4}(河|水|塘|井|池|坝|沟|江|湖|库)",
                r"(河|水|塘|井|池|坝|江|湖|库|海).{0,6}(没上来|没起来|冲走|沉下|下去了|漂)",
                r"冲走",
                r"游泳.{0,8}(没|不见|沉)",
                r"洪水",
                r"涨水",
            ),
        ),
        Hazard(
            "electrocution",
            ("120急救", "95598供电抢修"),
            _cues(
                r"触电",
                r"电到",
                r"电打",
                r"被电",
                r"遭电",
                r"电线.{0,6}(掉|断|搭|挂)",
                r"漏电",
                r"高压线",
                r"电击",
            ),
        ),
        Hazard(
            "landslide_flood",
            ("119应急救援", "120急救", "110报警"),
            _cues(
                r"滑坡",
                r"泥石流",
                r"塌方",
                r"垮塌",
                r"垮了",
                r"塌了",
                r"倒塌",
                r"房子倒",
                r"墙倒",
                r"埋",
                r"压在下面",
                r"压住",
                r"山洪",
                r"洪水",
                r"涨大水",
                r"水漫",
                r"冲垮",
                r"地震",
                r"冒顶",
                r"矿井",
                r"困住",
            ),
        ),
        Hazard(
            "traffic",
            ("122交通事故报警", "120急救", "110报警"),
            _cues(
                r"车祸",
                r"撞",
                r"装了",
                r"翻车",
                r"车翻",
                r"翻了",
                r"侧翻",
                r"翻到",
                r"掉下",
                r"(车|摩托|三轮|拖拉机|面包车|货车|大车|电瓶车).{0,10}(翻|滚|冲|掉|压|碾|倒)",
                r"躺在路",
                r"倒在路",
                r"压到",
                r"碾",
                r"肇事",
                r"逃逸",
                r"追尾",
            ),
        ),
        Hazard(
            "animal",
            ("120急救",),
            _cues(
                r"蛇",
                r"狗.{0,4}(咬|扑)",
                r"咬伤",
                r"咬了",
                r"野猪",
                r"马蜂",
                r"胡蜂",
                r"蜂子",
                r"蜇",
                r"牛.{0,4}(顶|撞|踩)",
                r"熊",
                r"疯狗",
                r"狂犬",
            ),
        ),
        Hazard(
            "fall",
            ("120急救",),
            _cues(
                r"摔",
                r"跌",
                r"掉下来",
                r"掉下去",
                r"坠",
                r"从.{0,8}(上|顶).{0,4}(掉|落|摔)",
                r"脚手架",
                r"房顶",
                r"悬崖",
                r"坎下",
                r"崖下",
            ),
        ),
        Hazard(
            "child_hurt",
            ("120急救", "110报警", "12355青少年服务台"),
            _cues(
                r"(孩子|娃|小孩|儿子|女儿|孙子|孙女|婴儿|宝宝|学生).{0,10}(伤|血|烫|烧|卡|噎|咽|吞|昏|晕|不动|打|抽)"
            ),
        ),
        Hazard(
            "sudden_illness",
            ("120急救",),
            _cues(
                r"晕倒",
                r"昏倒",
                r"昏迷",
                r"晕过去",
                r"昏过去",
                r"不省人事",
                r"叫不醒",
                r"喊不醒",
                r"喊不应",
                r"没气",
                r"没呼吸",
                r"没有呼吸",
                r"突然倒",
                r"喘不过",
                r"喘不上",
                r"呼吸困难",
                r"不动了",
                r"抽搐",
                r"抽筋",
                r"羊癫疯",
                r"口吐白沫",
                r"心脏",
                r"胸口疼",
                r"胸口痛",
                r"中风",
                r"脑溢血",
                r"半边",
                r"嘴歪",
                r"流血",
                r"大出血",
                r"血止不住",
                r"出血",
                r"要生了",
                r"羊水",
                r"破水",
                r"难产",
                r"发高烧",
                r"烧到四十",
                r"噎住",
                r"卡住",
                r"脸发紫",
                r"嘴唇发紫",
                r"倒在地",
                r"倒地",
                r"不行了",
                r"快死",
                r"要死了",
            ),
        ),
    )
}

# Danger happening now or just now, and calls for help.
URGENT = _cues(
    r"救命",
    r"救救",
    r"快来",
    r"快点",
    r"赶紧",
    r"赶快",
    r"快报警",
    r"快叫",
    r"来人",
    r"帮帮",
    r"正在",
    r"在打",
    r"还在",
    r"现在",
    r"刚刚",
    r"刚才",
    r"马上",
    r"眼看",
    r"越来越",
    r"一直",
    r"怎么办",
    r"咋个办",
    r"咋办",
    r"咋整",
    r"咋个整",
    r"怎么弄",
    r"急",
    r"吓死",
    r"求求",
    r"了$",
    r"了[!！。]*$",
    r"[!！]",
    r"还没",
    r"到现在",
    r"天都黑",
    r"晚上了",
    r"半夜",
    r"今晚",
    r"快说",
    r"没电了",
)
# The same words, kept at a distance: the past, the law, what-ifs, prevention, figures of speech.
PAST = _cues(
    r"去年",
    r"前年",
    r"上个月",
    r"上月",
    r"上周",
    r"上星期",
    r"上礼拜",
    r"前几天",
    r"前些天",
    r"以前",
    r"之前",
    r"那年",
    r"那次",
    r"当年",
    r"小时候",
    r"年前",
    r"个月前",
    r"天前",
    r"后来",
    r"已经.{0,4}(出院|好了|处理|判|赔|结案|过去|埋|下葬)",
    r"当时",
    r"早就",
)
LEGAL = _cues(
    r"赔",
    r"赔偿",
    r"判",
    r"坐牢",
    r"犯法",
    r"违法",
    r"犯罪",
    r"法律",
    r"规定",
    r"起诉",
    r"告",
    r"报销",
    r"保险",
    r"责任",
    r"处罚",
    r"罚款",
    r"拘留",
    r"离婚",
    r"抚养",
    r"继承",
    r"遗产",
    r"工伤",
    r"认定",
    r"补偿",
    r"索赔",
    r"维权",
    r"律师",
    r"法院",
    r"追究",
    r"算不算",
    r"能不能",
    r"可不可以",
    r"格能",
    r"要不要",
    r"有没有用",
    r"怎么处理",
    r"哪个部门",
    r"几年",
    r"多少钱",
    r"退钱",
    r"退回",
    r"追回",
    r"要回",
)
# Asking whom to call: in an emergency ("着火了 119还是110", "娃娃不见了找哪个") as often as
# after one ("山火烧了我家林子找哪个赔"); the other cues and the examples decide which.
ASKS_HELP = _cues(
    r"找哪个",
    r"找谁",
    r"喊哪个",
    r"叫哪个",
    r"哪个管",
    r"谁管",
    r"打哪个",
    r"打啥子",
    r"打什么电话",
    r"打几号",
    r"电话",
    r"号码",
    r"(110|119|120|122)还是",
    r"打(110|119|120|122|12119)",
    r"报警",
)
WHAT_IF = _cues(
    r"如果",
    r"万一",
    r"假如",
    r"要是",
    r"假设",
    r"预防",
    r"防止",
    r"怎么防",
    r"咋个防",
    r"注意",
    r"小心",
    r"提醒",
    r"宣传",
    r"知识",
    r"培训",
    r"演练",
    r"应该怎么做",
    r"该怎么做",
    r"要注意",
    r"听说",
    r"新闻",
    r"电视",
    r"视频里",
    r"网上",
    r"别人家",
    r"隔壁村",
    r"据说",
    r"怕",
)
FIGURATIVE = _cues(
    r"笑得",
    r"笑惨",
    r"吓死我",
    r"火烧眉毛",
    r"气死",
    r"饿死",
    r"笑死",
    r"累死",
    r"热死",
    r"冷死",
    r"困死",
    r"烦死",
    r"忙死",
    r"痛死",
    r"穷死",
    r"要命",
    r"吓死人",
    r"急死",
    r"想死你",
    r"死贵",
    r"死活",
    r"死板",
    r"死心",
)

# Someone saying they mean to end their life: first person and present by nature, so the
# legal or asking framing around it ("我走了以后欠的钱家里要还不") is no distance at all.
INTENT = _cues(*SAYS_FAREWELL, r"想死(?!你|人|了你)", r"药都买好", r"绳子都")

FEATURES = (
    "hazard",
    "intent",
    "hazards",
    "urgent",
    "past",
    "legal",
    "what_if",
    "figurative",
    "question",
    "short",
    "asks_help",
    "knn",
    "grams",
)


@dataclass(frozen=True)
class Emergency:
    kind: str
    numbers: tuple[str, ...]  # "110报警" … in the order to call
    probability: float
    firm: bool = True  # False: maybe an emergency; the numbers are offered, not urged


def hazard_of(text: str) -> Hazard | None:
    for hazard in HAZARDS.values():
        if hazard.cues.search(text):
            return hazard
    return None


def grams(text: str) -> set[str]:
    """Character pairs and triples of a message, spaces, punctuation and digits dropped, and
    the asking-whom-to-call words too (a feature of their own): a phone number or "司法所电话
    是多少" must not lean like "着火了打哪个电话"."""
    t = re.sub(r"[\s\W_\d]+", "", ASKS_HELP.sub(" ", text))
    return {t[i : i + n] for n in (2, 3) for i in range(len(t) - n + 1)}


def gram_score(text: str, table: dict[str, float]) -> float:
    """Mean naive-Bayes log-odds (emergency vs not) of the message's known character grams."""
    values = [table[g] for g in grams(text) if g in table]
    return sum(values) / len(values) if values else 0.0


def features(text: str, knn: float = 0.0, gram: float = 0.0) -> dict[str, float]:
    """The cues of one (normalised) message, as numbers for the logistic model."""
    hits = sum(1 for h in HAZARDS.values() if h.cues.search(text))
    return {
        "hazard": float(hits > 0),
        "hazards": float(min(hits, 3)),
        "intent": float(bool(INTENT.search(text))),
        "urgent": float(min(len(URGENT.findall(text)), 3)),
        "past": float(min(len(PAST.findall(text)), 2)),
        "legal": float(min(len(LEGAL.findall(text)), 3)),
        "what_if": float(min(len(WHAT_IF.findall(text)), 2)),
        "figurative": float(bool(FIGURATIVE.search(text))),
        "question": float(bool(re.search(r"[?？吗嘛不]$|[?？]", text))),
        "short": float(len(text) <= 8),
        "asks_help": float(hits > 0 and bool(ASKS_HELP.search(text))),  # with a danger
        "knn": knn,
        "grams": gram,
    }


class Detector:
    """The fitted model, and the labelled tune-half examples it compares messages with."""

    def __init__(self, data: dict[str, Any], example_vectors: np.ndarray | None = None):
        # Without example vectors (no embedding model) the cues-only fit is used: its own
        # weights and thresholds, fitted without the neighbours' feature.
        model = data["cues_only"] if example_vectors is None and "cues_only" in data else data
        self.weights = np.array([model["weights"].get(f, 0.0) for f in FEATURES], dtype=np.float64)
        self.bias = float(model["bias"])
        self.threshold = float(model["threshold"])
        self.firm = float(model.get("firm", model["threshold"]))
        self.examples = data.get("examples", [])
        self.grams: dict[str, float] = data.get("grams", {})
        self.labels = np.array([e["emergency"] for e in self.examples], dtype=bool)
        self.vectors = example_vectors

    @classmethod
    def load(cls, embedder: Any = None, path: Path = DATA) -> Detector:
        data = json.loads(path.read_text(encoding="utf-8"))
        vectors = None
        if embedder is not None and data.get("examples"):
            vectors = embedder.queries([e["text"] for e in data["examples"]])
        return cls(data, vectors)

    @classmethod
    def rules_only(cls) -> Detector:
        """Hand-set weights, for when the fitted model cannot be read: cues alone."""
        weights = {f: 0.0 for f in FEATURES}
        weights.update(hazard=2.5, hazards=0.5, urgent=1.0, past=-2.0, legal=-1.0)
        weights.update(what_if=-1.5, figurative=-2.5, question=-0.5)
        return cls({"weights": weights, "bias": -2.0, "threshold": 0.3, "firm": 0.6})

    def knn(self, qvec: np.ndarray | None, *, k: int = 10, exclude: int | None = None) -> float:
        """Mean cosine to the k nearest emergencies minus that to the k nearest look-alikes."""
        if qvec is None or self.vectors is None or not len(self.labels):
            return 0.0  # the cues-only weights have no say for it
        sims = self.vectors @ qvec
        if exclude is not None:
            sims = sims.copy()
            sims[exclude] = np.nan
        pos = np.sort(np.nan_to_num(sims[self.labels], nan=-1.0))[::-1][:k]
        neg = np.sort(np.nan_to_num(sims[~self.labels], nan=-1.0))[::-1][:k]
        return float(pos.mean() - neg.mean()) * 10.0

    def probability(self, text: str, knn: float) -> float:
        feats = features(text, knn, gram_score(text, self.grams))
        x = np.array([feats[f] for f in FEATURES], dtype=np.float64)
        z = float(self.weights @ x + self.bias)
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def nearest_hazard(self, qvec: np.ndarray | None) -> str | None:
        if qvec is None or self.vectors is None or not self.labels.any():
            return None
        sims = np.where(self.labels, self.vectors @ qvec, -2.0)
        return self.examples[int(np.argmax(sims))].get("hazard")

    def detect(self, text: str, qvec: np.ndarray | None = None) -> Emergency | None:
        """The emergency `text` describes, or None; `text` is already normalised."""
        p = self.probability(text, self.knn(qvec))
        if p < self.threshold:
            return None
        hazard = hazard_of(text)
        if hazard is None:
            kind = self.nearest_hazard(qvec)
            hazard = HAZARDS.get(kind or "")
        firm = p >= self.firm
        if hazard is None:
            return Emergency("other", ("110报警", "120急救", "119火警"), p, firm)
        return Emergency(hazard.kind, _numbers(hazard, text), p, firm)


def _numbers(hazard: Hazard, text: str) -> tuple[str, ...]:
    """The hazard's numbers, plus those another matching hazard adds (a fire with injuries)."""
    numbers = list(hazard.numbers)
    for other in HAZARDS.values():
        if other is not hazard and other.cues.search(text):
            for n in other.numbers[:1]:
                if n not in numbers:
                    numbers.append(n)
    return tuple(numbers[:4])
