"""Small, safe tool functions that several agent notebooks wrap as tools (Days 9, 10, 12).

    agents_tool = FunctionTool.from_defaults(fn=lambda expression: tools.evaluate_arithmetic(expression))
"""
from __future__ import annotations

import ast
import operator

import regex

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
# The error does not echo the expression: a model that copies an observation with quotes in it
# into a JSON string argument can break its own call (seen on Day 12).
ONLY = "only numbers and + - * / ** are allowed"
MAX_EXPONENT = 64  # 9 ** 9 ** 9 would hang the process: refuse large powers


def evaluate_arithmetic(expression: str) -> float | int:
    """The value of an arithmetic expression with numbers, + - * / ** and parentheses
    (thousands separators such as "524,288" allowed). Anything else (names, calls, attributes)
    raises ValueError, so a model's tool call can never run code."""
    def ev(node: ast.AST) -> float | int:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise ValueError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(ONLY)

    text = regex.sub(r"(?<=\d),(?=\d{3}\b)", "", expression)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise ValueError(ONLY) from err
    return ev(tree.body)


def format_number(x: float | int) -> str:
    """A number as a tool observation: integers without ".0", others to 6 significant digits."""
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"
