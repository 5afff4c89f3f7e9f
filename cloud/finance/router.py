"""Management-finance endpoints under ``/finance``: setup, operations, imports, rules, reports, budgets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from cloud.deps import CurrentUser, SessionDep, TenantId
from cloud.errors import Invalid
from cloud.finance import budgets, imports, reports, rules, service, setup, tables, tasks
from cloud.finance.models import (
    AccountIn,
    AccountPublic,
    AllocateIn,
    ArticleIn,
    ArticlePublic,
    ArticleUpdate,
    BudgetFileIn,
    BudgetIn,
    BudgetLineIn,
    BudgetPublic,
    CfoIn,
    CfoPublic,
    CounterpartyIn,
    CounterpartyPublic,
    DataSourceIn,
    DataSourcePublic,
    ImportPublic,
    IndicatorIn,
    IndicatorPublic,
    IndicatorValueIn,
    LegalEntityIn,
    LegalEntityPublic,
    ManualAllocationIn,
    OperationIn,
    OperationPublic,
    ProjectIn,
    ProjectPublic,
    RuleIn,
    RulePublic,
    TableImportIn,
)

router = APIRouter(prefix="/finance", tags=["finance"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD = 64 * 1024 * 1024


def _json(data: Any) -> JSONResponse:
    """A report as JSON with money as strings ("110000.00"): never a float on the way out."""
    return JSONResponse(jsonable_encoder(data, custom_encoder={Decimal: str}))


def _xlsx(content: bytes, name: str) -> Response:
    return Response(content, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ---------------------------------------------------------------- setup


@router.post("/setup/template")
def load_template(session: SessionDep, tenant_id: TenantId) -> dict[str, int]:
    """Load the food-chain template (ДДС and ПиУ trees, P&L links, indicators, Vitrina sources)."""
    return setup.load_template(session, tenant_id)


@router.get("/articles", response_model=list[ArticlePublic])
def list_articles(session: SessionDep, tenant_id: TenantId, statement: str | None = None) -> list[ArticlePublic]:
    return setup.list_articles(session, tenant_id, statement)


@router.post("/articles", response_model=ArticlePublic, status_code=201)
def create_article(data: ArticleIn, session: SessionDep, tenant_id: TenantId) -> ArticlePublic:
    return setup.create_article(session, tenant_id, data)


@router.patch("/articles/{article_id}", response_model=ArticlePublic)
def update_article(article_id: int, data: ArticleUpdate, session: SessionDep, tenant_id: TenantId) -> ArticlePublic:
    return setup.update_article(session, tenant_id, article_id, data)


@router.delete("/articles/{article_id}", status_code=204)
def delete_article(article_id: int, session: SessionDep, tenant_id: TenantId) -> None:
    setup.delete_article(session, tenant_id, article_id)


@router.get("/cfos", response_model=list[CfoPublic])
def list_cfos(session: SessionDep, tenant_id: TenantId) -> list[CfoPublic]:
    return setup.list_cfos(session, tenant_id)


@router.post("/cfos", response_model=CfoPublic, status_code=201)
def create_cfo(data: CfoIn, session: SessionDep, tenant_id: TenantId) -> CfoPublic:
    return setup.save_cfo(session, tenant_id, data)


@router.put("/cfos/{cfo_id}", response_model=CfoPublic)
def update_cfo(cfo_id: int, data: CfoIn, session: SessionDep, tenant_id: TenantId) -> CfoPublic:
    return setup.save_cfo(session, tenant_id, data, cfo_id)


@router.delete("/cfos/{cfo_id}", status_code=204)
def delete_cfo(cfo_id: int, session: SessionDep, tenant_id: TenantId) -> None:
    setup.delete_reference(session, tenant_id, "cfo", cfo_id)


@router.get("/projects", response_model=list[ProjectPublic])
def list_projects(session: SessionDep, tenant_id: TenantId) -> list[ProjectPublic]:
    return setup.list_projects(session, tenant_id)


@router.post("/projects", response_model=ProjectPublic, status_code=201)
def create_project(data: ProjectIn, session: SessionDep, tenant_id: TenantId) -> ProjectPublic:
    return setup.save_project(session, tenant_id, data)


@router.put("/projects/{project_id}", response_model=ProjectPublic)
def update_project(project_id: int, data: ProjectIn, session: SessionDep, tenant_id: TenantId) -> ProjectPublic:
    return setup.save_project(session, tenant_id, data, project_id)


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(project_id: int, session: SessionDep, tenant_id: TenantId) -> None:
    setup.delete_reference(session, tenant_id, "project", project_id)


@router.get("/legal-entities", response_model=list[LegalEntityPublic])
def list_entities(session: SessionDep, tenant_id: TenantId) -> list[LegalEntityPublic]:
    return setup.list_entities(session, tenant_id)


@router.post("/legal-entities", response_model=LegalEntityPublic, status_code=201)
def create_entity(data: LegalEntityIn, session: SessionDep, tenant_id: TenantId) -> LegalEntityPublic:
    return setup.create_entity(session, tenant_id, data)


@router.post("/legal-entities/{entity_id}/accounts", response_model=AccountPublic, status_code=201)
def add_account(entity_id: int, data: AccountIn, session: SessionDep, tenant_id: TenantId) -> AccountPublic:
    return setup.add_account(session, tenant_id, entity_id, data)


@router.get("/counterparties", response_model=list[CounterpartyPublic])
def list_counterparties(session: SessionDep, tenant_id: TenantId, q: str | None = None) -> list[CounterpartyPublic]:
    return setup.list_counterparties(session, tenant_id, q)


@router.post("/counterparties", response_model=CounterpartyPublic, status_code=201)
def create_counterparty(data: CounterpartyIn, session: SessionDep, tenant_id: TenantId) -> CounterpartyPublic:
    return setup.save_counterparty(session, tenant_id, data)


@router.put("/counterparties/{row_id}", response_model=CounterpartyPublic)
def update_counterparty(row_id: int, data: CounterpartyIn, session: SessionDep, tenant_id: TenantId) -> CounterpartyPublic:
    return setup.save_counterparty(session, tenant_id, data, row_id)


@router.get("/indicators", response_model=list[IndicatorPublic])
def list_indicators(session: SessionDep, tenant_id: TenantId) -> list[IndicatorPublic]:
    return setup.list_indicators(session, tenant_id)


@router.post("/indicators", response_model=IndicatorPublic, status_code=201)
def create_indicator(data: IndicatorIn, session: SessionDep, tenant_id: TenantId) -> IndicatorPublic:
    """A calculated indicator (validated: unknown names and cycles → 422 naming them) or, with an
    empty formula, a user indicator whose values are entered per month."""
    return setup.save_indicator(session, tenant_id, data)


@router.put("/indicators/{row_id}", response_model=IndicatorPublic)
def update_indicator(row_id: int, data: IndicatorIn, session: SessionDep, tenant_id: TenantId) -> IndicatorPublic:
    return setup.save_indicator(session, tenant_id, data, row_id)


@router.delete("/indicators/{row_id}", status_code=204)
def delete_indicator(row_id: int, session: SessionDep, tenant_id: TenantId) -> None:
    setup.delete_indicator(session, tenant_id, row_id)


@router.put("/indicators/{row_id}/values")
def set_indicator_values(row_id: int, values: list[IndicatorValueIn], session: SessionDep, tenant_id: TenantId) -> dict[str, int]:
    return {"saved": setup.set_indicator_values(session, tenant_id, row_id, values)}


@router.get("/data-sources", response_model=list[DataSourcePublic])
def list_sources(session: SessionDep, tenant_id: TenantId) -> list[DataSourcePublic]:
    return setup.list_sources(session, tenant_id)


@router.put("/data-sources", response_model=DataSourcePublic)
def save_source(data: DataSourceIn, session: SessionDep, tenant_id: TenantId) -> DataSourcePublic:
    return setup.save_source(session, tenant_id, data)


@router.get("/data-sources.xlsx")
def sources_xlsx(session: SessionDep, tenant_id: TenantId) -> Response:
    return _xlsx(setup.sources_xlsx(session, tenant_id), "data-sources.xlsx")


# ---------------------------------------------------------------- imports


def _queue(request: Request, session: SessionDep, tenant_id: int, import_id: int) -> ImportPublic:
    from cloud.worker import celery_app  # Redis workers, or eager in this process without Redis

    celery_app.tasks[tasks.import_operations.name].delay(import_id, request.app.state.settings.database_url)
    return imports.get_import(session, tenant_id, import_id)


@router.post("/imports/bank-statement", response_model=ImportPublic, status_code=202)
async def import_statement(request: Request, session: SessionDep, tenant_id: TenantId, user: CurrentUser,
                           file_name: str | None = None) -> ImportPublic:
    """Body: the 1CClientBankExchange file as is (``application/octet-stream``, any code page it
    declares), or a ``multipart/form-data`` form with the file in its ``file`` field (a browser's
    upload form); the bytes are taken as they are either way."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        content, uploaded_name = await _form_file(request)
        file_name = file_name or uploaded_name
    else:
        content = await request.body()
    file_name = file_name or "statement.txt"
    if not content:
        raise Invalid("тело запроса пустое: пришлите файл выписки", code="empty_file")
    if len(content) > MAX_UPLOAD:
        raise Invalid("файл больше 64 МБ: разбейте выписку по периодам", code="file_too_large")
    row = imports.start_import(session, tenant_id, user.id, "onec", file_name, content)
    assert row.id is not None
    return _queue(request, session, tenant_id, row.id)


