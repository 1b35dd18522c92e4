"""LightGBM's text model format (`Booster.save_model`, MLflow's `model.lgb`) scored in numpy.

Serving answers a cold first call in a fresh process; `import lightgbm` alone costs ~1.4 s
there (its compat module imports scikit-learn and pandas). A quantlab booster is a few
hundred small trees, so walking them in numpy for a few rows is cheap, and it gives
`lightgbm.Booster.predict(x, num_iteration=k)`'s bits. The semantics are LightGBM's own
(4.x sources): `Tree::Tree(const char*)` and `GBDT::LoadModelFromString` for the format,
`Tree::NumericalDecision`/`CategoricalDecision`/`GetLeaf` for a split, `GBDT::PredictRaw`
for the per-iteration sums (in tree order, from 0.0), `ObjectiveFunction::ConvertOutput`
for the link (`c_api.cpp` drops |x| <= kZeroThreshold to 0 before a row reaches a tree).

Leaf values in the file are already shrunk (`Tree::Shrinkage` scales them during training;
the `shrinkage=` line is a record). Linear trees and objectives other than the ones below
raise `UnsupportedModel`: the caller scores those with the library instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold is the float literal 1e-35f
_CATEGORICAL, _DEFAULT_LEFT = 1, 2  # decision_type bits (tree.h kCategoricalMask, kDefaultLeftMask)
_MISSING_ZERO, _MISSING_NAN = 1, 2  # (decision_type >> 2) & 3: MissingType None/Zero/NaN
_INT_LIMIT = 2.0**31  # x86's double->int conversion gives INT_MIN (negative) from here on
# Objectives whose ConvertOutput is the identity (or sign(x)·x² with `sqrt`): RegressionL2loss's.
_REGRESSION = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}


class UnsupportedModel(ValueError):
    """A LightGBM model this evaluator does not score (linear trees, another objective)."""


@dataclass(frozen=True)
class LgbmText:
    """Every tree of one model flattened into arrays; nodes and leaves are global indices.

    A child < 0 is the leaf `~child`; `roots[t]` is tree t's root node, or `~leaf` for a
    single-leaf tree. Trees are in file order: iteration i's tree for class k is i·K + k.
    """

    objective: str
    sigmoid: float
    sqrt: bool
    average: bool
    per_iteration: int  # K: trees per iteration (num_class for multiclass)
    num_features: int
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    categorical: np.ndarray  # bool
    default_left: np.ndarray  # bool
    missing: np.ndarray  # 0 None, 1 Zero, 2 NaN
    cat_start: np.ndarray  # a categorical node's bitset: cat_bits[cat_start : cat_start + cat_len]
    cat_len: np.ndarray
    cat_bits: np.ndarray  # uint32 words, LightGBM's cat_threshold
    leaf_value: np.ndarray

    @property
    def iterations(self) -> int:
        return len(self.roots) // self.per_iteration

    def raw(self, x: np.ndarray, num_iteration: int = 0) -> np.ndarray:
        """The summed tree outputs (`predict(raw_score=True)`), shape (n, K); `num_iteration`
        <= 0 uses every iteration, more than there are uses them all."""
        x = np.array(x, dtype=np.float64, ndmin=2)  # a copy: zeroed below
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"the model takes {self.num_features} features, the rows have {x.shape[1]}"
            )
        x[np.abs(x) <= K_ZERO] = 0.0  # c_api's dense-row reader keeps only |v| > kZero or NaN
        iters = self.iterations if num_iteration <= 0 else min(num_iteration, self.iterations)
        trees = iters * self.per_iteration
        n = x.shape[0]
        node = np.broadcast_to(self.roots[:trees], (n, trees)).ravel().copy()
        row = np.repeat(np.arange(n), trees)
        live = np.flatnonzero(node >= 0)
        while live.size:
            at = node[live]
            value = x[row[live], self.feature[at]]
            node[live] = np.where(self._left(at, value), self.left[at], self.right[at])
            live = live[node[live] >= 0]
        leaves = self.leaf_value[~node].reshape(n, iters, self.per_iteration)
        # GBDT::PredictRaw adds the trees one iteration after another: a sequential sum
        # (np.add.accumulate is one; np.sum would pair them up and round differently).
        out = (
            np.add.accumulate(leaves, axis=1)[:, -1, :]
            if iters
            else np.zeros((n, self.per_iteration))
        )
        return out / iters if self.average and iters else out

    def _left(self, at: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Whether each (node, feature value) pair goes left (tree.h's Decision)."""
        missing = self.missing[at]
        nan = np.isnan(value)
        v = np.where(nan & (missing != _MISSING_NAN), 0.0, value)  # NaN is 0 unless NaN-aware
        is_missing = ((missing == _MISSING_ZERO) & (np.abs(v) <= K_ZERO)) | (
            (missing == _MISSING_NAN) & nan
        )
        with np.errstate(invalid="ignore"):
            numerical = np.where(is_missing, self.default_left[at], v <= self.threshold[at])
        cat = self.categorical[at]
        if not cat.any():
            return numerical
        # CategoricalDecision: NaN and negative codes go right; the code truncated to int is
        # a bit in the node's bitset (a word past the bitset's end: not in it, go right).
        ok = cat & ~nan & (value > -1.0) & (value < _INT_LIMIT)
        code = np.where(ok, value, 0.0).astype(np.int64)
        word = code // 32
        ok &= word < self.cat_len[at]
        bits = self.cat_bits[np.where(ok, self.cat_start[at] + word, 0)]
        in_set = ok & (((bits >> (code % 32).astype(np.uint32)) & 1) == 1)
        return np.where(cat, in_set, numerical)

    def predict(self, x: np.ndarray, num_iteration: int = 0) -> np.ndarray:
        """`Booster.predict(x, num_iteration=num_iteration)`: P(y = 1) (n,), the class
        probabilities (n, K) or the regression (n,)."""
        raw = self.raw(x, num_iteration)
        # math.exp is the C library's exp, the one LightGBM calls; numpy's own SIMD exp
        # may differ in the last bit.
        if self.objective == "binary":
            return np.array([1.0 / (1.0 + math.exp(-self.sigmoid * r)) for r in raw[:, 0]])
        if self.objective == "multiclassova":
            flat = [1.0 / (1.0 + math.exp(-self.sigmoid * r)) for r in raw.ravel()]
            return np.array(flat).reshape(raw.shape)
        if self.objective == "multiclass":
            return np.array([_softmax(r) for r in raw.tolist()]).reshape(raw.shape)
        out = raw[:, 0]
        return np.sign(out) * out * out if self.sqrt else out


