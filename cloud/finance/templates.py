"""A ready article template for a food retail and production chain.

What a financial analyst sets up in the first weeks of a rollout (the Финансист regulation
gives two iterations per report for it): the ДДС tree by activity and direction, the БДР
tree by the classes the standard indicators need, the indicators themselves, and a map from
the cash-flow article names 1C configurations use to our codes, so statements exported from
1C with its own articles land on ours.

Codes: ``D.<activity>.<1 in | 2 out>.<n>`` for cash flow (``D.4`` is technical: moves between
own accounts, which are neither income nor expense), ``P.<class>.<n>`` for P&L. Expenses are
positive amounts; indicators subtract them.
"""

from __future__ import annotations

import re
from functools import cache

from cloud.finance.articles import Activity, Article, ArticleTree, Flow, PnlClass, Statement
from cloud.finance.errors import TemplateError
from cloud.finance.indicators import Indicator, IndicatorSet

_O, _I, _F, _T = Activity.OPERATING, Activity.INVESTING, Activity.FINANCING, Activity.TECHNICAL
_IN, _OUT = Flow.INFLOW, Flow.OUTFLOW

# (code, name, parent, activity, flow)
CASH_FLOW: tuple[tuple[str, str, str | None, Activity, Flow | None], ...] = (
    ("D.1", "Операционная деятельность", None, _O, None),
    ("D.1.1", "Поступления от операционной деятельности", "D.1", _O, _IN),
    ("D.1.1.1", "Выручка розницы наличными (инкассация)", "D.1.1", _O, _IN),
    ("D.1.1.2", "Выручка по картам (эквайринг)", "D.1.1", _O, _IN),
    ("D.1.1.3", "Выручка интернет-магазина и доставки", "D.1.1", _O, _IN),
    ("D.1.1.4", "Оптовые продажи и продажи юрлицам", "D.1.1", _O, _IN),
    ("D.1.1.5", "Возвраты от поставщиков", "D.1.1", _O, _IN),
    ("D.1.1.9", "Прочие операционные поступления", "D.1.1", _O, _IN),
    ("D.1.2", "Выплаты по операционной деятельности", "D.1", _O, _OUT),
    ("D.1.2.1", "Оплата поставщикам товаров", "D.1.2", _O, _OUT),
    ("D.1.2.2", "Оплата сырья и упаковки для производства", "D.1.2", _O, _OUT),
    ("D.1.2.3", "Аренда помещений", "D.1.2", _O, _OUT),
    ("D.1.2.4", "Коммунальные услуги", "D.1.2", _O, _OUT),
    ("D.1.2.5", "Заработная плата", "D.1.2", _O, _OUT),
    ("D.1.2.6", "Налоги (ЕНП) и страховые взносы", "D.1.2", _O, _OUT),
    ("D.1.2.7", "Банковские комиссии и эквайринг", "D.1.2", _O, _OUT),
    ("D.1.2.8", "Логистика и доставка", "D.1.2", _O, _OUT),
    ("D.1.2.9", "Маркетинг и реклама", "D.1.2", _O, _OUT),
    ("D.1.2.10", "Связь, IT и программы", "D.1.2", _O, _OUT),
    ("D.1.2.11", "Ремонт, обслуживание и хозяйственные расходы", "D.1.2", _O, _OUT),
    ("D.1.2.12", "Охрана и уборка", "D.1.2", _O, _OUT),
    ("D.1.2.13", "Штрафы, пени, госпошлины", "D.1.2", _O, _OUT),
    ("D.1.2.19", "Прочие операционные выплаты", "D.1.2", _O, _OUT),
    ("D.2", "Инвестиционная деятельность", None, _I, None),
    ("D.2.1", "Поступления от инвестиционной деятельности", "D.2", _I, _IN),
    ("D.2.1.1", "Продажа основных средств", "D.2.1", _I, _IN),
    ("D.2.2", "Выплаты по инвестиционной деятельности", "D.2", _I, _OUT),
    ("D.2.2.1", "Покупка оборудования", "D.2.2", _I, _OUT),
    ("D.2.2.2", "Открытие и реконструкция магазинов", "D.2.2", _I, _OUT),
    ("D.3", "Финансовая деятельность", None, _F, None),
    ("D.3.1", "Поступления от финансовой деятельности", "D.3", _F, _IN),
    ("D.3.1.1", "Получение кредитов и займов", "D.3.1", _F, _IN),
    ("D.3.1.2", "Взносы собственников", "D.3.1", _F, _IN),
    ("D.3.2", "Выплаты по финансовой деятельности", "D.3", _F, _OUT),
    ("D.3.2.1", "Погашение кредитов и займов", "D.3.2", _F, _OUT),
    ("D.3.2.2", "Проценты по кредитам и займам", "D.3.2", _F, _OUT),
    ("D.3.2.3", "Выплата дивидендов", "D.3.2", _F, _OUT),
    ("D.3.2.4", "Лизинговые платежи", "D.3.2", _F, _OUT),
    ("D.4", "Технические операции", None, _T, None),
    ("D.4.1", "Перемещения между своими счетами", "D.4", _T, None),
)

