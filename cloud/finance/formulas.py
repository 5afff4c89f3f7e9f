"""A small, safe expression language for calculated indicators.

    gross_margin = revenue - cost_of_sales
    margin_pct   = gross_margin / revenue * 100
    ebitda       = gross_margin - [P.3] - [P.4] + max(0, P.5.1)

Grammar (recursive descent, no ``eval``: a formula typed by an analyst must not be able to do
anything but arithmetic)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | primary
    primary := NUMBER | NAME "(" [expr ("," expr)*] ")" | NAME | "[" code "]" | "(" expr ")"

``NAME`` is a letter or ``_`` followed by letters, digits, ``_`` and ``.`` — so article codes
such as ``P.1.2`` are names. Any other code goes in brackets: ``[1.2.3]``. Functions: ``abs``,
``min``, ``max``, ``round(x[, places])``. Numbers are exact ``Decimal``.

A value may be blank (``None``): division by zero gives blank with a flag instead of an
exception, because one month without revenue must not break a whole year's report, and
anything computed from a blank is blank. Rounding to kopecks happens once, at the end (see
:mod:`cloud.finance.indicators`), never in intermediate steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from cloud.finance.errors import FormulaSyntaxError

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<name>[^\W\d][\w.]*)"
    r"|\[(?P<code>[^\[\]]+)\]"
    r"|(?P<op>[-+*/(),])"
    r")"
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | name | op | end
    text: str
    position: int


def tokenize(formula: str) -> list[Token]:
    """Split ``formula`` into tokens; an unknown character raises naming its position."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(formula):
        if formula[pos:].strip() == "":
            break
        match = _TOKEN.match(formula, pos)
        if match is None or match.end() == pos:
            start = pos + (len(formula[pos:]) - len(formula[pos:].lstrip()))
            raise FormulaSyntaxError(f"непонятный символ «{formula[start]}»", formula, start)
        kind = match.lastgroup or ""
        text = match.group(kind).strip()
        if kind == "code":
            kind = "name"
        tokens.append(Token(kind, text, match.start(match.lastgroup or 0)))
        pos = match.end()
    tokens.append(Token("end", "", len(formula)))
    return tokens


# --- syntax tree ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    value: Decimal


@dataclass(frozen=True, slots=True)
class Ref:
    name: str


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]


Node = Number | Ref | Negate | Binary | Call

_ARITY: dict[str, tuple[int, int]] = {"abs": (1, 1), "min": (1, 99), "max": (1, 99), "round": (1, 2)}


class _Parser:
    def __init__(self, formula: str) -> None:
        self.formula = formula
        self.tokens = tokenize(formula)
        self.i = 0

    def error(self, message: str, token: Token | None = None) -> FormulaSyntaxError:
        return FormulaSyntaxError(message, self.formula, (token or self.peek()).position)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        if self.peek().text != text or self.peek().kind != "op":
            raise self.error(f"ожидалось «{text}»")
        self.take()

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("пустая формула")
        node = self.expr()
        if self.peek().kind != "end":
            raise self.error(f"лишнее «{self.peek().text}»")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op = self.take().text
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in "*/":
            op = self.take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == "op" and token.text in "+-":
            self.take()
            operand = self.unary()
            return Negate(operand) if token.text == "-" else operand
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Number(Decimal(token.text))
        if token.kind == "name":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(token)
            return Ref(token.text)
        if token.kind == "op" and token.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if token.kind == "end":
            raise self.error("формула оборвана: не хватает числа, имени или «)»", token)
        raise self.error(f"здесь не может стоять «{token.text}»", token)

    def call(self, name: Token) -> Node:
        function = name.text.lower()
        if function not in _ARITY:
            raise self.error(f"неизвестная функция «{name.text}» (есть: abs, min, max, round)", name)
        self.expect("(")
        args: list[Node] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            args.append(self.expr())
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                args.append(self.expr())
        self.expect(")")
        low, high = _ARITY[function]
        if not low <= len(args) <= high:
            raise self.error(
                f"функция {function} принимает от {low} до {high} аргументов, дано {len(args)}", name
            )
        return Call(function, tuple(args))


def parse(formula: str) -> Node:
    """Parse a formula into a frozen syntax tree, or raise :class:`FormulaSyntaxError`."""
    return _Parser(formula).parse()


def references(node: Node) -> frozenset[str]:
    """Every name the formula reads (articles and indicators alike)."""
    match node:
        case Ref(name):
            return frozenset({name})
        case Negate(operand):
            return references(operand)
        case Binary(_, left, right):
            return references(left) | references(right)
        case Call(_, args):
            return frozenset().union(*(references(a) for a in args))
    return frozenset()


# --- evaluation ----------------------------------------------------------------------------

DIVISION_BY_ZERO = "division_by_zero"
BLANK_INPUT = "blank_input"


@dataclass
class Evaluation:
    """Flags collected while evaluating one formula for one period."""

    flags: set[str] = field(default_factory=set)


def evaluate(
    node: Node, values: Mapping[str, Decimal | None], trace: Evaluation | None = None
) -> Decimal | None:
    """Evaluate exactly; a missing name reads as 0 (no operations), a blank one stays blank."""
    trace = trace if trace is not None else Evaluation()
    return _eval(node, values, trace)


def _eval(node: Node, values: Mapping[str, Decimal | None], trace: Evaluation) -> Decimal | None:
    match node:
        case Number(value):
            return value
        case Ref(name):
            if name not in values:
                return Decimal(0)
            current = values[name]
            if current is None:
                trace.flags.add(BLANK_INPUT)
            return current
        case Negate(operand):
            inner = _eval(operand, values, trace)
            return None if inner is None else -inner
        case Binary(op, left, right):
            a, b = _eval(left, values, trace), _eval(right, values, trace)
            if a is None or b is None:
                return None
            return _BINARY[op](a, b, trace)
        case Call(function, args):
            evaluated = [_eval(a, values, trace) for a in args]
            if any(v is None for v in evaluated):
                return None
            return _call(function, [v for v in evaluated if v is not None])
    raise TypeError(f"not a formula node: {node!r}")


def _divide(a: Decimal, b: Decimal, trace: Evaluation) -> Decimal | None:
    if b == 0:
        trace.flags.add(DIVISION_BY_ZERO)
        return None
    return a / b


_BINARY: dict[str, Callable[[Decimal, Decimal, Evaluation], Decimal | None]] = {
    "+": lambda a, b, _: a + b,
    "-": lambda a, b, _: a - b,
    "*": lambda a, b, _: a * b,
    "/": _divide,
}


def _call(function: str, args: list[Decimal]) -> Decimal:
    if function == "abs":
        return abs(args[0])
    if function == "min":
        return min(args)
    if function == "max":
        return max(args)
    places = int(args[1]) if len(args) == 2 else 0
    try:
        return args[0].quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return args[0]