def _softmax(row: list[float]) -> list[float]:
    """Common::Softmax, operation for operation."""
    top = row[0]
    for r in row[1:]:
        top = max(r, top)
    exps = [math.exp(r - top) for r in row]
    total = 0.0
    for e in exps:
        total += e
    return [e / total for e in exps]


def load_text(path: Path) -> LgbmText:
    """Parse a model file (`model.lgb`)."""
    return parse_text(Path(path).read_text())


def parse_text(text: str) -> LgbmText:
    """Parse LightGBM's model text (`Booster.model_to_string()` / `save_model`)."""
    header, _, body = text.partition("\nTree=")
    head = _pairs(header.splitlines())
    if "num_class" not in head or "max_feature_idx" not in head:
        raise UnsupportedModel("not a LightGBM text model: no num_class/max_feature_idx line")
    per_iteration = int(head.get("num_tree_per_iteration", head["num_class"]))
    name, *args = head.get("objective", "").split(" ")
    if name not in {"binary", "multiclass", "multiclassova", *_REGRESSION}:
        raise UnsupportedModel(f"objective {name or '(none)'!r} is not one serving evaluates")
    sigmoid = 1.0
    for arg in args:
        key, _, value = arg.partition(":")
        if key == "sigmoid":
            sigmoid = float(value)
    trees = [_pairs(block.splitlines()[1:]) for block in ("Tree=" + body).split("\nTree=")]
    trees = [t for t in trees if "num_leaves" in t] if body else []
    return _flatten(
        trees,
        objective=name,
        sigmoid=sigmoid,
        sqrt=name in _REGRESSION and "sqrt" in args,
        average="average_output" in head,
        per_iteration=per_iteration,
        num_features=int(head["max_feature_idx"]) + 1,
    )