# (code, name, parent, class)
PNL: tuple[tuple[str, str, str | None, PnlClass], ...] = (
    ("P.1", "Выручка", None, PnlClass.REVENUE),
    ("P.1.1", "Выручка розницы", "P.1", PnlClass.REVENUE),
    ("P.1.2", "Выручка интернет-магазина и доставки", "P.1", PnlClass.REVENUE),
    ("P.1.3", "Оптовая выручка", "P.1", PnlClass.REVENUE),
    ("P.2", "Себестоимость продаж", None, PnlClass.COST_OF_SALES),
    ("P.2.1", "Себестоимость товаров", "P.2", PnlClass.COST_OF_SALES),
    ("P.2.2", "Сырьё и упаковка собственного производства", "P.2", PnlClass.COST_OF_SALES),
    ("P.3", "Переменные расходы", None, PnlClass.VARIABLE),
    ("P.3.1", "Комиссия эквайринга", "P.3", PnlClass.VARIABLE),
    ("P.3.2", "Логистика и доставка", "P.3", PnlClass.VARIABLE),
    ("P.3.3", "Списания и потери", "P.3", PnlClass.VARIABLE),
    ("P.4", "Постоянные расходы", None, PnlClass.FIXED),
    ("P.4.1", "Оплата труда", "P.4", PnlClass.FIXED),
    ("P.4.2", "Страховые взносы", "P.4", PnlClass.FIXED),
    ("P.4.3", "Аренда", "P.4", PnlClass.FIXED),
    ("P.4.4", "Коммунальные услуги", "P.4", PnlClass.FIXED),
    ("P.4.5", "Маркетинг и реклама", "P.4", PnlClass.FIXED),
    ("P.4.6", "Связь, IT и программы", "P.4", PnlClass.FIXED),
    ("P.4.7", "Банковское обслуживание", "P.4", PnlClass.FIXED),
    ("P.4.8", "Ремонт, обслуживание, хозяйственные расходы", "P.4", PnlClass.FIXED),
    ("P.4.9", "Охрана и уборка", "P.4", PnlClass.FIXED),
    ("P.4.19", "Прочие постоянные расходы", "P.4", PnlClass.FIXED),
    ("P.5", "Налоги", None, PnlClass.TAX),
    ("P.5.1", "Налог на прибыль или УСН", "P.5", PnlClass.TAX),
    ("P.5.2", "Налог на имущество и прочие налоги", "P.5", PnlClass.TAX),
    ("P.6", "Амортизация", None, PnlClass.DEPRECIATION),
    ("P.7", "Проценты по кредитам и займам", None, PnlClass.INTEREST),
    ("P.8", "Прочие доходы", None, PnlClass.OTHER_INCOME),
    ("P.9", "Прочие расходы (штрафы, пени, списания дебиторки)", None, PnlClass.OTHER_EXPENSE),
    ("P.10", "Дивиденды", None, PnlClass.DIVIDENDS),
)

