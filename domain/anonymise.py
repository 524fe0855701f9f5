"""Masking for the promotion council's view. Every text field of a sampled case goes through `Masker` before a
council member sees it: names (with or without an honorific, in kanji, kana or romaji), e-mail addresses (also
written `at … dot`), phone numbers (also in kanji digits or kana words), postal codes and addresses (also with
丁目・番・号 in kanji numerals), stations and buildings, companies and departments, schools and classes, URLs
(also shortened), SNS handles (with or without @), LINE IDs, IP addresses, My Number, licence plates, birth
dates, bank and card numbers and other ID numbers. The masks keep the kind of what was removed (［電話番号］), so
the case stays readable; full dates left in the text are coarsened to the month.

Proper nouns come from a morphological analyser behind the `ProperNouns` port (infra/morphology.py adapts
SudachiPy); the patterns below catch the rest and also work without it. The rule is: when unsure, mask. How well
this works is measured, not hoped for: tests/bench/masking_eval.py prints recall and precision per kind on the
annotated texts in tests/masking_eval/, and tests/unit/test_masking_eval.py holds the held-out recall floor."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from domain.disclosure import protect_counts
from domain.text import nfkc

MASKS = {
    "email": "［メールアドレス］",
    "url": "［URL］",
    "phone": "［電話番号］",
    "postal": "［郵便番号］",
    "address": "［住所］",
    "line_id": "［LINE ID］",
    "account": "［アカウントID］",
    "name": "［氏名］",
    "organisation": "［勤務先・団体］",
    "school": "［学校］",
    "ip": "［IPアドレス］",
    "my_number": "［個人番号］",
    "plate": "［車両番号］",
    "birth_date": "［生年月日］",
    "bank": "［口座・カード番号］",
    "id_number": "［証明書番号］",
}
KINDS = tuple(MASKS)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: str


class ProperNouns(Protocol):
    """A Japanese morphological analyser: where `text` names a person ("name"), a place ("address") or an
    organisation ("organisation"). Offsets are character offsets into `text`."""

    def find(self, text: str) -> list[Span]: ...

    def is_common(self, word: str) -> bool:
        """True when `word` is an ordinary word of the language (写真, 勝手, アカウント), not a name."""
        ...


# -- character classes ------------------------------------------------------------------------------------

KANJI = r"\u4e00-\u9fff々〆ヶ"
KATA = r"\u30a1-\u30fa\u30fc"
HIRA = r"\u3041-\u3096"
K = f"[{KANJI}]"
KN = f"[{KANJI}{KATA}]"
ASCII_PATH = r"[A-Za-z0-9._~:/?#\[\]@!$&'*+,;=%-]"
NOT_ASCII_BEFORE = r"(?<![A-Za-z0-9_.@/:#%+-])"
NOT_ASCII_AFTER = r"(?![A-Za-z0-9_])"

PREFECTURES = (
    "北海道|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|東京都|神奈川県|新潟県|富山県|"
    "石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|京都府|大阪府|兵庫県|奈良県|和歌山県|鳥取県|島根県|"
    "岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)

# NFKC leaves the minus sign and long-vowel marks that IMEs put between digits (０９０−１２３４).
DASH_BETWEEN_DIGITS = re.compile(
    r"(?<=[\d〇一二三四五六七八九])[\u2010-\u2015\u2212\u30fc\uff70\uff0d](?=[\d〇一二三四五六七八九])"
)
# Kanji digits read as ASCII digits, one character for one, so offsets stay valid (〇九〇 → 090): a run of them
# that stands as a number (three or more, or before 丁目・番・号・条 or a separator), not 三 in 三軒茶屋 or 一 in 一郎.
KANJI_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
KANJI_NUMBER = re.compile(
    r"[〇零一二三四五六七八九]{3,}|[〇零一二三四五六七八九]+(?=十|丁目|番|号|条|[-・.,、\s]|$)"
)


def _digits(text: str) -> str:
    return KANJI_NUMBER.sub(lambda m: m.group(0).translate(KANJI_DIGITS), text)


def normalise(text: str) -> str:
    """What the masker works on (and what the evaluation compares against): NFKC, dashes between digits made
    ASCII hyphens."""
    return DASH_BETWEEN_DIGITS.sub("-", nfkc(text))


# -- patterns ---------------------------------------------------------------------------------------------
# Each rule is (kind, pattern, group, on_digits): `group` is the part masked (0 = the whole match); rules with
# on_digits run on the copy of the text whose kanji digits are ASCII, so 〇九〇 is a phone number like 090.

Rule = tuple[str, re.Pattern[str], int, bool]

AT = r"\s*(?:@|[\[(<【]\s*(?:at|アット|あっと)\s*[\])>】]|\sat\s|アットマーク|アット|あっと)\s*"
DOT = r"\s*(?:\.|[\[(<【]\s*(?:dot|ドット|どっと)\s*[\])>】]|\sdot\s|ドット|どっと)\s*"
TLDS = (
    r"com|net|org|jp|ly|co|to|gd|io|me|info|biz|xyz|top|link|gl|be|cc|tv|app|dev|site|online|shop|blog|page|"
    r"fm|ee|asia|tokyo|us|uk|cn|kr|tw|ru|de|fr|club|live|work|fun|icu|vip|so"
)
DIGIT_WORD = (
    r"ゼロ|ぜろ|レイ|れい|マル|まる|イチ|いち|ニー|にー|ニイ|にい|ニ|に|サン|さん|ヨン|よん|シ|し|ゴー|ごー|ゴオ|ごお|ゴ|ご|"
    r"ロク|ろく|"
    r"ナナ|なな|シチ|しち|ハチ|はち|キュウ|きゅう|キュー|きゅー|ク|く|zero|one|two|three|four|five|six|seven|"
    r"eight|nine|oh|[0-9]"
)
DATE = (
    r"(?:(?:19|20)\d{2}|(?:昭和|平成|令和|[SHR])\s?(?:\d{1,2}|元))\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"
    r"|(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}"
)
N = r"[\d十百千]+"
BLOCK = (
    rf"{N}\s?(?:丁目|番町)(?:\s?{N}(?:\s?(?:番地?|-)(?:\s?{N}\s?号?(?:-{N})?)?)?)?"
    rf"|{N}\s?番地?(?:\s?{N}\s?号?)?"
    r"|[1-9]\d{0,3}-\d{1,4}(?:-\d{1,4})?(?![\d-])"
)
AREA = f"[{KANJI}{KATA}ノ]"
BUILDING_WORDS = (
    r"コーポ|メゾン|ハイツ|レジデンス|ヴィラ|ビラ|コート|パレス|ハウス|ヒルズ|タワー|テラス|ルネ|ライオンズ|"
    r"パークサイド|パーク|シャトー|グランド|アーバン|ドミール|プラザ|リバーサイド"
)
ROOM = r"(?:\s?\d{1,4}(?:号室|号|階|F)?)?"
BUILDING = (
    rf"(?:[{KATA}・A-Za-z]*(?:{BUILDING_WORDS})[{KANJI}{KATA}・A-Za-zのが]{{1,10}}"
    rf"|[{KANJI}{KATA}]{{2,10}}(?:マンション|アパート|ハイツ|荘|寮)){ROOM}"
)
CORP = (
    r"株式会社|有限会社|合同会社|合資会社|一般社団法人|公益社団法人|一般財団法人|公益財団法人|社会福祉法人|"
    r"医療法人(?:社団)?|学校法人|宗教法人|NPO法人|特定非営利活動法人|\(株\)|\(有\)|㈱|㈲"
)
ORG = f"[{KANJI}{KATA}・A-Za-z0-9&]"
ORG_SUFFIX = (
    r"株式会社|有限会社|合同会社|ホールディングス|商事|商会|商店|工業|産業|製作所|建設|工務店|物産|物流|不動産|銀行|"
    r"信用金庫|信金|信用組合|証券|生命|損保|総合病院|病院|クリニック|医院|歯科|診療所|整骨院|接骨院|薬局|法律事務所|"
    r"会計事務所|事務所|電機|電気|精機|精工|運輸|運送|食品|出版|印刷|技研|システムズ|ホテル|旅館|書店|塗装店|美容室|"
    r"ゼミナール|保育園|電設|設備|工業所|興業|通信|製菓|酒造|ショウテン|ショウジ|コウギョウ|医療センター|センター|本店|支店|支社|営業所|工場|店|校"
)
DEPARTMENT = (
    rf"(?<![{KANJI}{KATA}])(?!(?:一|全|外|内|幹|細|上|下|前|後|南|北|東|西|中|頭|胸|腹|局|陰|恥|患|暗|残|各|本|"
    r"大|学|日|課|係)(?:部|課|係))"
    rf"{KN}{{1,10}}?(?:事業部|本部|学部|学科|部|課|係|支店|支社|営業所|工場|病棟)(?![{KANJI}])"
    rf"|{KN}{{2,8}}室(?![{KANJI}])"
)
SCHOOL_SUFFIX = (
    r"高等専門学校|高等学校|小学校|中学校|専門学校|短期大学|大学院|女学院|女学校|附属高校|附属中学|"
    r"大学|短大|高専|高校|中学|学園|学院|幼稚園|小学"
)
RELATIONS = (
    r"元彼氏|元彼女|元カレ|元カノ|元彼|元夫|元妻|元恋人|元交際相手|元パートナー|交際相手|恋人|彼氏|彼女|夫|妻|旦那|嫁|"
    r"加害者|犯人|相手|投稿者|配信者|出品者|同僚|元同僚|上司|元上司|部下|先輩|後輩|友人|友達|知人|同級生|元同級生|"
    r"担任|担当ホスト|担当|YouTuber|ユーチューバー|インフルエンサー|ホスト|店長|課長|部長|社長|係長|主任|教授|講師|コーチ|監督|大家|隣人|近所|ママ友|義母|義父|"
    r"兄|姉|弟|妹|娘|息子|母|父|祖母|祖父|いとこ|おじ|おば|クラス|部|班|[0-9]年|年生"
)
NAME_WORDS = r"名前|氏名|本名|実名|芸名|表示名|投稿者名|ニックネーム|あだ名|ハンドルネーム|下の名前"
NOT_NAMES = frozenset(
    "知人 友人 友達 同僚 上司 部下 先輩 後輩 男性 女性 誰 不明 匿名 本人 私 僕 俺 自分 相手 家族 夫 妻 母 父 娘 息子 "
    "兄 姉 弟 妹 皆 奥 客 旦那 子 赤 店員 運転手 大家 警察 業者 担任 相談員 弁護士 先生 お母 お父 お姉 お兄 おじ おば "
    "同級生 生徒 学生 社員 会社 職場 近所 隣 元彼 元夫 元妻 彼 彼氏 彼女 恋人 夫婦 親 両親 親族 他人 別人 一人 二人 "
    "全員 犯人 加害者 被害者 投稿者 配信者 視聴者 出品者 男 女 人 方 者 誰か 複数 多数 同じ 前 後 元 今 毎日 "
    "息 娘さ お客 担当 店長 部長 課長 社長 主任 教授 講師 監督 コーチ 義母 義父 祖母 祖父 いとこ クラス 部 班 "
    "事実 本当 嘘 無関係 関係 未成年 中学生 高校生 大学生 小学生 子ども 子供 ストーカー 知らない人 知り合い "
    "インスタ X ツイッター LINE ライン TikTok YouTube Facebook Instagram フェイスブック ユーチューブ 爆サイ "
    "です でした だった".split()
)
ROMAJI_SYLLABLE = r"(?:[kgsztdnhbpmrfjwy]?y?[aiueo]|sh[aiueo]?|ch[aiueo]?|ts[u]|n|kk|tt|pp|ss|h)"
ROMAJI_WORD = re.compile(rf"(?:{ROMAJI_SYLLABLE})+", re.IGNORECASE)
NOT_ROMAJI_NAMES = frozenset(
    "line id sns url dm x ok ng pdf sms ip ol usb pc tv google apple amazon microsoft facebook instagram youtube "
    "tiktok twitter yahoo discord telegram threads note hair salon fitness club the and of japan tokyo osaka ".split()
)


def _c(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


# ひまわり保育園 after の or at the start of a word, never 子ども|の保育園.
HIRAGANA_ORG = _c(
    rf"(?:(?<=の)|(?<![{KANJI}{HIRA}]))(?:(?!の)[{HIRA}]){{2,6}}(?:保育園|幼稚園|病院|総合病院|クリニック|薬局|商店|食堂)"
)

RULES: list[Rule] = [
    (
        "email",
        _c(rf"[A-Za-z0-9._%+-]+{AT}[A-Za-z0-9-]+(?:{DOT}[A-Za-z0-9-]+)*{DOT}[A-Za-z]{{2,}}", re.I),
        0,
        False,
    ),
    ("url", _c(rf"(?:h?[tx]{{1,2}}ps?|ftp)://{ASCII_PATH}+", re.I), 0, False),
    ("url", _c(rf"www\.{ASCII_PATH}+", re.I), 0, False),
    (
        "url",
        _c(rf"{NOT_ASCII_BEFORE}(?:[A-Za-z0-9-]+\.)+(?:{TLDS})(?![A-Za-z0-9-])(?:/{ASCII_PATH}*)?", re.I),
        0,
        False,
    ),
    ("ip", _c(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), 0, False),
    ("ip", _c(r"(?<![0-9A-Za-z:])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){3,7}(?![0-9A-Za-z:])"), 0, False),
    ("line_id", _c(r"line\s*id\s*[:は]?\s*@?([A-Za-z0-9._-]{3,30})", re.I), 1, False),
    (
        "line_id",
        _c(
            r"(?:LINE|ライン)\s*(?:の\s*)?(?:ID|アイディー?)?\s*(?:は|が|を|:|に)?\s*(?!line\s*id)@?([A-Za-z0-9._-]{3,30})",
            re.I,
        ),
        1,
        False,
    ),
    ("account", _c(r"(?<![A-Za-z0-9._%+-])@[A-Za-z0-9_.]{2,30}(?<!\.)"), 0, False),
    ("account", _c(rf"{NOT_ASCII_BEFORE}[A-Za-z0-9_.]{{2,32}}#\d{{4}}(?!\d)"), 0, False),
    (
        "account",
        _c(
            r"(?:アカウント|アカ|ユーザー?名|ユーザー?ID|ハンドル|ID|インスタ|Instagram|Twitter|ツイッター|TikTok|"
            r"Telegram|Discord|Threads|名義)\s*(?:名|ID)?\s*(?:は|が|の|:)?\s*[「(]?\s*@?([A-Za-z0-9_.]{3,30})",
            re.I,
        ),
        1,
        False,
    ),
    (
        "account",
        _c(
            rf"{NOT_ASCII_BEFORE}(?:[A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)+|[A-Za-z]{{3,}}\d{{2,}}[A-Za-z0-9]*)"
            rf"{NOT_ASCII_AFTER}"
        ),
        0,
        False,
    ),
    (
        "account",
        _c(r"(?:アカウント名|ユーザー?名|表示名|ハンドルネーム)\s*(?:は|が|の|:)?\s*「([^」]{1,30})」"),
        1,
        False,
    ),
    ("bank", _c(r"(?<![\d-])\d{4}[-\s]?\d{4}[-\s]?\d{4}[-\s]?\d{4}(?![\d-])"), 0, True),
    ("bank", _c(r"記号\s*\d{5}\s*-?\s*番号\s*\d{6,8}"), 0, True),
    ("bank", _c(r"(?<![\d-])\d{5}-\d{7,8}(?![\d-])"), 0, True),  # ゆうちょ: 記号-番号
    (
        "bank",
        _c(r"(?:口座番号|口座|普通預金|普通|当座)\s*(?:は|:)?\s*(?:No\.?)?\s*(\d{6,8})(?![\d-])"),
        1,
        True,
    ),
    (
        "id_number",
        _c(
            r"(?:免許証?|パスポート|旅券|保険証|在留カード)[^。\n]{0,12}?(?:番号)?\s*(?:は|:)?\s*第?\s*([A-Z]{0,2}\s?\d[\d\s-]{5,14}\d)"
        ),
        1,
        True,
    ),
    ("id_number", _c(r"(?<![A-Za-z0-9])[A-Z]{2}\d{7}(?![0-9])"), 0, False),
    ("my_number", _c(r"(?<![\d-])\d{4}[-\s]?\d{4}[-\s]?\d{4}(?![\d-])"), 0, True),
    (
        "birth_date",
        _c(
            rf"(?:生年月日|誕生日|生まれ|DOB|birthday)[^。\n\d]{{0,8}}({DATE}|\d{{1,2}}\s?月\s?\d{{1,2}}\s?日)"
            rf"|({DATE})\s?(?:生まれ|生|産まれ)",
            re.I,
        ),
        -1,
        True,
    ),
    ("birth_date", _c(r"(?:昭和|平成|[SH])\s?(?:\d{1,2}|元)\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"), 0, True),
    ("birth_date", _c(r"(?:19[0-9]{2}|200[0-9])\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"), 0, True),
    (
        "phone",
        _c(
            r"(?<![\d-])(?:\+81[-\s]?|\(?0)\d{1,4}\s*(?:[-\s()・.、]|の)?\s*\d{1,4}\s*(?:[-\s()・.、]|の)?\s*\d{3,4}(?![\d-])|#\d{4}"
        ),
        0,
        True,
    ),
    ("phone_words", _c(rf"(?:{DIGIT_WORD})(?:[\s、・,.-]*(?:{DIGIT_WORD})){{9,12}}", re.I), 0, True),
    ("postal", _c(r"〒\s*\d{3}-?\d{4}|(?<![\d-])\d{3}-\d{4}(?![\d-])"), 0, True),
    (
        "plate",
        _c(
            rf"(?:{K}{{1,4}}|[{KATA}]{{2,5}}|[{HIRA}]{{2,4}})\s?\d{{2,3}}\s?[{HIRA}]\s?(?:\d{{1,2}}-\d{{2}}|\d{{2,4}}|[・.]{{1,3}}\d{{1,3}})(?![\d])"
        ),
        0,
        True,
    ),
    ("plate", _c(r"ナンバー\s*(?:は|:)?\s*(\d{1,2}-\d{2})"), 1, True),
    (
        "address",
        _c(
            rf"(?:{PREFECTURES}){AREA}{{0,20}}?(?:{N}条{AREA}{{0,4}})?(?:(?:{BLOCK})(?:\s?(?:{BUILDING}|\d{{2,4}}号室))?|\d+|(?=[^{KANJI}{KATA}]|$))"
        ),
        0,
        True,
    ),
    (
        "address",
        _c(rf"{AREA}{{1,20}}?(?:{N}条{AREA}{{0,4}})?(?:{BLOCK})(?:\s?(?:{BUILDING}|\d{{2,4}}号室))?"),
        0,
        True,
    ),
    (
        "address",
        _c(rf"{AREA}{{1,8}}[市区郡](?:{AREA}{{1,6}}[区町村])?(?=[にでのはへ、。」\s]|在住|出身|$)"),
        0,
        False,
    ),
    ("address", _c(rf"{BUILDING}"), 0, False),
    ("address", _c(r"\d{2,4}号室"), 0, True),
    ("address", _c(rf"{K}{{1,6}}(?:の{K}{{1,3}})?駅(?:前)?"), 0, False),
    ("organisation", _c(rf"(?:{CORP})\s?(?:[{HIRA}]{{0,6}}{ORG}{{1,20}}|[{HIRA}]{{2,8}})"), 0, False),
    ("organisation", _c(rf"{ORG}{{1,20}}?(?:{ORG_SUFFIX})(?![{KANJI}])"), 0, False),
    ("organisation", HIRAGANA_ORG, 0, False),
    (
        "organisation",
        _c(
            rf"(?<![{KATA}])(?:カフェ|居酒屋|喫茶|レストラン|バー|スナック|美容室|ヘアサロン|Hair Salon|サロン|ジム|"
            r"フィットネスクラブ|やきとり|焼き鳥|焼鳥|ラーメン|らーめん|寿司|すし|食堂|酒場|バル|ビストロ|パン屋|花屋)"
            rf"[\s・]+[{KANJI}{KATA}{HIRA}A-Za-z・]{{1,14}}(?:\s?{KN}{{1,6}}(?:店|校)?)?"
        ),
        0,
        False,
    ),
    (
        "organisation",
        _c(
            r"(?:勤務先|勤め先|職場|会社|勤める|働く|働いている|バイト先|アルバイト先|経営する|営む|店|工場|病院|院|施設|"
            r"事業所|チーム|クラブ|団体|サークル|教室|店名|社名|屋号|会社名)[^「。\n]{0,6}「([^」]{2,30})」"
        ),
        1,
        False,
    ),
    ("organisation", _c(DEPARTMENT), 0, False),
    ("school", _c(rf"[{KANJI}{KATA}A-Za-z・]{{1,14}}(?:{SCHOOL_SUFFIX})(?![生祭])"), 0, False),
    (
        "school",
        _c(
            rf"{K}{{1,4}}[東西南北]中(?=[でのにはがを、。」\s]|です|$)|{K}{{2,4}}第?[一二三四五六七八九]中(?![{KANJI}])"
            rf"|(?<![{KANJI}]){K}{{2,4}}[小高](?=[\sでのにはがを、。」]|です|$)"
        ),
        0,
        False,
    ),
    ("school", _c(r"\d{1,2}\s?年\s?[\dA-Za-zａ-ｚ十]{1,2}\s?組|(?<![\d-])\d-[A-Z](?![A-Za-z])"), 0, True),
]

# Names found from their context; group 1 is the name. A rule marked weak can also catch an ordinary word
# (相手は同僚): with an analyser, what it finds is dropped when the analyser knows it as a common word.
NAME_ALTS = (
    rf"{K}{{1,4}}\s{K}{{1,3}}|{K}{{1,5}}?|[{KATA}]{{2,10}}(?:[・\s][{KATA}]{{2,10}})?|[{HIRA}]{{2,6}}?|"
    r"[A-Z][a-z]+(?:\s[A-Z][a-z]+)?|[a-z]{3,12}"
)
NAME_END = r"(?=と|が|を|に|の|で|です|だ|は|から|も|や|、|。|\)|」|\s|$)"
NAME_RULES: list[tuple[re.Pattern[str], bool]] = [
    (_c(rf"(?:{NAME_WORDS})(?:は|が|の|:|、)?\s*「([^」]{{1,20}})」"), False),
    (
        _c(r"「([^」、。!?]{1,12}?)(?<![^」]{4}[たるいだすうよね])」\s*(?:という|と名乗|って名乗|と呼|名義)"),
        False,
    ),
    (_c(r"「([^」、。!?]{1,10}(?:ちゃん|くん|さん|っち|たん))」"), False),
    (_c(rf"(?:{RELATIONS})(?:の|は|が|、)「([^」]{{1,15}})」"), False),
    (_c(rf"(?:{NAME_WORDS})(?:は|が|:|、)\s*({NAME_ALTS}){NAME_END}"), False),
    (_c(rf"(?:{NAME_WORDS})の?\s*({NAME_ALTS}){NAME_END}"), True),
    (
        _c(
            rf"(?:私|僕|俺|わたし|あたし)(?:は|、)\s*({K}{{2,4}}\s?{K}{{1,3}}|[{KATA}]{{2,10}})(?=と申|です|の名前|、|。)"
        ),
        False,
    ),
    (_c(rf"(?<![{KANJI}])(?:{RELATIONS})(?:の|は|が|、|である)\s*({NAME_ALTS}){NAME_END}"), True),
    (
        _c(
            rf"(?:部|課|係|班|組|支店|支社|年)の\s?({K}{{1,4}}|[{KATA}]{{2,8}}|[{HIRA}]{{2,8}})"
            r"(?=は|が|に|を|から|と|も|、|。|」|です|だ)"
        ),
        True,
    ),
    (
        _c(
            rf"(?:\d年生?|\d回生|学部|学科|組)\s({K}{{1,4}}(?:\s?{K}{{1,3}})?|[{KATA}]{{2,10}}|[{HIRA}]{{2,8}}(?:\s[{HIRA}]{{2,8}})?)"
            r"(?=[」、。\s]|$)"
        ),
        True,
    ),
    (_c(rf"({K}{{1,4}}|[{HIRA}]{{2,6}}|[{KATA}]{{2,10}})(?:と|って)(?:名乗|いう名|呼ば)"), False),
    (_c(rf"({K}{{1,4}}|[{HIRA}]{{2,6}}|[{KATA}]{{2,10}})(?:と|って)(?:いう|言う|いい)"), True),
    (_c(rf"({K}{{1,4}}\s?{K}{{0,3}}|[{HIRA}]{{2,6}}|[{KATA}]{{2,10}})\s?\(\d{{1,2}}(?:歳|才)?\)"), False),
    (_c(rf"(?:男性|女性|男|女|人|相手|子|方)\s?\(({K}{{1,4}}|[{HIRA}]{{2,6}}|[{KATA}]{{2,10}})\)"), True),
    (
        _c(
            rf"(?<![{HIRA}{KANJI}])({K}{{1,4}}|[{HIRA}]{{2,6}}|[{KATA}]{{2,10}})は(?:私|娘|息子|妻|夫|母|父|兄|姉|弟|妹)の(?:下の)?名前"
        ),
        False,
    ),
    (
        _c(
            rf"({K}{{1,4}}|[{KATA}]{{2,8}}|[{HIRA}]{{2,6}})(?=さん|様|さま|くん|君|ちゃん|氏|先生|容疑者|被告)"
        ),
        True,
    ),
]
ROMAJI_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.@])([A-Z][a-z]+|[A-Z]{2,})\s([A-Z][a-z]+|[A-Z]{2,})(?![A-Za-z0-9_])"
)
PARTICLES = "のはがをにでともへや"
GENERIC_PLACES = frozenset(
    "更衣室 教室 会議室 寝室 研究室 号室 個室 和室 洋室 浴室 病室 保健室 職員室 控室 待合室 診察室 社長室 事務室 "
    "居室 談話室 応接室 地下室 暗室 取調室 面会室 相談室 "
    "学校 高校 小学校 中学校 高等学校 他校 出身校 母校 本校 同校 転校 登校 下校 休校 中学 大学 小学 アパレル店 飲食店 雑貨店 販売店 代理店 "
    "専門店 量販店 百貨店 本店 支店 支社 工場 町工場 銀行 病院 大学病院 総合病院 歯科 薬局 事務所 法律事務所 "
    "書店 旅館 ホテル 美容室 保育園 幼稚園 生命 電気 印刷 出版 物流 不動産 証券 運送 同店 当店 売店 名店 他店".split()
)
DATE_WITH_DAY = re.compile(
    r"((?:(?:19|20)\d{2}|(?:昭和|平成|令和)(?:\d{1,2}|元))\s?年\s?)?(\d{1,2}\s?月\s?)(\d{1,2})\s?日"
)
SLASH_DATE = re.compile(r"(?<![\d/])((?:19|20)\d{2}/\d{1,2}/)(\d{1,2})(?![\d/])")


def _is_phone(candidate: str) -> bool:
    """Digits in prices, dates and times look like phone numbers: only a run of 10 or 11 digits (once
    separators are removed), or a #xxxx short code, is taken as one."""
    if candidate.startswith("#"):
        return True
    digits = re.sub(r"\D", "", candidate)
    return len(digits) in (10, 11) or (candidate.startswith("+81") and len(digits) >= 10)