def _pairs(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, eq, value = line.partition("=")
        if eq:
            out.setdefault(key.strip(), value.strip())
        elif line.strip() in {"end of trees", "parameters:"}:
            break
        elif line.strip():
            out.setdefault(line.strip(), "")
    return out


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split()]


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split()]  # correctly rounded, as LightGBM's own parser


def _flatten(trees: list[dict[str, str]], **kw) -> LgbmText:
    roots: list[int] = []
    cols: dict[str, list] = {
        k: [] for k in ("feature", "threshold", "left", "right", "decision", "cat_start", "cat_len")
    }
    leaf_value: list[float] = []
    cat_bits: list[int] = []
    for t in trees:
        if int(t.get("is_linear", "0") or 0):
            raise UnsupportedModel("linear trees (linear_tree=true) are not evaluated here")
        leaves = int(t["num_leaves"])
        values = _floats(t["leaf_value"])[:leaves]
        node0, leaf0 = len(cols["feature"]), len(leaf_value)
        leaf_value.extend(values)
        if leaves <= 1:
            roots.append(~leaf0)
            continue
        roots.append(node0)
        m = leaves - 1
        decision = _ints(t.get("decision_type", " ".join(["0"] * m)))[:m]
        threshold = _floats(t["threshold"])[:m]
        bounds = _ints(t["cat_boundaries"]) if int(t.get("num_cat", "0")) > 0 else []
        words = [int(v) for v in t["cat_threshold"].split()] if bounds else []
        base = len(cat_bits)
        cat_bits.extend(words)
        for j in range(m):
            if decision[j] & _CATEGORICAL:
                idx = int(threshold[j])
                cols["cat_start"].append(base + bounds[idx])
                cols["cat_len"].append(bounds[idx + 1] - bounds[idx])
            else:
                cols["cat_start"].append(0)
                cols["cat_len"].append(0)

        def child(c: int, node0: int = node0, leaf0: int = leaf0) -> int:
            return node0 + c if c >= 0 else ~(leaf0 + ~c)

        cols["feature"].extend(_ints(t["split_feature"])[:m])
        cols["threshold"].extend(threshold)
        cols["left"].extend(child(c) for c in _ints(t["left_child"])[:m])
        cols["right"].extend(child(c) for c in _ints(t["right_child"])[:m])
        cols["decision"].extend(decision)
    decision = np.asarray(cols["decision"], dtype=np.int64)
    return LgbmText(
        **kw,
        roots=np.asarray(roots, dtype=np.int64),
        feature=np.asarray(cols["feature"], dtype=np.int64),
        threshold=np.asarray(cols["threshold"], dtype=np.float64),
        left=np.asarray(cols["left"], dtype=np.int64),
        right=np.asarray(cols["right"], dtype=np.int64),
        categorical=(decision & _CATEGORICAL) > 0,
        default_left=(decision & _DEFAULT_LEFT) > 0,
        missing=(decision >> 2) & 3,
        cat_start=np.asarray(cols["cat_start"], dtype=np.int64),
        cat_len=np.asarray(cols["cat_len"], dtype=np.int64),
        cat_bits=np.asarray(cat_bits or [0], dtype=np.uint32),
        leaf_value=np.asarray(leaf_value, dtype=np.float64),
    )