async def _form_file(request: Request) -> tuple[bytes, str]:
    """The ``file`` field of a multipart form: its bytes and the name it was uploaded under."""
    try:
        form = await request.form(max_files=1)
    except (MultiPartException, HTTPException) as exc:  # Starlette wraps the parser's error in a 400
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise Invalid(f"форма multipart/form-data не разбирается: {detail}", code="bad_form") from exc
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid("в форме нет файла в поле file", code="no_file")
        if upload.size is not None and upload.size > MAX_UPLOAD:
            raise Invalid("файл больше 64 МБ: разбейте выписку по периодам", code="file_too_large")
        return await upload.read(), upload.filename or ""
    finally:
        await form.close()


@router.post("/imports/table", response_model=ImportPublic, status_code=202)
def import_table(data: TableImportIn, request: Request, session: SessionDep, tenant_id: TenantId,
                 user: CurrentUser) -> ImportPublic:
    if data.format not in ("xlsx", "csv"):
        raise Invalid(f"формат {data.format!r}: бывает xlsx или csv", code="bad_format")
    content = tables.decode_b64(data.content_b64)
    options = data.model_dump(mode="json", exclude={"content_b64", "format"})
    row = imports.start_import(session, tenant_id, user.id, data.format, data.file_name, content, options)
    assert row.id is not None
    return _queue(request, session, tenant_id, row.id)