INDICATORS: tuple[Indicator, ...] = (
    Indicator("gross_margin", "[P.1] - [P.2]", "Валовая прибыль"),
    Indicator("marginal_profit", "gross_margin - [P.3]", "Маржинальная прибыль"),
    Indicator("ebitda", "marginal_profit - [P.4] + [P.8] - [P.9]", "EBITDA"),
    Indicator("ebit", "ebitda - [P.6]", "Операционная прибыль (EBIT)"),
    Indicator("profit_before_tax", "ebit - [P.7]", "Прибыль до налогообложения"),
    Indicator("net_profit", "profit_before_tax - [P.5]", "Чистая прибыль"),
    Indicator("retained_profit", "net_profit - [P.10]", "Нераспределённая прибыль периода"),
    Indicator("gross_margin_pct", "gross_margin / [P.1] * 100", "Валовая маржа, %"),
    Indicator("ebitda_pct", "ebitda / [P.1] * 100", "Рентабельность по EBITDA, %"),
    Indicator("net_margin_pct", "net_profit / [P.1] * 100", "Рентабельность по чистой прибыли, %"),
    Indicator("operating_cash_flow", "[D.1.1] - [D.1.2]", "Сальдо операционной деятельности"),
    Indicator("investing_cash_flow", "[D.2.1] - [D.2.2]", "Сальдо инвестиционной деятельности"),
    Indicator("financing_cash_flow", "[D.3.1] - [D.3.2]", "Сальдо финансовой деятельности"),
    Indicator(
        "net_cash_flow",
        "operating_cash_flow + investing_cash_flow + financing_cash_flow",
        "Чистый денежный поток",
    ),
)

# Cash-flow article names as 1C configurations (БП, УТ, КА, Розница) and their users name
# them, short and long forms, → our code. Looked up by :func:`article_for_1c_name`.
ONEC_CASH_FLOW_NAMES: dict[str, str] = {
    "Поступления от покупателей": "D.1.1.4",
    "Поступление от покупателей": "D.1.1.4",
    "Поступления от продажи продукции (товаров), выполнения работ, оказания услуг": "D.1.1.4",
    "Розничная выручка": "D.1.1.1",
    "Инкассация денежных средств": "D.1.1.1",
    "Поступление оплаты по платежным картам": "D.1.1.2",
    "Эквайринг": "D.1.1.2",
    "Возврат денежных средств поставщиком": "D.1.1.5",
    "Прочие поступления": "D.1.1.9",
    "Прочие поступления по текущим операциям": "D.1.1.9",
    "Оплата поставщикам": "D.1.2.1",
    "Оплата поставщику": "D.1.2.1",
    "Оплата товаров, работ, услуг, сырья и иных оборотных активов": "D.1.2.1",
    "Аренда": "D.1.2.3",
    "Арендная плата": "D.1.2.3",
    "Коммунальные платежи": "D.1.2.4",
    "Заработная плата": "D.1.2.5",
    "Оплата труда": "D.1.2.5",
    "Выплата заработной платы": "D.1.2.5",
    "Налоги и сборы": "D.1.2.6",
    "Налоги": "D.1.2.6",
    "Единый налоговый платеж": "D.1.2.6",
    "Налог на прибыль организаций": "D.1.2.6",
    "Прочие налоги и сборы": "D.1.2.6",
    "Страховые взносы": "D.1.2.6",
    "НДФЛ": "D.1.2.6",
    "Банковские расходы": "D.1.2.7",
    "Комиссия банка": "D.1.2.7",
    "Услуги банка": "D.1.2.7",
    "Прочие расходы": "D.1.2.19",
    "Прочие платежи": "D.1.2.19",
    "Прочие платежи по текущим операциям": "D.1.2.19",
    "Приобретение основных средств": "D.2.2.1",
    "Приобретение, создание, модернизация, реконструкция и подготовка к использованию внеоборотных активов": "D.2.2.1",
    "Продажа основных средств": "D.2.1.1",
    "Получение кредитов и займов": "D.3.1.1",
    "Получение кредита (займа)": "D.3.1.1",
    "Возврат кредитов и займов": "D.3.2.1",
    "Погашение кредитов и займов": "D.3.2.1",
    "Проценты по долговым обязательствам": "D.3.2.2",
    "Уплата процентов": "D.3.2.2",
    "Уплата процентов по долговым обязательствам": "D.3.2.2",
    "Выплата дивидендов": "D.3.2.3",
    "Дивиденды": "D.3.2.3",
    "Лизинговые платежи": "D.3.2.4",
    "Перемещение денежных средств": "D.4.1",
    "Перевод между своими счетами": "D.4.1",
    "Внутреннее перемещение": "D.4.1",
}


