# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Reference data of management finance: article trees, ЦФО, projects, legal entities and
their accounts, counterparties, indicators, and the data-source map (the rollout's roadmap).

Every function takes the tenant id and filters by it; a row of another tenant is not found.
Changes that could break what depends on them are checked before commit: an article tree
must stay a tree (:class:`cloud.finance.articles.ArticleTree`), indicators must parse, name
known things and not go round in circles (:class:`cloud.finance.indicators.IndicatorSet`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlmodel import Session

from cloud.catalog.units import from_kop, to_kop
from cloud.errors import Conflict, Invalid, NotFound
from cloud.finance.articles import Activity, Article, ArticleTree, Flow, PnlClass, Statement
from cloud.finance.errors import FinanceError
from cloud.finance.indicators import Indicator, IndicatorSet
from cloud.finance.models import (
    AccountIn,
    AccountPublic,
    ArticleIn,
    ArticlePublic,
    ArticleUpdate,
    CfoIn,
    CfoPublic,
    CounterpartyIn,
    CounterpartyPublic,
    DataSourceIn,
    DataSourcePublic,
    FinAccount,
    FinArticle,
    FinCfo,
    FinCounterparty,
    FinDataSource,
    FinIndicator,
    FinIndicatorValue,
    FinLegalEntity,
    FinOperationPart,
    FinProject,
    FinRule,
    IndicatorIn,
    IndicatorPublic,
    IndicatorValueIn,
    LegalEntityIn,
    LegalEntityPublic,
    ProjectIn,
    ProjectPublic,
    SourceKind,
)
from cloud.finance.templates import CASH_TO_PNL, INDICATORS, VITRINA_SOURCES, food_chain_tree

STATEMENTS = {s.value for s in Statement}


def invalid_from(exc: FinanceError) -> Invalid:
    """A finance engine error as a 422 with its machine code and its Russian message."""
    extra: dict[str, object] = {}
    for attr in ("unknown", "cycle", "position", "rule"):
        if hasattr(exc, attr):
            extra[attr] = getattr(exc, attr)
    if hasattr(exc, "problems"):
        extra["problems"] = [{"rule": p.rule, "code": p.code, "detail": p.message} for p in exc.problems]
    return Invalid(exc.message, code=exc.code, extra=extra)


# ---------------------------------------------------------------- lookups


@dataclass
class Names:
    """Code ↔ id maps of one tenant's articles, ЦФО, projects and accounts (one query each)."""

    articles: dict[str, FinArticle]
    by_id: dict[int, FinArticle]
    cfos: dict[str, int]
    projects: dict[str, int]
    accounts: dict[str, FinAccount]

    def article(self, code: str, where: str) -> FinArticle:
        row = self.articles.get(code)
        if row is None:
            raise Invalid(f"{where}: статьи «{code}» нет в справочнике", code="unknown_article")
        return row

    def cfo(self, code: str | None, where: str) -> int | None:
        if code is None or code == "":
            return None
        if code not in self.cfos:
            raise Invalid(f"{where}: ЦФО «{code}» нет в справочнике", code="unknown_cfo")
        return self.cfos[code]

    def project(self, code: str | None, where: str) -> int | None:
        if code is None or code == "":
            return None
        if code not in self.projects:
            raise Invalid(f"{where}: проекта «{code}» нет в справочнике", code="unknown_project")
        return self.projects[code]

    def account(self, number: str, where: str) -> FinAccount:
        row = self.accounts.get(number)
        if row is None:
            raise Invalid(
                f"{where}: счёт {number} не заведён ни у одного юрлица (добавьте его в /finance/legal-entities)",
                code="unknown_account",
            )
        return row

    def cfo_code(self, cfo_id: int | None) -> str | None:
        return None if cfo_id is None else self._rev(self.cfos)[cfo_id]

    def project_code(self, project_id: int | None) -> str | None:
        return None if project_id is None else self._rev(self.projects)[project_id]

    def _rev(self, mapping: dict[str, int]) -> dict[int, str]:
        key = id(mapping)
        cache = self.__dict__.setdefault("_reverse", {})
        if key not in cache:
            cache[key] = {v: k for k, v in mapping.items()}
        result: dict[int, str] = cache[key]
        return result

    def tree(self) -> ArticleTree:
        return tree_of(self.by_id.values(), self.by_id)


def names(session: Session, tenant_id: int) -> Names:
    arts = list(session.scalars(select(FinArticle).where(FinArticle.tenant_id == tenant_id)))  # type: ignore[arg-type]
    cfos = session.execute(select(FinCfo.code, FinCfo.id).where(FinCfo.tenant_id == tenant_id)).all()  # type: ignore[arg-type]
    projects = session.execute(
        select(FinProject.code, FinProject.id).where(FinProject.tenant_id == tenant_id)  # type: ignore[arg-type]
    ).all()
    accounts = list(session.scalars(select(FinAccount).where(FinAccount.tenant_id == tenant_id)))  # type: ignore[arg-type]
    return Names(
        articles={a.code: a for a in arts},
        by_id={a.id: a for a in arts if a.id is not None},
        cfos={c: i for c, i in cfos},
        projects={c: i for c, i in projects},
        accounts={a.number: a for a in accounts},
    )


def tree_of(rows: Sequence[FinArticle] | object, by_id: dict[int, FinArticle]) -> ArticleTree:
    """The engine's tree of stored articles (raises :class:`TemplateError` if it is not a tree)."""
    articles = []
    for a in by_id.values():
        parent = by_id[a.parent_id].code if a.parent_id is not None else None
        articles.append(
            Article(
                a.code,
                a.name,
                Statement(a.statement),
                parent,
                activity=Activity(a.activity) if a.activity else None,
                flow=Flow(a.flow) if a.flow else None,
                pnl_class=PnlClass(a.pnl_class) if a.pnl_class else None,
            )
        )
    return ArticleTree(articles)


def _get(session: Session, model: type, tenant_id: int, row_id: int, what: str) -> object:
    row = session.get(model, row_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"{what} {row_id} не найден(а)", code="not_found")
    return row


# ---------------------------------------------------------------- articles


def article_public(a: FinArticle, by_id: dict[int, FinArticle]) -> ArticlePublic:
    assert a.id is not None
    return ArticlePublic(
        id=a.id,
        statement=a.statement,
        code=a.code,
        name=a.name,
        parent=by_id[a.parent_id].code if a.parent_id else None,
        activity=a.activity,
        flow=a.flow,
        pnl_class=a.pnl_class,
        pnl_article=by_id[a.pnl_article_id].code if a.pnl_article_id else None,
        position=a.position,
    )


def list_articles(session: Session, tenant_id: int, statement: str | None = None) -> list[ArticlePublic]:
    n = names(session, tenant_id)
    rows = sorted(n.by_id.values(), key=lambda a: (a.statement, a.position, a.code))
    return [article_public(a, n.by_id) for a in rows if statement is None or a.statement == statement]


def _check_tree(session: Session, tenant_id: int) -> Names:
    session.flush()
    n = names(session, tenant_id)
    try:
        n.tree()
    except FinanceError as exc:
        raise invalid_from(exc) from exc
    for a in n.by_id.values():
        if a.pnl_article_id is not None:
            target = n.by_id[a.pnl_article_id]
            if a.statement != Statement.CASH_FLOW or target.statement != Statement.PNL:
                raise Invalid(
                    f"статья {a.code}: связь с ПиУ бывает только у статьи ДДС и ведёт на статью ПиУ ({target.code})",
                    code="bad_pnl_link",
                )
    return n


def create_article(session: Session, tenant_id: int, data: ArticleIn) -> ArticlePublic:
    if data.statement not in STATEMENTS:
        raise Invalid(f"статья {data.code}: отчёт {data.statement!r} — не cash_flow и не pnl", code="bad_statement")
    n = names(session, tenant_id)
    if data.code in n.articles:
        raise Conflict(f"статья с кодом {data.code} уже есть", code="duplicate_article")
    parent = n.article(data.parent, f"статья {data.code}, поле parent").id if data.parent else None
    pnl = n.article(data.pnl_article, f"статья {data.code}, поле pnl_article").id if data.pnl_article else None
    row = FinArticle(
        tenant_id=tenant_id,
        statement=data.statement,
        code=data.code,
        name=data.name,
        parent_id=parent,
        activity=data.activity,
        flow=data.flow,
        pnl_class=data.pnl_class,
        pnl_article_id=pnl,
        position=data.position,
    )
    session.add(row)
    try:
        n = _check_tree(session, tenant_id)
    except (ValueError, KeyError) as exc:
        raise Invalid(f"статья {data.code}: {exc}", code="bad_article") from exc
    session.commit()
    return article_public(row, n.by_id)


def update_article(session: Session, tenant_id: int, article_id: int, data: ArticleUpdate) -> ArticlePublic:
    row = _get(session, FinArticle, tenant_id, article_id, "статья")
    assert isinstance(row, FinArticle)
    n = names(session, tenant_id)
    old_code = row.code
    if data.code is not None and data.code != old_code:
        if data.code in n.articles:
            raise Conflict(f"статья с кодом {data.code} уже есть", code="duplicate_article")
        users = [i.name for i in _indicators(session, tenant_id) if old_code in _refs(i)]
        if users:
            raise Conflict(
                f"код {old_code} используется в формулах показателей: {', '.join(sorted(users))}; "
                "поправьте формулы, потом меняйте код",
                code="article_in_formulas",
            )
        row.code = data.code
        _rename_in_rules(session, tenant_id, old_code, data.code)
    if data.name is not None:
        row.name = data.name
    if data.position is not None:
        row.position = data.position
    if data.pnl_article is not None:
        row.pnl_article_id = (
            n.article(data.pnl_article, f"статья {row.code}, поле pnl_article").id if data.pnl_article else None
        )
    session.add(row)
    n = _check_tree(session, tenant_id)
    session.commit()
    return article_public(row, n.by_id)


def delete_article(session: Session, tenant_id: int, article_id: int) -> None:
    row = _get(session, FinArticle, tenant_id, article_id, "статья")
    assert isinstance(row, FinArticle)
    used = session.scalar(select(func.count()).where(FinOperationPart.article_id == article_id))  # type: ignore[arg-type]
    if used:
        raise Conflict(f"на статью {row.code} разнесено {used} частей операций", code="article_in_use")
    kids = session.scalar(select(func.count()).where(FinArticle.parent_id == article_id))  # type: ignore[arg-type]
    if kids:
        raise Conflict(f"у статьи {row.code} есть дочерние статьи", code="article_has_children")
    session.execute(delete(FinDataSource).where(FinDataSource.article_id == article_id))  # type: ignore[arg-type]
    session.delete(row)
    session.commit()


def _rename_in_rules(session: Session, tenant_id: int, old: str, new: str) -> None:
    for rule in session.scalars(select(FinRule).where(FinRule.tenant_id == tenant_id)):  # type: ignore[arg-type]
        if any(s.get("article") == old for s in rule.shares):
            rule.shares = [{**s, "article": new} if s.get("article") == old else s for s in rule.shares]
            session.add(rule)


def load_template(session: Session, tenant_id: int) -> dict[str, int]:
    """Add the food-chain template: articles, P&L links, indicators, default data sources.

    Idempotent: codes and indicator names already there are left as the tenant edited them.
    """
    tree = food_chain_tree()
    n = names(session, tenant_id)
    added = {"articles": 0, "indicators": 0, "data_sources": 0}
    rows: dict[str, FinArticle] = dict(n.articles)
    for position, code in enumerate(tree.by_code):
        if code in rows:
            continue
        a = tree[code]
        row = FinArticle(
            tenant_id=tenant_id,
            statement=a.statement.value,
            code=a.code,
            name=a.name,
            parent_id=rows[a.parent].id if a.parent else None,
            activity=a.activity.value if a.activity else None,
            flow=a.flow.value if a.flow else None,
            pnl_class=a.pnl_class.value if a.pnl_class else None,
            position=position,
        )
        session.add(row)
        session.flush()
        rows[code] = row
        added["articles"] += 1
    for cash, pnl in CASH_TO_PNL.items():
        if rows[cash].pnl_article_id is None:
            rows[cash].pnl_article_id = rows[pnl].id
            session.add(rows[cash])
    existing = {i.name for i in _indicators(session, tenant_id)}
    for position, ind in enumerate(INDICATORS):
        if ind.name not in existing:
            statement = Statement.CASH_FLOW if "cash_flow" in ind.name else Statement.PNL
            session.add(
                FinIndicator(
                    tenant_id=tenant_id,
                    statement=statement.value,
                    name=ind.name,
                    title=ind.title,
                    formula=ind.formula,
                    places=ind.places,
                    position=position,
                )
            )
            added["indicators"] += 1
    have = set(session.scalars(select(FinDataSource.article_id).where(FinDataSource.tenant_id == tenant_id)))  # type: ignore[arg-type]
    for code, key in VITRINA_SOURCES.items():
        if rows[code].id not in have:
            session.add(
                FinDataSource(tenant_id=tenant_id, article_id=rows[code].id, kind=SourceKind.VITRINA, vitrina_key=key)  # type: ignore[arg-type]
            )
            added["data_sources"] += 1
    _check_tree(session, tenant_id)
    validate_indicators(session, tenant_id)
    session.commit()
    return added


# ---------------------------------------------------------------- ЦФО, projects


def list_cfos(session: Session, tenant_id: int) -> list[CfoPublic]:
    rows = session.scalars(select(FinCfo).where(FinCfo.tenant_id == tenant_id).order_by(FinCfo.code))  # type: ignore[arg-type]
    return [CfoPublic.model_validate(r, from_attributes=True) for r in rows]


def save_cfo(session: Session, tenant_id: int, data: CfoIn, cfo_id: int | None = None) -> CfoPublic:
    if cfo_id is None:
        row = FinCfo(tenant_id=tenant_id)
    else:
        found = _get(session, FinCfo, tenant_id, cfo_id, "ЦФО")
        assert isinstance(found, FinCfo)
        row = found
    clash = session.scalar(
        select(FinCfo.id).where(FinCfo.tenant_id == tenant_id, FinCfo.code == data.code, FinCfo.id != cfo_id)  # type: ignore[arg-type]
    )
    if clash is not None:
        raise Conflict(f"ЦФО с кодом {data.code} уже есть", code="duplicate_cfo")
    if data.store_id is not None:
        from cloud.registry.models import Store

        store = session.get(Store, data.store_id)
        if store is None or store.tenant_id != tenant_id:
            raise Invalid(f"ЦФО {data.code}: магазина {data.store_id} нет", code="unknown_store")
    row.code, row.name, row.store_id, row.active = data.code, data.name, data.store_id, data.active
    session.add(row)
    session.commit()
    return CfoPublic.model_validate(row, from_attributes=True)


def list_projects(session: Session, tenant_id: int) -> list[ProjectPublic]:
    rows = session.scalars(select(FinProject).where(FinProject.tenant_id == tenant_id).order_by(FinProject.code))  # type: ignore[arg-type]
    return [ProjectPublic.model_validate(r, from_attributes=True) for r in rows]


def save_project(session: Session, tenant_id: int, data: ProjectIn, project_id: int | None = None) -> ProjectPublic:
    if project_id is None:
        row = FinProject(tenant_id=tenant_id)
    else:
        found = _get(session, FinProject, tenant_id, project_id, "проект")
        assert isinstance(found, FinProject)
        row = found
    clash = session.scalar(
        select(FinProject.id).where(
            FinProject.tenant_id == tenant_id, FinProject.code == data.code, FinProject.id != project_id  # type: ignore[arg-type]
        )
    )
    if clash is not None:
        raise Conflict(f"проект с кодом {data.code} уже есть", code="duplicate_project")
    row.code, row.name, row.active = data.code, data.name, data.active
    session.add(row)
    session.commit()
    return ProjectPublic.model_validate(row, from_attributes=True)


def delete_reference(session: Session, tenant_id: int, kind: str, row_id: int) -> None:
    """Delete a ЦФО or a project nothing is allocated to."""
    model: type[FinCfo] | type[FinProject] = FinCfo if kind == "cfo" else FinProject
    row = _get(session, model, tenant_id, row_id, "ЦФО" if kind == "cfo" else "проект")
    column = FinOperationPart.cfo_id if kind == "cfo" else FinOperationPart.project_id
    used = session.scalar(select(func.count()).where(column == row_id))  # type: ignore[arg-type]
    if used:
        raise Conflict(f"на {getattr(row, 'code', row_id)} разнесено {used} частей операций", code="in_use")
    session.delete(row)
    session.commit()


# ---------------------------------------------------------------- legal entities, accounts


def _account_public(a: FinAccount) -> AccountPublic:
    assert a.id is not None
    return AccountPublic(
        id=a.id,
        legal_entity_id=a.legal_entity_id,
        number=a.number,
        name=a.name,
        bank_name=a.bank_name,
        bic=a.bic,
        currency=a.currency,
        balance_date=a.balance_date,
        opening_balance=from_kop(a.opening_balance_kop),
    )


def _entity_public(session: Session, e: FinLegalEntity) -> LegalEntityPublic:
    assert e.id is not None
    accounts = session.scalars(select(FinAccount).where(FinAccount.legal_entity_id == e.id).order_by(FinAccount.number))  # type: ignore[arg-type]
    return LegalEntityPublic(
        id=e.id, name=e.name, inn=e.inn, kpp=e.kpp, accounts=[_account_public(a) for a in accounts]
    )


def list_entities(session: Session, tenant_id: int) -> list[LegalEntityPublic]:
    rows = session.scalars(select(FinLegalEntity).where(FinLegalEntity.tenant_id == tenant_id).order_by(FinLegalEntity.id))  # type: ignore[arg-type]
    return [_entity_public(session, e) for e in rows]


def create_entity(session: Session, tenant_id: int, data: LegalEntityIn) -> LegalEntityPublic:
    clash = session.scalar(
        select(FinLegalEntity.id).where(
            FinLegalEntity.tenant_id == tenant_id, FinLegalEntity.inn == data.inn, FinLegalEntity.kpp == data.kpp  # type: ignore[arg-type]
        )
    )
    if clash is not None:
        raise Conflict(f"юрлицо с ИНН {data.inn} и КПП {data.kpp or '—'} уже есть", code="duplicate_entity")
    entity = FinLegalEntity(tenant_id=tenant_id, name=data.name, inn=data.inn, kpp=data.kpp)
    session.add(entity)
    session.flush()
    assert entity.id is not None
    for account in data.accounts:
        _add_account(session, tenant_id, entity.id, account)
    session.commit()
    return _entity_public(session, entity)


def _add_account(session: Session, tenant_id: int, entity_id: int, data: AccountIn) -> FinAccount:
    clash = session.scalar(
        select(FinAccount.id).where(FinAccount.tenant_id == tenant_id, FinAccount.number == data.number)  # type: ignore[arg-type]
    )
    if clash is not None:
        raise Conflict(f"счёт {data.number} уже заведён", code="duplicate_account")
    row = FinAccount(
        tenant_id=tenant_id,
        legal_entity_id=entity_id,
        number=data.number,
        name=data.name,
        bank_name=data.bank_name,
        bic=data.bic,
        currency=data.currency,
        balance_date=data.balance_date,
        opening_balance_kop=to_kop(data.opening_balance),
    )
    session.add(row)
    session.flush()
    return row


def add_account(session: Session, tenant_id: int, entity_id: int, data: AccountIn) -> AccountPublic:
    _get(session, FinLegalEntity, tenant_id, entity_id, "юрлицо")
    row = _add_account(session, tenant_id, entity_id, data)
    session.commit()
    return _account_public(row)


# ---------------------------------------------------------------- counterparties


def list_counterparties(session: Session, tenant_id: int, q: str | None = None) -> list[CounterpartyPublic]:
    stmt = select(FinCounterparty).where(FinCounterparty.tenant_id == tenant_id)  # type: ignore[arg-type]
    if q:
        stmt = stmt.where(FinCounterparty.name.ilike(f"%{q}%") | (FinCounterparty.inn == q))  # type: ignore[attr-defined]
    return [
        CounterpartyPublic.model_validate(r, from_attributes=True)
        for r in session.scalars(stmt.order_by(FinCounterparty.name).limit(1000))
    ]


def save_counterparty(
    session: Session, tenant_id: int, data: CounterpartyIn, row_id: int | None = None
) -> CounterpartyPublic:
    if data.inn and (not data.inn.isdigit() or len(data.inn) not in (10, 12)):
        raise Invalid(f"контрагент «{data.name}»: ИНН {data.inn} — не 10 и не 12 цифр", code="bad_inn")
    if row_id is None:
        row = FinCounterparty(tenant_id=tenant_id)
    else:
        found = _get(session, FinCounterparty, tenant_id, row_id, "контрагент")
        assert isinstance(found, FinCounterparty)
        row = found
    if data.inn:
        clash = session.scalar(
            select(FinCounterparty.id).where(
                FinCounterparty.tenant_id == tenant_id,  # type: ignore[arg-type]
                FinCounterparty.inn == data.inn,  # type: ignore[arg-type]
                FinCounterparty.kpp == data.kpp,  # type: ignore[arg-type]
                FinCounterparty.id != row_id,  # type: ignore[arg-type]
            )
        )
        if clash is not None:
            raise Conflict(f"контрагент с ИНН {data.inn} и КПП {data.kpp or '—'} уже есть", code="duplicate_counterparty")
    row.inn, row.kpp, row.name, row.kind = data.inn, data.kpp, data.name, data.kind.value
    session.add(row)
    session.commit()
    return CounterpartyPublic.model_validate(row, from_attributes=True)


# ---------------------------------------------------------------- indicators


def _indicators(session: Session, tenant_id: int) -> list[FinIndicator]:
    return list(
        session.scalars(
            select(FinIndicator).where(FinIndicator.tenant_id == tenant_id).order_by(FinIndicator.position, FinIndicator.id)  # type: ignore[arg-type]
        )
    )


def _refs(row: FinIndicator) -> frozenset[str]:
    from cloud.finance.formulas import parse, references

    return references(parse(row.formula)) if row.formula else frozenset()


def indicator_set(session: Session, tenant_id: int, rows: list[FinIndicator] | None = None) -> IndicatorSet:
    """Calculated indicators validated against the articles and the user indicators (whose
    hand-entered values play the part of articles in formulas)."""
    rows = rows if rows is not None else _indicators(session, tenant_id)
    codes = set(session.scalars(select(FinArticle.code).where(FinArticle.tenant_id == tenant_id)))  # type: ignore[arg-type]
    user = {r.name for r in rows if not r.formula}
    calculated = [Indicator(r.name, r.formula, r.title, r.places) for r in rows if r.formula]
    clash = sorted(user & codes)
    if clash:
        raise Invalid(f"пользовательский показатель совпадает с кодом статьи: {', '.join(clash)}", code="duplicate_name")
    try:
        return IndicatorSet(calculated, codes | user)
    except FinanceError as exc:
        raise invalid_from(exc) from exc


def validate_indicators(session: Session, tenant_id: int) -> IndicatorSet:
    session.flush()
    return indicator_set(session, tenant_id)


def _indicator_public(r: FinIndicator) -> IndicatorPublic:
    assert r.id is not None
    return IndicatorPublic(
        id=r.id,
        statement=r.statement,
        name=r.name,
        title=r.title,
        formula=r.formula,
        places=r.places,
        position=r.position,
        kind="calculated" if r.formula else "user",
    )


def list_indicators(session: Session, tenant_id: int) -> list[IndicatorPublic]:
    return [_indicator_public(r) for r in _indicators(session, tenant_id)]


def save_indicator(session: Session, tenant_id: int, data: IndicatorIn, row_id: int | None = None) -> IndicatorPublic:
    if data.statement not in STATEMENTS:
        raise Invalid(f"показатель {data.name}: отчёт {data.statement!r} — не cash_flow и не pnl", code="bad_statement")
    if row_id is None:
        row = FinIndicator(tenant_id=tenant_id)
    else:
        found = _get(session, FinIndicator, tenant_id, row_id, "показатель")
        assert isinstance(found, FinIndicator)
        row = found
    clash = session.scalar(
        select(FinIndicator.id).where(
            FinIndicator.tenant_id == tenant_id, FinIndicator.name == data.name, FinIndicator.id != row_id  # type: ignore[arg-type]
        )
    )
    if clash is not None:
        raise Conflict(f"показатель «{data.name}» уже есть", code="duplicate_indicator")
    row.statement, row.name, row.title = data.statement, data.name, data.title
    row.formula, row.places, row.position = data.formula.strip(), data.places, data.position
    session.add(row)
    validate_indicators(session, tenant_id)
    session.commit()
    return _indicator_public(row)


def delete_indicator(session: Session, tenant_id: int, row_id: int) -> None:
    row = _get(session, FinIndicator, tenant_id, row_id, "показатель")
    assert isinstance(row, FinIndicator)
    session.execute(delete(FinIndicatorValue).where(FinIndicatorValue.indicator_id == row_id))  # type: ignore[arg-type]
    session.delete(row)
    validate_indicators(session, tenant_id)  # another formula may read it: refuse, naming it
    session.commit()


def set_indicator_values(session: Session, tenant_id: int, row_id: int, values: list[IndicatorValueIn]) -> int:
    row = _get(session, FinIndicator, tenant_id, row_id, "показатель")
    assert isinstance(row, FinIndicator)
    if row.formula:
        raise Invalid(f"показатель «{row.name}» расчётный: значения вручную не вводятся", code="calculated_indicator")
    n = names(session, tenant_id)
    for i, v in enumerate(values, 1):
        cfo = n.cfo(v.cfo, f"значение {i}")
        session.execute(
            delete(FinIndicatorValue).where(
                FinIndicatorValue.indicator_id == row_id,  # type: ignore[arg-type]
                FinIndicatorValue.month == v.month,  # type: ignore[arg-type]
                FinIndicatorValue.cfo_id.is_(None) if cfo is None else FinIndicatorValue.cfo_id == cfo,  # type: ignore[union-attr, arg-type]
            )
        )
        session.add(FinIndicatorValue(tenant_id=tenant_id, indicator_id=row_id, month=v.month, cfo_id=cfo, value=v.value))
    session.commit()
    return len(values)


def user_values(session: Session, tenant_id: int, cfo_ids: Sequence[int] | None) -> dict[str, dict[object, Decimal]]:
    """User indicators' values per month (summed over ЦФО, or over the chosen ones)."""
    stmt = (
        select(FinIndicator.name, FinIndicatorValue.month, func.sum(FinIndicatorValue.value))
        .join(FinIndicator, FinIndicator.id == FinIndicatorValue.indicator_id)  # type: ignore[arg-type]
        .where(FinIndicatorValue.tenant_id == tenant_id)  # type: ignore[arg-type]
        .group_by(FinIndicator.name, FinIndicatorValue.month)
    )
    if cfo_ids:
        stmt = stmt.where(FinIndicatorValue.cfo_id.in_(cfo_ids))  # type: ignore[union-attr]
    out: dict[str, dict[object, Decimal]] = {}
    for name, month, value in session.execute(stmt):
        out.setdefault(name, {})[month] = Decimal(value)
    return out


# ---------------------------------------------------------------- data sources


def list_sources(session: Session, tenant_id: int) -> list[DataSourcePublic]:
    n = names(session, tenant_id)
    rows = session.scalars(select(FinDataSource).where(FinDataSource.tenant_id == tenant_id))  # type: ignore[arg-type]
    out = []
    for r in rows:
        a = n.by_id[r.article_id]
        assert r.id is not None
        out.append(
            DataSourcePublic(
                id=r.id,
                article=a.code,
                article_name=a.name,
                statement=a.statement,
                kind=SourceKind(r.kind),
                onec_base=r.onec_base,
                onec_account=r.onec_account,
                file_name=r.file_name,
                vitrina_key=r.vitrina_key,
                responsible=r.responsible,
                note=r.note,
            )
        )
    return sorted(out, key=lambda s: (s.statement, n.articles[s.article].position, s.article))


def save_source(session: Session, tenant_id: int, data: DataSourceIn) -> DataSourcePublic:
    from cloud.finance.sources import KNOWN_KEYS

    n = names(session, tenant_id)
    article = n.article(data.article, "источник данных, поле article")
    if data.kind is SourceKind.VITRINA and data.vitrina_key not in KNOWN_KEYS:
        raise Invalid(
            f"статья {data.article}: модуль Витрины «{data.vitrina_key}» неизвестен (есть: {', '.join(sorted(KNOWN_KEYS))})",
            code="unknown_vitrina_key",
        )
    if data.kind is SourceKind.ONEC and not data.onec_base:
        raise Invalid(f"статья {data.article}: для источника 1С укажите базу (onec_base)", code="missing_onec_base")
    row = session.scalar(select(FinDataSource).where(FinDataSource.article_id == article.id))  # type: ignore[arg-type]
    if row is None:
        row = FinDataSource(tenant_id=tenant_id, article_id=article.id)  # type: ignore[arg-type]
    for field in ("onec_base", "onec_account", "file_name", "vitrina_key", "responsible", "note"):
        setattr(row, field, getattr(data, field))
    row.kind = data.kind.value
    session.add(row)
    session.commit()
    return next(s for s in list_sources(session, tenant_id) if s.article == data.article)


SOURCE_TITLES = {
    SourceKind.ONEC: "1С",
    SourceKind.EXCEL: "Excel",
    SourceKind.MANUAL: "вручную",
    SourceKind.VITRINA: "модуль Витрины",
    SourceKind.BANK: "банковская выписка",
}


def sources_xlsx(session: Session, tenant_id: int) -> bytes:
    """The roadmap as the analyst signs it: every article of both reports, its source and owner."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    n = names(session, tenant_id)
    by_article = {s.article: s for s in list_sources(session, tenant_id)}
    wb = Workbook()
    first = True
    for statement, title in ((Statement.PNL, "ПиУ"), (Statement.CASH_FLOW, "ДДС")):
        ws = wb.active if first else wb.create_sheet()
        first = False
        assert ws is not None
        ws.title = f"{title} — источники"
        header = ["Код", "Статья", "Источник", "База 1С", "Счёт учёта", "Файл Excel", "Модуль Витрины", "Ответственный", "Примечание"]
        ws.append(header)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        arts = sorted((a for a in n.by_id.values() if a.statement == statement), key=lambda a: (a.position, a.code))
        for a in arts:
            s = by_article.get(a.code)
            ws.append(
                [
                    a.code,
                    a.name,
                    SOURCE_TITLES[s.kind] if s else "не задан",
                    s.onec_base if s else "",
                    s.onec_account if s else "",
                    s.file_name if s else "",
                    s.vitrina_key if s else "",
                    s.responsible if s else "",
                    s.note if s else "",
                ]
            )
        ws.freeze_panes = "A2"
        for col, width in zip("ABCDEFGHI", (12, 48, 18, 20, 12, 20, 24, 24, 30), strict=True):
            ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