def _phone_words(candidate: str) -> bool:
    """A run of digit words is a phone number only if it holds 10 or 11 digits and starts with 0."""
    words = re.findall(DIGIT_WORD, candidate, re.I)
    return 10 <= len(words) <= 12 and words[0].lower() in (
        "ゼロ",
        "ぜろ",
        "レイ",
        "れい",
        "マル",
        "まる",
        "zero",
        "oh",
        "0",
    )


def _romaji_name(word: str) -> bool:
    return word.lower() not in NOT_ROMAJI_NAMES


class Masker:
    """Finds identifier spans and masks them. `proper_nouns` is the morphological analyser (None: patterns
    only)."""

    def __init__(self, proper_nouns: ProperNouns | None = None) -> None:
        self.proper_nouns = proper_nouns

    def spans(self, text: str, known: Iterable[str] = ()) -> list[Span]:
        """Identifier spans in `text`, which must already be `normalise`d; overlapping spans are merged."""
        digits = _digits(text)
        found: list[Span] = []
        for value in sorted(
            {normalise(k) for k in known if k and len(normalise(k)) >= 2}, key=len, reverse=True
        ):
            kind = "account" if value.startswith("@") else "email" if "@" in value else "name"
            found += [Span(m.start(), m.end(), kind) for m in re.finditer(re.escape(value), text)]
        for kind, pattern, group, on_digits in RULES:
            for m in pattern.finditer(digits if on_digits else text):
                if group == -1:
                    g = next(i for i in range(1, (pattern.groups or 0) + 1) if m.group(i) is not None)
                else:
                    g = group
                start, end = m.span(g)
                value = m.group(g)
                if kind == "phone" and not _is_phone(value):
                    continue
                if kind == "phone_words" and not _phone_words(value):
                    continue
                if kind in ("organisation", "school") and value in GENERIC_PLACES:
                    continue
                if end > start:
                    found.append(Span(start, end, "phone" if kind == "phone_words" else kind))
        found += self._names(text)
        if self.proper_nouns is not None:
            found += self.proper_nouns.find(text)
        # A name found once is masked wherever it appears in the text.
        names = {text[s.start : s.end].strip() for s in found if s.kind in ("name", "organisation")}
        names |= {part for n in names if " " in n for part in n.split() if len(part) >= 2}  # 髙橋 優斗 → 髙橋
        for value in sorted(names, key=len, reverse=True):
            # A one-kanji name (林, 森) only where it stands as a word: before a particle or an honorific.
            spelled = re.escape(value) if len(value) >= 2 else rf"(?<![{KANJI}]){re.escape(value)}{NAME_END}"
            found += [
                Span(m.start(), m.end(), "name") for m in re.finditer(spelled, text) if m.end() > m.start()
            ]
        return _merge(found)

    def _names(self, text: str) -> list[Span]:
        out: list[Span] = []
        for pattern, weak in NAME_RULES:
            for m in pattern.finditer(text):
                value = m.group(1).strip()
                if not value or value in NOT_NAMES or weak and self._common(value):
                    continue
                start = m.start(1) + (len(m.group(1)) - len(m.group(1).lstrip()))
                out.append(Span(start, start + len(value), "name"))
        for m in ROMAJI_PAIR.finditer(text):
            if _romaji_name(m.group(1)) and _romaji_name(m.group(2)):
                out.append(Span(m.start(), m.end(), "name"))
        return out

    def _common(self, word: str) -> bool:
        if word[0] in PARTICLES and len(word) > 1 and all("\u3041" <= c <= "\u3096" for c in word):
            return True
        return self.proper_nouns is not None and self.proper_nouns.is_common(word)

    def mask(self, text: str | None, known: Iterable[str] = ()) -> str | None:
        """Mask personal data in `text`; `known` holds identifiers known to belong to people in this case (the
        consulter's name and address, names found elsewhere in the case), masked wherever they appear. Full
        dates that remain are coarsened to the month (2026年11月●日)."""
        if text is None:
            return None
        out = normalise(text)
        pieces: list[str] = []
        last = 0
        for span in self.spans(out, known):
            pieces += [out[last : span.start], MASKS[span.kind]]
            last = span.end
        pieces.append(out[last:])
        return coarsen_dates("".join(pieces))

    def names_in(self, texts: Iterable[str | None]) -> set[str]:
        """Names and organisations recognised anywhere in a case, so each is masked in every field of that case,
        also where it stands bare (山田花子は…)."""
        found: set[str] = set()
        for text in texts:
            if not text:
                continue
            normalised = normalise(text)
            for span in self.spans(normalised):
                value = normalised[span.start : span.end].strip()
                if span.kind in ("name", "organisation", "account", "email") and len(value) >= 2:
                    found.add(value)
        return found


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one; its kind is the kind of the longest span in it."""
    merged: list[tuple[int, int, Span]] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        touching = merged and span.start == merged[-1][1] and span.kind == merged[-1][2].kind
        if merged and (span.start < merged[-1][1] or touching):
            start, end, longest = merged[-1]
            if span.end - span.start > longest.end - longest.start:
                longest = span
            merged[-1] = (start, max(end, span.end), longest)
        else:
            merged.append((span.start, span.end, span))
    return [Span(start, end, longest.kind) for start, end, longest in merged]


def coarsen_dates(text: str) -> str:
    """The day of a full date is withheld (2026年11月20日 → 2026年11月●日): the council judges handling, and a
    day with a platform is enough to find the post."""
    text = DATE_WITH_DAY.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}●日", text)
    return SLASH_DATE.sub(lambda m: f"{m.group(1)}●", text)


_PATTERNS_ONLY = Masker()


def mask(text: str | None, known: Iterable[str] = ()) -> str | None:
    """`Masker().mask` with patterns only (no analyser); the council's view uses the service's masker."""
    return _PATTERNS_ONLY.mask(text, known)


def names_in(texts: Iterable[str | None]) -> set[str]:
    return _PATTERNS_ONLY.names_in(texts)


def suppress_small(counts: dict[str, int], threshold: int = 5) -> dict[str, int | None]:
    """A breakdown under the one suppression rule (domain/disclosure.py): counts below the threshold are
    withheld, and so is the next smallest when a single withheld count could be recomputed from the total."""
    return protect_counts(counts, threshold)[0]
