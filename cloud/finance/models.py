"""Management-finance tables and their API shapes.

Money is stored as integer kopecks (``*_kop``) and spoken as ``Decimal`` rubles in the API;
months are the first day of the month (``date``). Every table carries ``tenant_id`` and every
query of the finance services (:mod:`cloud.finance.service` and its siblings) filters by it.

Operation amounts are positive with a ``direction``; :class:`FinTotal` keeps *signed* sums
(inflow +, outflow −) per (article, ЦФО, project, account, payment month, accrual month), kept
in step with the parts by every write, so a year's ДДС or P&L reads a few thousand total rows
instead of millions of parts. ``article_id = 0`` there is the unallocated rest of operations.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, BigInteger, Index, LargeBinary, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class CounterpartyKind(StrEnum):
    SUPPLIER = "supplier"
    CUSTOMER = "customer"
    LANDLORD = "landlord"
    TAX_OFFICE = "tax_office"
    BANK = "bank"
    EMPLOYEE = "employee"
    OWN = "own"  # our own legal entity (transfers, cash collection)
    OTHER = "other"


class SourceKind(StrEnum):
    ONEC = "onec"
    EXCEL = "excel"
    MANUAL = "manual"
    VITRINA = "vitrina"
    BANK = "bank"


class OpStatus(StrEnum):
    UNALLOCATED = "unallocated"
    SUGGESTED = "suggested"
    ALLOCATED = "allocated"


class PartOrigin(StrEnum):
    RULE = "rule"
    PERSON = "person"
    FILE = "file"  # the article came with the imported file (1C's own article column)


class ImportState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BudgetKind(StrEnum):
    PLAN = "plan"
    ESTIMATE = "estimate"


# ---------------------------------------------------------------- reference data


class FinArticle(SQLModel, table=True):
    """An article of the cash-flow (ДДС) or P&L tree; a cash-flow article may point to the P&L one."""

    __tablename__ = "fin_articles"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    statement: str = Field(max_length=16)
    code: str = Field(max_length=64)
    name: str = Field(max_length=300)
    parent_id: int | None = Field(default=None, foreign_key="fin_articles.id")
    activity: str | None = Field(default=None, max_length=16)
    flow: str | None = Field(default=None, max_length=16)
    pnl_class: str | None = Field(default=None, max_length=24)
    pnl_article_id: int | None = Field(default=None, foreign_key="fin_articles.id")
    position: int = 0


class FinCfo(SQLModel, table=True):
    """A responsibility centre (ЦФО); ``store_id`` ties it to a Vitrina store for ledger figures."""

    __tablename__ = "fin_cfos"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    store_id: int | None = Field(default=None, foreign_key="stores.id")
    active: bool = True


class FinProject(SQLModel, table=True):
    __tablename__ = "fin_projects"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    active: bool = True


class FinLegalEntity(SQLModel, table=True):
    __tablename__ = "fin_legal_entities"
    __table_args__ = (UniqueConstraint("tenant_id", "inn", "kpp"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    name: str = Field(max_length=300)
    inn: str = Field(max_length=12)
    kpp: str = Field(default="", max_length=9)


class FinAccount(SQLModel, table=True):
    """A bank account (or a cash desk) of a legal entity; the balance is known at ``balance_date``."""

    __tablename__ = "fin_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    legal_entity_id: int = Field(foreign_key="fin_legal_entities.id")
    number: str = Field(max_length=34)
    name: str = Field(default="", max_length=200)
    bank_name: str = Field(default="", max_length=200)
    bic: str = Field(default="", max_length=9)
    currency: str = Field(default="RUB", max_length=3)
    balance_date: date  # the opening balance is the balance at the start of this day
    opening_balance_kop: int = Field(default=0, sa_type=BigInteger)


class FinCounterparty(SQLModel, table=True):
    __tablename__ = "fin_counterparties"
    __table_args__ = (Index("ix_fin_counterparties_tenant_id_inn", "tenant_id", "inn"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    inn: str = Field(default="", max_length=12)
    kpp: str = Field(default="", max_length=9)
    name: str = Field(max_length=300)
    kind: str = Field(default=CounterpartyKind.OTHER.value, max_length=16)


class FinIndicator(SQLModel, table=True):
    """A calculated indicator (``formula``) or a user indicator (``formula`` empty: values by hand)."""

    __tablename__ = "fin_indicators"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    statement: str = Field(max_length=16)
    name: str = Field(max_length=64)
    title: str = Field(default="", max_length=200)
    formula: str = Field(default="", max_length=2000)
    places: int = 2
    position: int = 0


class FinIndicatorValue(SQLModel, table=True):
    """A user indicator's value for one month (and optionally one ЦФО)."""

    __tablename__ = "fin_indicator_values"
    __table_args__ = (Index("ix_fin_indicator_values_indicator_id_month", "indicator_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    indicator_id: int = Field(foreign_key="fin_indicators.id")
    month: date
    cfo_id: int | None = Field(default=None, foreign_key="fin_cfos.id")
    value: Decimal = Field(sa_type=Numeric(20, 4))


class FinDataSource(SQLModel, table=True):
    """Where an article's figures come from and who answers for them (the rollout's roadmap)."""

    __tablename__ = "fin_data_sources"
    __table_args__ = (UniqueConstraint("article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    article_id: int = Field(foreign_key="fin_articles.id")
    kind: str = Field(max_length=16)
    onec_base: str = Field(default="", max_length=200)
    onec_account: str = Field(default="", max_length=32)
    file_name: str = Field(default="", max_length=200)
    vitrina_key: str = Field(default="", max_length=64)
    responsible: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=1000)


# ---------------------------------------------------------------- operations


class FinImport(SQLModel, table=True):
    __tablename__ = "fin_imports"
    __table_args__ = (Index("ix_fin_imports_tenant_id_created_at", "tenant_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    kind: str = Field(max_length=16)  # onec | xlsx | csv
    file_name: str = Field(default="", max_length=300)
    state: str = Field(default=ImportState.PENDING.value, max_length=16)
    total: int = 0
    processed: int = 0
    created: int = 0
    duplicates: int = 0
    allocated: int = 0
    options: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    errors: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    balance_differences: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    content: bytes | None = Field(default=None, sa_type=LargeBinary)
    user_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class FinOperation(SQLModel, table=True):
    """A bank or cash movement; ``amount_kop`` > 0 and ``direction`` says which way."""

    __tablename__ = "fin_operations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_fin_operations_tenant_id_booked_on", "tenant_id", "booked_on"),
        Index("ix_fin_operations_account_id_booked_on", "account_id", "booked_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    account_id: int = Field(foreign_key="fin_accounts.id")
    booked_on: date
    direction: str = Field(max_length=8)
    amount_kop: int = Field(sa_type=BigInteger)
    counterparty_id: int | None = Field(default=None, foreign_key="fin_counterparties.id")
    counterparty_inn: str = Field(default="", max_length=12)
    counterparty_name: str = Field(default="", max_length=300)
    counterparty_account: str = Field(default="", max_length=34)
    purpose: str = Field(default="", max_length=1000)
    doc_number: str = Field(default="", max_length=32)
    dedupe_key: str = Field(max_length=64)
    status: str = Field(default=OpStatus.UNALLOCATED.value, max_length=16)
    origin: str = Field(default="", max_length=8)  # who allocated it: rule | person | file ("" = nobody)
    suggestion: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    import_id: int | None = Field(default=None, foreign_key="fin_imports.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class FinOperationPart(SQLModel, table=True):
    """One part of an operation: an article, ЦФО, project and accrual month; who allocated it.

    ``booked_on``, ``account_id`` and ``direction`` are copies of the operation's, so reports and
    drill-downs filter parts without a join.
    """

    __tablename__ = "fin_operation_parts"
    __table_args__ = (
        Index("ix_fin_operation_parts_operation_id", "operation_id"),
        Index("ix_fin_operation_parts_tenant_id_article_id_booked_on", "tenant_id", "article_id", "booked_on"),
        Index(
            "ix_fin_operation_parts_tenant_id_article_id_accrual_month", "tenant_id", "article_id", "accrual_month"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    operation_id: int = Field(foreign_key="fin_operations.id")
    account_id: int = Field(foreign_key="fin_accounts.id")
    booked_on: date
    direction: str = Field(max_length=8)
    article_id: int = Field(foreign_key="fin_articles.id")
    cfo_id: int | None = Field(default=None, foreign_key="fin_cfos.id")
    project_id: int | None = Field(default=None, foreign_key="fin_projects.id")
    accrual_month: date
    amount_kop: int = Field(sa_type=BigInteger)
    origin: str = Field(max_length=8)
    rule_id: int | None = Field(default=None, foreign_key="fin_rules.id")
    user_id: int | None = Field(default=None, foreign_key="users.id")


class FinTotal(SQLModel, table=True):
    """Signed sums of parts (and of the unallocated rest, ``article_id`` 0) per key; see the module doc."""

    __tablename__ = "fin_totals"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "article_id", "cfo_id", "project_id", "account_id", "cash_month", "accrual_month"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    article_id: int  # 0: not allocated; no foreign key on purpose
    cfo_id: int  # 0: none
    project_id: int  # 0: none
    account_id: int
    cash_month: date
    accrual_month: date
    amount_kop: int = Field(default=0, sa_type=BigInteger)
    parts: int = 0


class FinRule(SQLModel, table=True):
    """An allocation rule as the engine has it; ``condition``/``shares`` are its JSON form."""

    __tablename__ = "fin_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    name: str = Field(max_length=200)
    priority: int = 100
    suggest_only: bool = False
    active: bool = True
    condition: dict[str, Any] = Field(sa_type=JSON)
    shares: list[dict[str, Any]] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# ---------------------------------------------------------------- budgets


class FinBudget(SQLModel, table=True):
    __tablename__ = "fin_budgets"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    name: str = Field(max_length=200)
    kind: str = Field(default=BudgetKind.PLAN.value, max_length=16)
    statement: str = Field(max_length=16)
    date_from: date
    date_to: date


class FinBudgetLine(SQLModel, table=True):
    __tablename__ = "fin_budget_lines"
    __table_args__ = (Index("ix_fin_budget_lines_budget_id_article_id", "budget_id", "article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    budget_id: int = Field(foreign_key="fin_budgets.id")
    article_id: int = Field(foreign_key="fin_articles.id")
    cfo_id: int | None = Field(default=None, foreign_key="fin_cfos.id")
    month: date
    amount_kop: int = Field(sa_type=BigInteger)


# ---------------------------------------------------------------- API shapes


def _month(value: date) -> date:
    return value.replace(day=1)


class ArticleIn(SQLModel):
    statement: str
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=300)
    parent: str | None = None
    activity: str | None = None
    flow: str | None = None
    pnl_class: str | None = None
    pnl_article: str | None = None  # cash-flow article → the P&L article it lands on
    position: int = 0


class ArticleUpdate(SQLModel):
    code: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=300)
    pnl_article: str | None = None
    position: int | None = None


class ArticlePublic(SQLModel):
    id: int
    statement: str
    code: str
    name: str
    parent: str | None
    activity: str | None
    flow: str | None
    pnl_class: str | None
    pnl_article: str | None
    position: int


class CfoIn(SQLModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    store_id: int | None = None
    active: bool = True


class CfoPublic(CfoIn):
    id: int


class ProjectIn(SQLModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    active: bool = True


class ProjectPublic(ProjectIn):
    id: int


class AccountIn(SQLModel):
    number: str = Field(min_length=1, max_length=34)
    name: str = ""
    bank_name: str = ""
    bic: str = ""
    currency: str = "RUB"
    balance_date: date
    opening_balance: Decimal = Decimal("0.00")


class AccountPublic(AccountIn):
    id: int
    legal_entity_id: int


class LegalEntityIn(SQLModel):
    name: str = Field(min_length=1, max_length=300)
    inn: str = Field(min_length=10, max_length=12)
    kpp: str = Field(default="", max_length=9)
    accounts: list[AccountIn] = []

    @field_validator("inn")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not value.isdigit() or len(value) not in (10, 12):
            raise ValueError("ИНН — 10 или 12 цифр")
        return value


class LegalEntityPublic(SQLModel):
    id: int
    name: str
    inn: str
    kpp: str
    accounts: list[AccountPublic]


class CounterpartyIn(SQLModel):
    inn: str = Field(default="", max_length=12)
    kpp: str = Field(default="", max_length=9)
    name: str = Field(min_length=1, max_length=300)
    kind: CounterpartyKind = CounterpartyKind.OTHER


class CounterpartyPublic(CounterpartyIn):
    id: int


class IndicatorIn(SQLModel):
    statement: str
    name: str = Field(min_length=1, max_length=64)
    title: str = ""
    formula: str = ""  # empty: a user indicator, entered by hand per month
    places: int = Field(default=2, ge=0, le=6)
    position: int = 0


class IndicatorPublic(IndicatorIn):
    id: int
    kind: str  # calculated | user


class IndicatorValueIn(SQLModel):
    month: date
    value: Decimal
    cfo: str | None = None

    @field_validator("month")
    @classmethod
    def _first_day(cls, value: date) -> date:
        return _month(value)


class DataSourceIn(SQLModel):
    article: str
    kind: SourceKind
    onec_base: str = ""
    onec_account: str = ""
    file_name: str = ""
    vitrina_key: str = ""
    responsible: str = ""
    note: str = ""


class DataSourcePublic(DataSourceIn):
    id: int
    article_name: str
    statement: str


class PartIn(SQLModel):
    article: str
    amount: Decimal
    accrual_month: date | None = None  # default: the month of the payment
    cfo: str | None = None
    project: str | None = None


class OperationIn(SQLModel):
    """A movement entered by hand (cash desk, an operation the bank file lacks)."""

    account: str
    booked_on: date
    direction: str
    amount: Decimal = Field(gt=0)
    counterparty_inn: str = ""
    counterparty_name: str = ""
    purpose: str = ""
    doc_number: str = ""
    parts: list[PartIn] = []


class PartPublic(SQLModel):
    id: int
    operation_id: int
    article: str
    cfo: str | None
    project: str | None
    accrual_month: date
    amount: Decimal
    origin: str
    rule: str | None
    user_id: int | None
    booked_on: date
    direction: str
    account: str
    counterparty_name: str
    purpose: str


class OperationPublic(SQLModel):
    id: int
    account: str
    booked_on: date
    direction: str
    amount: Decimal
    counterparty_inn: str
    counterparty_name: str
    purpose: str
    doc_number: str
    status: str
    suggestion: dict[str, Any] | None
    parts: list[PartPublic]


class ImportPublic(SQLModel):
    id: int
    kind: str
    file_name: str
    state: str
    total: int
    processed: int
    created: int
    duplicates: int
    allocated: int
    errors: list[dict[str, Any]]
    balance_differences: list[dict[str, Any]]


class TableImportIn(SQLModel):
    """An XLSX or CSV file of operations (base64) and which column holds what.

    ``columns`` maps our field → the column header in the file: ``date``, ``amount`` (signed:
    negative is an outflow) or ``inflow``/``outflow``, ``account``, ``counterparty_inn``,
    ``counterparty_name``, ``purpose``, ``number``, ``article`` (1C's article name, our name or
    code), ``cfo``, ``project``. ``article_names`` maps more article names of the file to our codes.
    """

    file_name: str
    format: str  # xlsx | csv
    content_b64: str
    columns: dict[str, str]
    article_names: dict[str, str] = {}
    account: str | None = None  # every row's account when the file has no account column
    date_format: str = "%d.%m.%Y"


class ShareIn(SQLModel):
    article: str
    percent: Decimal = Decimal(100)
    cfo: str | None = None
    project: str | None = None
    month_shift: int = 0


class ConditionIn(SQLModel):
    direction: str | None = None
    own_accounts: list[str] = []
    counterparty_inns: list[str] = []
    counterparty_names: list[str] = []
    name_cutoff: float = 85.0
    purpose_contains: list[str] = []
    purpose_excludes: list[str] = []
    purpose_regex: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    date_from: date | None = None
    date_to: date | None = None


class RuleIn(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    priority: int = 100
    suggest_only: bool = False
    active: bool = True
    condition: ConditionIn = ConditionIn()
    shares: list[ShareIn]


class RulePublic(RuleIn):
    id: int


class AllocateIn(SQLModel):
    date_from: date
    date_to: date
    reallocate_rules: bool = False  # also redo parts that rules made before (never a person's)


class ManualAllocationIn(SQLModel):
    parts: list[PartIn]


class BudgetIn(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    kind: BudgetKind = BudgetKind.PLAN
    statement: str
    date_from: date
    date_to: date


class BudgetPublic(BudgetIn):
    id: int


class BudgetLineIn(SQLModel):
    article: str
    cfo: str | None = None
    month: date
    amount: Decimal

    @field_validator("month")
    @classmethod
    def _first_day(cls, value: date) -> date:
        return _month(value)


class BudgetFileIn(SQLModel):
    """XLSX (base64): a header row ``article | cfo | <month> | <month> …``, one row per article."""

    content_b64: str
    replace: bool = True
