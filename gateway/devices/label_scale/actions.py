"""Argument schemas of label-scale actions, their Russian validation messages, and result JSON.

Two kinds of bad input, two answers:

- a table that does not fit the schema (a price that is not whole kopecks, a missing name, the
  same PLU twice) is refused whole with ``invalid_args`` before anything reaches the scale, and
  the message names each bad item by position and PLU number;
- a PLU that fits the schema but not the scale (a name over 40 bytes of cp1251, a price above
  the scale's limit) fails alone: the others are uploaded and the reply lists it as ``failed``
  with the reason, because the protocol or the scale is what decides it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator
from pydantic_core import ErrorDetails

from drivers.label_scale import PluResult
from gateway.devices.label_scale.const import FIELD_NAMES, MAX_DEPARTMENT, MAX_ITEMS, MAX_PLU_NUMBER

U32 = 2**32 - 1
U16 = 2**16 - 1


class PluItem(BaseModel):
    """One row of the table: ``price_per_kg`` in integer kopecks, ``shelf_life_days`` 0 = none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plu: StrictInt = Field(ge=1, le=MAX_PLU_NUMBER)
    name: StrictStr = Field(min_length=1)
    price_per_kg: StrictInt = Field(ge=0, le=U32)
    shelf_life_days: StrictInt = Field(default=0, ge=0, le=U32)
    item_code: StrictInt = Field(default=0, ge=0, le=U32)
    barcode_format: StrictInt = Field(default=1, ge=0, le=U16)
    department: StrictInt = Field(default=1, ge=1, le=MAX_DEPARTMENT)

    def driver_fields(self) -> dict[str, object]:
        """Keyword arguments of ``protocols.cas.Plu`` (the driver builds and checks it)."""
        return {
            "number": self.plu,
            "name": self.name,
            "price": self.price_per_kg,
            "shelf_life_days": self.shelf_life_days,
            "item_code": self.item_code,
            "barcode_format": self.barcode_format,
            "department": self.department,
        }


class UploadPluArgs(BaseModel):
    """``upload_plu``: the PLUs to put on the scale (each written only if the scale differs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[PluItem] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _unique(self) -> UploadPluArgs:
        seen: dict[tuple[int, int], int] = {}
        for position, item in enumerate(self.items, 1):
            key = (item.department, item.plu)
            if key in seen:
                raise ValueError(
                    f"ПЛУ {item.plu} (отдел {item.department}) встречается дважды: позиции {seen[key]} и {position}"
                )
            seen[key] = position
        return self


class DeletePluArgs(BaseModel):
    """``delete_plu``: PLU numbers to remove from one department."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plus: list[StrictInt] = Field(min_length=1, max_length=MAX_ITEMS)
    department: StrictInt = Field(default=1, ge=1, le=MAX_DEPARTMENT)

    @model_validator(mode="after")
    def _range(self) -> DeletePluArgs:
        for position, number in enumerate(self.plus, 1):
            if not 1 <= number <= MAX_PLU_NUMBER:
                raise ValueError(f"позиция {position}: номер ПЛУ 1..{MAX_PLU_NUMBER}, а не {number}")
        return self


# --- Russian validation messages ----------------------------------------------------------------


def explain(action: str, exc: ValidationError, raw: Mapping[str, Any]) -> str:
    """One line in Russian naming each bad item and field (at most five, then how many more)."""
    errors = exc.errors()
    parts = [_explain_one(err, raw) for err in errors[:5]]
    if len(errors) > 5:
        parts.append(f"и ещё {len(errors) - 5}")
    return f"{action}: " + "; ".join(parts)


def _explain_one(err: ErrorDetails, raw: Mapping[str, Any]) -> str:
    loc = list(err["loc"])
    where: list[str] = []
    if len(loc) >= 2 and loc[0] in ("items", "plus") and isinstance(loc[1], int):
        where.append(_item_name(raw.get(str(loc[0])), loc[1]))
        loc = loc[2:]
    elif loc:
        where.append(FIELD_NAMES.get(str(loc[0]), f"поле {loc[0]!r}"))
        loc = loc[1:]
    if loc:
        where.append(FIELD_NAMES.get(str(loc[0]), f"поле {loc[0]!r}"))
    text = _message(err)
    return f"{', '.join(where)}: {text}" if where else text


def _item_name(items: Any, index: int) -> str:
    text = f"позиция {index + 1}"
    item = items[index] if isinstance(items, Sequence) and 0 <= index < len(items) else None
    if isinstance(item, Mapping):
        plu, name = item.get("plu"), item.get("name")
        details = [f"ПЛУ {plu}"] if isinstance(plu, int) and not isinstance(plu, bool) else []
        if isinstance(name, str) and name:
            details.append(f"«{name[:30]}»")
        if details:
            text += f" ({', '.join(details)})"
    return text


def _message(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    simple = {
        "missing": "не задано",
        "int_type": "нужно целое число",
        "string_type": "нужна строка",
        "list_type": "нужен список",
        "model_type": "нужен объект с полями ПЛУ",
        "model_attributes_type": "нужен объект с полями ПЛУ",
        "dict_type": "нужен объект с полями ПЛУ",
        "extra_forbidden": "неизвестное поле",
        "string_too_short": "не может быть пустым",
    }
    if kind in simple:
        return simple[kind]
    if kind == "greater_than_equal":
        return f"должно быть не меньше {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"должно быть не больше {ctx.get('le')}"
    if kind == "too_short":
        return "список пуст"
    if kind == "too_long":
        return f"не больше {ctx.get('max_length')} позиций"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"])


# --- results ---------------------------------------------------------------------------------------


def plu_result_json(plu: int, result: PluResult) -> dict[str, Any]:
    out: dict[str, Any] = {"plu": plu, "status": result.status}
    if result.status == "failed":
        out["code"] = result.error_code
        out["reason"] = result.error
    return out


def upload_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts first (what a person reads), then every PLU's outcome."""
    counts = {
        status: sum(1 for e in entries if e["status"] == status)
        for status in ("written", "unchanged", "failed")
    }
    total = len(entries)
    text = (
        f"Загрузка ПЛУ: записано {counts['written']}, без изменений {counts['unchanged']}, "
        f"с ошибкой {counts['failed']} из {total}"
    )
    return {"total": total, **counts, "complete": counts["failed"] == 0, "summary": text, "plus": entries}