@router.get("/imports/{import_id}", response_model=ImportPublic)
def get_import(import_id: int, session: SessionDep, tenant_id: TenantId) -> ImportPublic:
    return imports.get_import(session, tenant_id, import_id)


# ---------------------------------------------------------------- operations, rules


@router.get("/operations", response_model=list[OperationPublic])
def list_operations(session: SessionDep, tenant_id: TenantId, date_from: dt.date, date_to: dt.date,
                    status: str | None = None, limit: Annotated[int, Query(le=1000)] = 200, offset: int = 0) -> list[OperationPublic]:
    return service.list_operations(session, tenant_id, date_from, date_to, status, limit, offset)


@router.post("/operations", response_model=OperationPublic, status_code=201)
def create_operation(data: OperationIn, session: SessionDep, tenant_id: TenantId, user: CurrentUser) -> OperationPublic:
    return service.create_operation(session, tenant_id, data, user.id)


@router.get("/operations/{op_id}", response_model=OperationPublic)
def get_operation(op_id: int, session: SessionDep, tenant_id: TenantId) -> OperationPublic:
    return service.get_operation(session, tenant_id, op_id)


@router.put("/operations/{op_id}/allocation", response_model=OperationPublic)
def allocate_by_hand(op_id: int, data: ManualAllocationIn, session: SessionDep, tenant_id: TenantId,
                     user: CurrentUser) -> OperationPublic:
    """Allocate by hand: the parts (article, ЦФО, project, accrual month) must sum to the operation."""
    return service.allocate_by_hand(session, tenant_id, op_id, data.parts, user.id)


@router.post("/operations/{op_id}/accept-suggestion", response_model=OperationPublic)
def accept_suggestion(op_id: int, session: SessionDep, tenant_id: TenantId, user: CurrentUser) -> OperationPublic:
    return service.accept_suggestion(session, tenant_id, op_id, user.id)


@router.post("/allocate")
def allocate(data: AllocateIn, session: SessionDep, tenant_id: TenantId) -> dict[str, int]:
    """Apply the rules to the period's operations nobody allocated yet."""
    return service.allocate_period(session, tenant_id, data.date_from, data.date_to, data.reallocate_rules)


@router.get("/rules", response_model=list[RulePublic])
def list_rules(session: SessionDep, tenant_id: TenantId) -> list[RulePublic]:
    return rules.list_rules(session, tenant_id)


@router.post("/rules", response_model=RulePublic, status_code=201)
def create_rule(data: RuleIn, session: SessionDep, tenant_id: TenantId) -> RulePublic:
    return rules.save_rule(session, tenant_id, data)


