from __future__ import annotations

from decimal import Decimal

import pytest

from cloud.finance.articles import Activity, Article, ArticleTree, Flow, PnlClass, Statement
from cloud.finance.errors import TemplateError
from cloud.finance.formulas import DIVISION_BY_ZERO
from cloud.finance.templates import (
    INDICATORS,
    ONEC_CASH_FLOW_NAMES,
    article_for_1c_name,
    food_chain_indicators,
    food_chain_tree,
)

D = Decimal


def test_template_is_a_valid_tree_of_both_statements() -> None:
    tree = food_chain_tree()
    roots = {c for c, a in tree.by_code.items() if a.parent is None}
    assert roots == {
        "D.1",
        "D.2",
        "D.3",
        "D.4",
        "P.1",
        "P.2",
        "P.3",
        "P.4",
        "P.5",
        "P.6",
        "P.7",
        "P.8",
        "P.9",
        "P.10",
    }
    assert tree["D.1.2.1"].name == "Оплата поставщикам товаров" and tree["D.1.2.1"].flow is Flow.OUTFLOW
    assert tree.ancestors("D.1.2.1") == ["D.1.2", "D.1"]
    assert {tree[c].activity for c in tree.leaves(Statement.CASH_FLOW)} == set(Activity)
    assert {tree[c].pnl_class for c in tree.leaves(Statement.PNL)} == set(PnlClass)


def test_every_1c_name_maps_to_a_leaf_and_lookup_is_forgiving() -> None:
    tree = food_chain_tree()
    assert all(tree.is_leaf(code) for code in ONEC_CASH_FLOW_NAMES.values())
    assert article_for_1c_name("Оплата поставщикам") == "D.1.2.1"
    assert article_for_1c_name("  поступления   от ПОКУПАТЕЛЕЙ ") == "D.1.1.4"
    assert article_for_1c_name("Заработная плата") == "D.1.2.5"
    assert article_for_1c_name("Налоги и сборы") == "D.1.2.6"
    assert article_for_1c_name("Перемещение денежных средств") == "D.4.1"
    assert article_for_1c_name("Неизвестная статья") is None


def test_standard_indicators_on_a_month() -> None:
    tree = food_chain_tree()
    leaves = {
        "P.1.1": {"2026-03": D("10000000")},
        "P.1.2": {"2026-03": D("1500000")},
        "P.2.1": {"2026-03": D("7200000")},
        "P.3.1": {"2026-03": D("190000")},
        "P.4.1": {"2026-03": D("1800000")},
        "P.4.3": {"2026-03": D("900000")},
        "P.6": {"2026-03": D("150000")},
        "P.7": {"2026-03": D("190000")},
        "P.5.1": {"2026-03": D("120000")},
        "D.1.1.2": {"2026-03": D("9000000")},
        "D.1.2.1": {"2026-03": D("7000000")},
        "D.2.2.1": {"2026-03": D("500000")},
        "D.3.2.1": {"2026-03": D("850000")},
    }
    grid = tree.roll_up(leaves)
    assert grid["P.1"]["2026-03"] == D("11500000") and grid["P.4"]["2026-03"] == D("2700000")
    out = food_chain_indicators().evaluate(grid, ["2026-03", "2026-04"])
    cell = {name: by_period["2026-03"].value for name, by_period in out.items()}
    assert cell["gross_margin"] == D("4300000.00")
    assert cell["ebitda"] == D("1410000.00")
    assert cell["net_profit"] == D("950000.00")
    assert cell["gross_margin_pct"] == D("37.39")
    assert cell["net_cash_flow"] == D("650000.00")
    assert out["ebitda_pct"]["2026-04"].flags == {DIVISION_BY_ZERO}
    assert {i.name for i in INDICATORS} >= {"gross_margin", "ebitda", "net_profit", "gross_margin_pct"}


@pytest.mark.parametrize(
    ("articles", "fragment"),
    [
        ([Article("A", "x", Statement.PNL, pnl_class=PnlClass.REVENUE)] * 2, "повторяется"),
        ([Article("A", "x", Statement.PNL, parent="Z", pnl_class=PnlClass.REVENUE)], "нет родителя"),
        ([Article("A", "x", Statement.CASH_FLOW)], "вид деятельности"),
        (
            [
                Article("A", "x", Statement.PNL, pnl_class=PnlClass.REVENUE),
                Article("B", "y", Statement.PNL, parent="A", pnl_class=PnlClass.FIXED),
            ],
            "классу ПиУ",
        ),
        (
            [
                Article("A", "x", Statement.CASH_FLOW, activity=Activity.OPERATING, flow=Flow.INFLOW),
                Article(
                    "B", "y", Statement.CASH_FLOW, parent="A", activity=Activity.OPERATING, flow=Flow.OUTFLOW
                ),
            ],
            "направлению",
        ),
        (
            [
                Article("A", "x", Statement.PNL, parent="B", pnl_class=PnlClass.REVENUE),
                Article("B", "y", Statement.PNL, parent="A", pnl_class=PnlClass.REVENUE),
            ],
            "родители",
        ),
        ([Article("A", " ", Statement.PNL, pnl_class=PnlClass.REVENUE)], "пустой"),
    ],
)
def test_bad_trees_are_rejected_with_a_reason(articles: list[Article], fragment: str) -> None:
    with pytest.raises(TemplateError, match=fragment):
        ArticleTree(articles)


def test_roll_up_rejects_unknown_codes() -> None:
    with pytest.raises(TemplateError, match=r"X\.1"):
        food_chain_tree().roll_up({"X.1": {1: D(1)}})