def _normalise(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("ё", "е").replace("Ё", "Е")).strip().casefold()


_ONEC_INDEX = {_normalise(k): v for k, v in ONEC_CASH_FLOW_NAMES.items()}


def article_for_1c_name(name: str) -> str | None:
    """Our code for a 1C cash-flow article name (case, ё and spacing ignored), or None."""
    return _ONEC_INDEX.get(_normalise(name))


def articles() -> list[Article]:
    cash = [Article(c, n, Statement.CASH_FLOW, p, activity=a, flow=f) for c, n, p, a, f in CASH_FLOW]
    pnl = [Article(c, n, Statement.PNL, p, pnl_class=k) for c, n, p, k in PNL]
    return cash + pnl


@cache
def food_chain_tree() -> ArticleTree:
    """The template, validated (raises :class:`TemplateError` if the data above is wrong)."""
    tree = ArticleTree(articles())
    missing = sorted(set(ONEC_CASH_FLOW_NAMES.values()) - tree.by_code.keys())
    if missing:
        raise TemplateError("сопоставление статей 1С ссылается на неизвестные коды: " + ", ".join(missing))
    return tree


@cache
def food_chain_indicators() -> IndicatorSet:
    return IndicatorSet(INDICATORS, food_chain_tree().by_code)

# Where each cash-flow article lands in the P&L (cash-flow articles not listed — loans, equipment,
# dividends, transfers — are balance-sheet movements and stay out of the P&L).
CASH_TO_PNL: dict[str, str] = {
    "D.1.1.1": "P.1.1",
    "D.1.1.2": "P.1.1",
    "D.1.1.3": "P.1.2",
    "D.1.1.4": "P.1.3",
    "D.1.1.5": "P.2.1",
    "D.1.1.9": "P.8",
    "D.1.2.1": "P.2.1",
    "D.1.2.2": "P.2.2",
    "D.1.2.3": "P.4.3",
    "D.1.2.4": "P.4.4",
    "D.1.2.5": "P.4.1",
    "D.1.2.6": "P.5.2",
    "D.1.2.7": "P.4.7",
    "D.1.2.8": "P.3.2",
    "D.1.2.9": "P.4.5",
    "D.1.2.10": "P.4.6",
    "D.1.2.11": "P.4.8",
    "D.1.2.12": "P.4.9",
    "D.1.2.13": "P.9",
    "D.1.2.19": "P.4.19",
    "D.3.2.2": "P.7",
    "D.3.2.4": "P.4.19",
}

# P&L articles whose figures come from Vitrina's own modules when the tenant uses them
# (article code → ``vitrina_key`` of :mod:`cloud.finance.sources`).
VITRINA_SOURCES: dict[str, str] = {
    "P.1.1": "sales.revenue",
    "P.2.1": "inventory.cost_of_sales",
    "P.3.3": "inventory.write_offs",
}