@router.put("/rules/{rule_id}", response_model=RulePublic)
def update_rule(rule_id: int, data: RuleIn, session: SessionDep, tenant_id: TenantId) -> RulePublic:
    return rules.save_rule(session, tenant_id, data, rule_id)


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(rule_id: int, session: SessionDep, tenant_id: TenantId) -> None:
    rules.delete_rule(session, tenant_id, rule_id)


@router.get("/rules/suggestions")
def rule_suggestions(session: SessionDep, tenant_id: TenantId, date_from: dt.date, date_to: dt.date) -> JSONResponse:
    """Rules learned from hand allocations of the period, with their expected coverage."""
    return _json(service.learned_suggestions(session, tenant_id, date_from, date_to))


@router.get("/coverage")
def coverage(session: SessionDep, tenant_id: TenantId, date_from: dt.date, date_to: dt.date) -> JSONResponse:
    return _json(service.coverage(session, tenant_id, date_from, date_to))


# ---------------------------------------------------------------- reports


def _filters(legal_entity_id: int | None, cfo: str | None, project: str | None) -> reports.Filters:
    return reports.Filters(legal_entity_id, cfo, project)


@router.get("/reports/cash-flow", response_model=None)
def cash_flow(session: SessionDep, tenant_id: TenantId, date_from: dt.date, date_to: dt.date,
              granularity: str = "month", legal_entity_id: int | None = None, cfo: str | None = None,
              project: str | None = None, format: str = "json") -> Response:
    report = reports.cash_flow(session, tenant_id, date_from, date_to, granularity, _filters(legal_entity_id, cfo, project))
    return _xlsx(reports.to_xlsx(report), "cash-flow.xlsx") if format == "xlsx" else _json(report)


@router.get("/reports/pnl", response_model=None)
def pnl(session: SessionDep, tenant_id: TenantId, date_from: dt.date, date_to: dt.date,
        legal_entity_id: int | None = None, cfo: str | None = None, project: str | None = None,
        format: str = "json") -> Response:
    report = reports.pnl(session, tenant_id, date_from, date_to, _filters(legal_entity_id, cfo, project))
    return _xlsx(reports.to_xlsx(report), "pnl.xlsx") if format == "xlsx" else _json(report)


@router.get("/reports/{statement}/cell")
def cell(statement: str, session: SessionDep, tenant_id: TenantId, article: str, date_from: dt.date, date_to: dt.date,
         basis: str = "cash", legal_entity_id: int | None = None, cfo: str | None = None,
         project: str | None = None) -> JSONResponse:
    """Drill-down: the operation parts behind one report cell."""
    kind = "pnl" if statement == "pnl" else "cash_flow"
    return _json(reports.cell(session, tenant_id, kind, article, date_from, date_to, basis, _filters(legal_entity_id, cfo, project)))


@router.get("/budgets", response_model=list[BudgetPublic])
def list_budgets(session: SessionDep, tenant_id: TenantId) -> list[BudgetPublic]:
    return budgets.list_budgets(session, tenant_id)


@router.post("/budgets", response_model=BudgetPublic, status_code=201)
def create_budget(data: BudgetIn, session: SessionDep, tenant_id: TenantId) -> BudgetPublic:
    return budgets.create_budget(session, tenant_id, data)


@router.put("/budgets/{budget_id}/lines")
def set_budget_lines(budget_id: int, lines: list[BudgetLineIn], session: SessionDep, tenant_id: TenantId,
                     replace: bool = False) -> dict[str, int]:
    return {"saved": budgets.set_lines(session, tenant_id, budget_id, lines, replace)}


@router.post("/budgets/{budget_id}/import")
def import_budget(budget_id: int, data: BudgetFileIn, session: SessionDep, tenant_id: TenantId) -> dict[str, int]:
    lines = budgets.lines_from_xlsx(tables.decode_b64(data.content_b64))
    return {"saved": budgets.set_lines(session, tenant_id, budget_id, lines, data.replace)}


@router.get("/budgets/{budget_id}/plan-vs-actual", response_model=None)
def plan_vs_actual(budget_id: int, session: SessionDep, tenant_id: TenantId, cfo: str | None = None,
                   format: str = "json") -> Response:
    report = reports.plan_vs_actual(session, tenant_id, budget_id, cfo)
    return _xlsx(reports.to_xlsx(report), "plan-vs-actual.xlsx") if format == "xlsx" else _json(report)


