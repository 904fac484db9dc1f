"""Genotypes: the discrete cells of the DARTS search space, the published ones, and random draws.

A genotype lists, per cell type, two edges `(op, input)` for each intermediate node in turn:
node `2 + i` sums the edges `2i` and `2i + 1`, and `input` is any earlier node (0 and 1 are the
cell's two inputs, the outputs of the previous two cells). The cell's output concatenates the
nodes in `*_concat`. The text form is the one DARTS and its successors print and paste:

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterable
from dataclasses import dataclass

from inborn.errors import InbornError
from inborn.models.darts.operations import OPS
from inborn.values import is_whole

Edge = tuple[str, int]

# The eight candidate ops of the DARTS search space (its cells may also use NASNet's and AmoebaNet's ops).
PRIMITIVES: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)

_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclass(frozen=True)
class Genotype:
    """A checked genotype; lists (or a `range`) given to it are stored as tuples."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for cell in ("normal", "reduce"):
            edges = _check_edges(cell, getattr(self, cell))
            concat = _check_concat(f"{cell}_concat", getattr(self, f"{cell}_concat"), 2 + len(edges) // 2)
            object.__setattr__(self, cell, edges)
            object.__setattr__(self, f"{cell}_concat", concat)


def _check_edges(cell: str, edges: object) -> tuple[Edge, ...]:
    if not isinstance(edges, list | tuple) or not edges or len(edges) % 2:
        raise InbornError(f"genotype {cell}: expected a non-empty list of (op, input) pairs, two per node")
    out = []
    for k, edge in enumerate(edges):
        if not (isinstance(edge, list | tuple) and len(edge) == 2 and isinstance(edge[0], str) and is_whole(edge[1])):
            raise InbornError(f"genotype {cell}: edge {k} is {edge!r}, expected an (op name, input node) pair")
        op, src = edge
        if op not in OPS:
            raise InbornError(f"genotype {cell}: unknown op {op!r}; known: {', '.join(OPS)}")
        node = 2 + k // 2
        if not 0 <= src < node:
            raise InbornError(f"genotype {cell}: edge {k} ({op}) of node {node} reads node {src}; "
                              f"it can read nodes 0 to {node - 1}")
        out.append((op, int(src)))
    return tuple(out)


def _check_concat(name: str, concat: object, n_nodes: int) -> tuple[int, ...]:
    if isinstance(concat, range):
        concat = tuple(concat)
    if not isinstance(concat, list | tuple) or not concat or not all(is_whole(i) for i in concat):
        raise InbornError(f"genotype {name}: expected a non-empty list of node indices, got {concat!r}")
    if len(set(concat)) != len(concat) or not all(2 <= i < n_nodes for i in concat):
        # Only intermediate nodes: the inputs of a reduction cell are not reduced, so they cannot be concatenated.
        raise InbornError(f"genotype {name}: {list(concat)} must name distinct intermediate nodes 2 to {n_nodes - 1}")
    return tuple(int(i) for i in concat)


def _g(normal: list[Edge], normal_concat: Iterable[int], reduce: list[Edge], reduce_concat: Iterable[int]) -> Genotype:
    return Genotype(tuple(normal), tuple(normal_concat), tuple(reduce), tuple(reduce_concat))


# --- Published genotypes (facts copied from the authors' genotypes.py files) ---------------------

# quark0/darts cnn/genotypes.py: DARTS first order (V1) and second order (V2, the paper's "DARTS").
DARTS_V1 = _g(
    [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
     ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)], [2, 3, 4, 5],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
     ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)], [2, 3, 4, 5],
)
DARTS_V2 = _g(
    [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
     ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)], [2, 3, 4, 5],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
     ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)], [2, 3, 4, 5],
)
# chenxin061/pdarts genotypes.py (PDARTS, the CIFAR-10 cell).
PDARTS = _g(
    [("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
     ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)], range(2, 6),
    [("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
     ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)], range(2, 6),
)
# yuhuixu1993/PC-DARTS genotypes.py (PC_DARTS_cifar, the repository's default PCDARTS).
PCDARTS = _g(
    [("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
     ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)], range(2, 6),
    [("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
     ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)], range(2, 6),
)
# quark0/darts cnn/genotypes.py: NASNet-A and AmoebaNet-A in DARTS's cell form (five nodes each).
NASNET = _g(
    [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
     ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
     ("sep_conv_3x3", 1), ("skip_connect", 1)], [2, 3, 4, 5, 6],
    [("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
     ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
     ("sep_conv_3x3", 2), ("max_pool_3x3", 1)], [4, 5, 6],
)
AMOEBANET = _g(
    [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
     ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
     ("skip_connect", 0), ("avg_pool_3x3", 1)], [4, 5, 6],
    [("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
     ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
     ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)], [3, 4, 6],
)
# ENAS's micro cell (Pham et al., 2018) in DARTS form, as in NSGA-Net (ianwhale/nsga-net
# models/micro_genotypes.py). Other transcriptions read ('avg_pool_3x3', 1) for the 8th normal edge.
ENAS = _g(
    [("sep_conv_3x3", 1), ("skip_connect", 1), ("sep_conv_5x5", 1), ("skip_connect", 0),
     ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("avg_pool_3x3", 0),
     ("sep_conv_5x5", 1), ("avg_pool_3x3", 0)], [2, 3, 4, 5, 6],
    [("sep_conv_5x5", 0), ("avg_pool_3x3", 1), ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
     ("avg_pool_3x3", 1), ("sep_conv_3x3", 1), ("sep_conv_5x5", 4), ("avg_pool_3x3", 1),
     ("sep_conv_3x3", 5), ("sep_conv_5x5", 0)], [2, 3, 6],
)

GENOTYPES: dict[str, Genotype] = {
    "darts_v1": DARTS_V1, "darts_v2": DARTS_V2, "pdarts": PDARTS, "pcdarts": PCDARTS,
    "nasnet": NASNET, "amoebanet": AMOEBANET, "enas": ENAS,
}


def get_genotype(name: str) -> Genotype:
    """A published genotype by name (see GENOTYPES)."""
    if name not in GENOTYPES:
        raise InbornError(f"unknown genotype {name!r}; known: {', '.join(GENOTYPES)}")
    return GENOTYPES[name]


def sample_genotype(seed: int) -> Genotype:
    """A uniform draw from the DARTS space: per cell and node, two distinct inputs and two ops (never `none`).

    Uses its own generator, so the global `random` state is untouched and a seed always gives the same cell.
    """
    if not is_whole(seed):
        raise InbornError(f"the genotype seed must be an integer, got {seed!r}")
    rng = random.Random(seed)
    ops = [p for p in PRIMITIVES if p != "none"]

    def cell() -> list[Edge]:
        edges = []
        for i in range(4):
            for src in rng.sample(range(2 + i), 2):
                edges.append((rng.choice(ops), src))
        return edges

    normal = cell()
    return _g(normal, [2, 3, 4, 5], cell(), [2, 3, 4, 5])


def genotype_to_text(g: Genotype) -> str:
    """The usual one-line text form; `parse_genotype` reads it back."""
    return (f"Genotype(normal={list(g.normal)!r}, normal_concat={list(g.normal_concat)!r}, "
            f"reduce={list(g.reduce)!r}, reduce_concat={list(g.reduce_concat)!r})")


def parse_genotype(text: str) -> Genotype:
    """Read `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`.

    Arguments may be keywords or positional; a concat may be a list or `range(a, b)`. The text
    is parsed with `ast` and only literals are read: nothing in it is ever executed.
    """
    short = _short(text)
    if not isinstance(text, str):
        raise InbornError(f"a genotype must be given as text, got {type(text).__name__}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise InbornError(f"cannot parse genotype {short}: {getattr(e, 'msg', e)}") from None
    call = tree.body
    func = call.func if isinstance(call, ast.Call) else None
    func_name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if func_name != "Genotype":
        raise InbornError(f"not a genotype {short}: expected Genotype(normal=..., normal_concat=..., "
                          "reduce=..., reduce_concat=...)")
    assert isinstance(call, ast.Call)
    if len(call.args) > len(_FIELDS) or any(isinstance(a, ast.Starred) for a in call.args):
        raise InbornError(f"genotype {short}: expected at most {len(_FIELDS)} plain arguments")
    values: dict[str, object] = {}
    for field, node in zip(_FIELDS, call.args, strict=False):
        values[field] = _literal(node, field, short)
    for kw in call.keywords:
        if kw.arg not in _FIELDS:
            raise InbornError(f"genotype {short}: unknown field {kw.arg or '**'!r}; fields: {', '.join(_FIELDS)}")
        if kw.arg in values:
            raise InbornError(f"genotype {short}: {kw.arg} given twice")
        values[kw.arg] = _literal(kw.value, kw.arg, short)
    missing = [f for f in _FIELDS if f not in values]
    if missing:
        raise InbornError(f"genotype {short}: missing {', '.join(missing)}")
    return Genotype(**values)  # type: ignore[arg-type]  # checked in __post_init__


def _literal(node: ast.expr, field: str, short: str) -> object:
    """A literal, or `range(...)` of literal ints (DARTS prints concats that way)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        args = [_literal(a, field, short) for a in node.args]
        # Small bounds only: a concat names a handful of nodes, and range(10**100) must not be expanded.
        if node.keywords or not 1 <= len(args) <= 3 or not all(is_whole(a) and abs(a) <= 1000 for a in args):
            raise InbornError(f"genotype {short}: {field}: range() takes one to three small integers")
        return range(*args)  # type: ignore[arg-type]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InbornError(f"genotype {short}: {field} must be a literal, got {ast.unparse(node)[:40]!r}") from None


def _short(text: object, limit: int = 60) -> str:
    """A one-line excerpt of `text` for error messages."""
    s = str(text)
    return repr(s if len(s) <= limit else s[:limit] + "...")
