"""Hand rules a financial analyst writes for a food chain on day one, before any history.

Learned suggestions cover counterparties seen before; these cover what history cannot:
money from our own INN (cash collection per store, transfers between own accounts) and
phrases that mean the same thing whoever the counterparty is (salary to a person's card,
dividends, fines and duties, a new loan, a supplier's refund, new equipment, a payment to a
supplier never seen before). Priorities: the per-store and own-account rules go first (10,
20: they must beat the learned "our INN" rules); the phrase rules go last (90+: a learned
rule for a known counterparty is more precise than a phrase).
"""

from __future__ import annotations

from cloud.finance.allocation import Condition, Rule, simple_rule
from protocols.onec import Direction

OUT, IN = Direction.OUTFLOW, Direction.INFLOW


def food_chain_rules(own_inn: str, stores: dict[int, str]) -> list[Rule]:
    """Starter rules; ``stores`` maps the store number used in cash-collection purposes to its ЦФО."""
    rules = [
        simple_rule(
            f"Инкассация магазина № {number}",
            Condition(direction=IN, purpose_regex=rf"инкасс\w*\s+выручк\w*\s+магазин\w*\s*№\s*{number}\b"),
            "D.1.1.1",
            cfo=cfo,
            priority=10,
        )
        for number, cfo in sorted(stores.items())
    ]
    rules += [
        simple_rule(
            "Перевод между своими счетами",
            Condition(
                counterparty_inns=frozenset({own_inn}),
                purpose_contains=("перевод собственных", "между своими счетами", "перевод своих средств"),
            ),
            "D.4.1",
            priority=20,
        ),
        simple_rule(
            "Зарплата и выплаты сотрудникам на карты",
            Condition(
                direction=OUT,
                purpose_contains=("заработн", "отпускн", "пособи", "расчет при увольнении", "аванс"),
            ),
            "D.1.2.5",
            cfo="HQ",
            priority=90,
        ),
        simple_rule(
            "Дивиденды", Condition(direction=OUT, purpose_contains=("дивиденд",)), "D.3.2.3", priority=90
        ),
        simple_rule(
            "Штрафы, пени, госпошлины",
            Condition(
                direction=OUT,
                purpose_contains=("штраф", "пени ", "пеня", "госпошлин", "государственная пошлина"),
            ),
            "D.1.2.13",
            cfo="HQ",
            priority=90,
        ),
        simple_rule(
            "Получение кредита",
            Condition(
                direction=IN, purpose_contains=("выдача кредита", "предоставление кредита", "выдача транша")
            ),
            "D.3.1.1",
            priority=90,
        ),
        simple_rule(
            "Возврат от поставщика",
            Condition(
                direction=IN, purpose_contains=("возврат излишне", "возврат ошибочно", "возврат переплат")
            ),
            "D.1.1.5",
            priority=90,
        ),
        simple_rule(
            "Покупка оборудования",
            Condition(
                direction=OUT,
                purpose_contains=("оборудовани", "витрин"),
                purpose_excludes=("ремонт", "обслуживан", "аренд"),
            ),
            "D.2.2.1",
            priority=91,
        ),
        simple_rule(
            "Комиссии банка",
            Condition(direction=OUT, purpose_contains=("комиссия за", "плата за обслуживание")),
            "D.1.2.7",
            cfo="HQ",
            priority=92,
        ),
        simple_rule(
            "Оплата поставщику (новому или редкому)",
            Condition(
                direction=OUT,
                purpose_regex=r"\b(оплата|опл)\b.{0,60}\b(сч|счет\w*|счёт\w*|упд|поставк\w*|товар\w*|продук\w*)\b",
            ),
            "D.1.2.1",
            priority=95,
        ),
    ]
    return rules
