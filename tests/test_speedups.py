"""The compiled speed-ups (``otel_rerank._speedups``, built by ``hatch_build.py``) answer
exactly as the Python functions they stand in for, or decline and leave them to answer;
and the build hook compiles them, or says in one line why it could not."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
import random
import shlex
import shutil
import sysconfig
from collections import deque
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_rerank import _ranking, _rerank, _values
from otel_rerank.instrumentation import _common
from otel_rerank.instrumentation.sentence_transformers import _attributes

_REPO = Path(__file__).resolve().parents[1]
_PURE = os.environ.get("OTEL_RERANK_PURE_PYTHON") == "1"
_compiled = pytest.mark.skipif(
    _ranking._compiled_rank_summary is None, reason="built as pure Python"
)


def test_the_speedups_are_built_here() -> None:
    # The test venv is an editable install with a C compiler: a failed build must not pass
    # for a pure-Python one unnoticed (the equivalence tests below would all skip).
    if _PURE:
        pytest.skip("OTEL_RERANK_PURE_PYTHON=1")
    compiler = shlex.split(sysconfig.get_config_var("CC") or "")
    if not compiler or shutil.which(compiler[0]) is None:
        pytest.skip("no C compiler here: the install is pure Python by design")
    assert _ranking._compiled_rank_summary is not None
    assert _attributes._compiled_one_query is not None
    assert _rerank._compiled_output_documents is not None
    assert _common._compiled_bind is not None
    assert _rerank._compiled_summarize is not None


# -- the ranking -----------------------------------------------------------------------------
_SCORES = st.lists(
    st.one_of(
        st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, math.inf, -math.inf]),
        st.floats(allow_nan=False, width=32),
        st.just(math.nan),
    ),
    max_size=300,  # past the 128 kept on the stack
)


def _python_prefix(
    monkeypatch: pytest.MonkeyPatch, values: list[float], limit: int
) -> tuple[Any, ...]:
    with monkeypatch.context() as patched:
        patched.setattr(_ranking, "_compiled_rank_summary", None)
        return _ranking.ranked_prefix(values, limit)


def _same(found: tuple[Any, ...], expected: tuple[Any, ...]) -> None:
    top, changed, tau, order, ordered = found
    assert top == expected[0] or (math.isnan(top) and math.isnan(expected[0]))
    assert changed is expected[1]
    assert tau == expected[2]  # bit for bit: the same counts into the same formula
    assert list(order) == list(expected[3])
    assert len(ordered) == len(expected[4])
    assert all(a is b for a, b in zip(ordered, expected[4], strict=True))  # the caller's floats


@_compiled
@settings(max_examples=400, deadline=None)
@given(scores=_SCORES, limit=st.integers(min_value=-3, max_value=310))
def test_the_compiled_ranking_is_the_python_one(scores: list[float], limit: int) -> None:
    # Through ranked_prefix, which falls back on a NaN: both answer every list alike.
    values = [float(s) for s in scores]
    if not values:
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = _python_prefix(monkeypatch, values, limit)
    _same(_ranking.ranked_prefix(values, limit), expected)


@_compiled
@pytest.mark.parametrize("n", [1, 2, 50, 128, 129, 2000])
@pytest.mark.parametrize("ties", [False, True])
def test_the_compiled_ranking_counts_long_and_tied_lists(
    monkeypatch: pytest.MonkeyPatch, n: int, ties: bool
) -> None:
    rng = random.Random(n)
    values = [float(rng.randint(0, 9)) if ties else rng.random() for _ in range(n)]
    counted = _ranking._compiled_rank_summary(values, 10)  # type: ignore[misc]
    assert counted is not None  # answered here, not declined
    _same(_ranking.ranked_prefix(values, 10), _python_prefix(monkeypatch, values, 10))


class _Score(float):
    pass


@_compiled
@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="empty"),
        pytest.param([0.5, math.nan, 0.1], id="a NaN"),
        pytest.param([0.5, 1, 0.1], id="an int"),
        pytest.param([0.5, _Score(0.7)], id="a float subclass"),
    ],
)
def test_the_compiled_ranking_declines_what_python_answers(values: list[Any]) -> None:
    assert _ranking._compiled_rank_summary(values, 10) is None  # type: ignore[misc]


@_compiled
def test_the_compiled_ranking_leaves_a_limit_past_a_machine_word_to_python() -> None:
    # The slice takes any int: the Python answers it (the whole ranking) instead of raising.
    values = [0.2, 0.9, 0.5]
    assert _ranking._compiled_rank_summary(values, 10**30) is None  # type: ignore[misc]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same(
            _ranking.ranked_prefix(values, 10**30),
            _python_prefix(monkeypatch, values, 10**30),
        )


def _python_summary(scores: Any, limit: int) -> Any:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(_ranking, "_compiled_rank_summary", None)
        patched.setattr(_rerank, "_compiled_rank_summary", None)
        return _rerank.summary(scores, limit)


@_compiled
@settings(max_examples=300, deadline=None)
@given(
    scores=_SCORES,
    dtype=st.sampled_from(["float32", "float64", "float16", "int64", ">f8", "<f4"]),
    limit=st.integers(min_value=-3, max_value=310),
    step=st.sampled_from([1, 2, -1]),
)
def test_a_numpy_array_is_summarized_as_its_list(
    scores: list[float], dtype: str, limit: int, step: int
) -> None:
    """Read in place (native float32/float64 of one dimension, any stride) or declined
    (another dtype or byte order): the same attributes and ranking as ``tolist()``'s."""
    numpy = pytest.importorskip("numpy")
    with numpy.errstate(invalid="ignore", over="ignore"):
        array = numpy.array(scores, dtype=numpy.float64).astype(dtype)[::step]
    _assert_same_summary(_rerank.summary(array, limit), _python_summary(array, limit))


@_compiled
@settings(max_examples=200, deadline=None)
@given(
    scores=_SCORES,
    dtype=st.sampled_from(["float32", "float64", "float16", "bfloat16", "int64", "bool"]),
    limit=st.integers(min_value=-3, max_value=310),
    column=st.booleans(),
    requires_grad=st.booleans(),
)
def test_a_torch_tensor_is_summarized_as_its_list(
    scores: list[float], dtype: str, limit: int, column: bool, requires_grad: bool
) -> None:
    """A tensor (``rank``'s ``predict`` returns one) is ranked from its ``tolist()`` when
    that is a flat list of floats, and by the Python otherwise: the same attributes and
    ranking either way."""
    torch = pytest.importorskip("torch")
    _values.float_list(torch.zeros(1))  # a tensor seen once: the type is known
    assert torch.Tensor in _values.ARRAY_TYPES
    tensor = torch.tensor(scores, dtype=torch.float64).to(getattr(torch, dtype))
    if column:
        tensor = tensor.reshape(-1, 1)
    if requires_grad and tensor.is_floating_point():
        tensor.requires_grad_(True)
    _assert_same_summary(_rerank.summary(tensor, limit), _python_summary(tensor, limit))


def _assert_same_summary(found: Any, expected: Any) -> None:
    if expected is None:
        assert found is None
        return
    assert found is not None
    attributes, (order, ordered) = found
    expected_attributes, (expected_order, expected_ordered) = expected
    assert attributes.keys() == expected_attributes.keys()
    for key, value in attributes.items():  # bit for bit, NaN top scores included
        assert type(value) is type(expected_attributes[key])
        expected_value = expected_attributes[key]
        assert value == expected_value or (math.isnan(value) and math.isnan(expected_value))
    assert list(order) == list(expected_order)
    assert [type(v) for v in ordered] == [float] * len(expected_ordered)
    assert list(ordered) == list(expected_ordered) or any(map(math.isnan, expected_ordered))


@_compiled
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda np: np.array([[0.2], [0.9]]), id="two dimensions"),
        pytest.param(lambda np: np.ma.masked_array([0.2, 0.9]), id="a subclass"),
        pytest.param(lambda np: np.array(0.5), id="no dimension"),
        pytest.param(lambda np: np.array([0.2, 0.9], dtype=">f8"), id="foreign byte order"),
        pytest.param(lambda np: np.array([0.2, 0.9], dtype=np.float16), id="half floats"),
        pytest.param(lambda np: np.array([1, 2]), id="ints"),
        pytest.param(lambda np: np.array([0.2, np.nan]), id="a NaN"),
    ],
)
def test_the_compiled_ranking_leaves_other_arrays_to_python(make: Any) -> None:
    numpy = pytest.importorskip("numpy")
    assert _ranking._compiled_rank_summary(make(numpy), 10) is None  # type: ignore[misc]


@_compiled
def test_the_compiled_ranking_leaves_tau_past_exact_doubles_to_python() -> None:
    # 13,778 scores: n0 * n0 passes 2**53, where the formula's conversions could round.
    values = [float(i % 97) for i in range(13_778)]
    assert _ranking._compiled_rank_summary(values, 10) is None  # type: ignore[misc]
    assert _ranking._compiled_rank_summary(values[:13_777], 10) is not None  # type: ignore[misc]


# -- the one-query check ---------------------------------------------------------------------
def _python_one_query(monkeypatch: pytest.MonkeyPatch, pairs: Any) -> tuple[bool, Any]:
    with monkeypatch.context() as patched:
        patched.setattr(_attributes, "_compiled_one_query", None)
        return _attributes.single_query(pairs)


_QUERIES = st.sampled_from(["q", "r", "".join(["q"]), 1, 1.0, True, None, (1, 2)])
_PAIRS = st.lists(
    st.one_of(
        st.tuples(_QUERIES, st.just("doc")),
        st.tuples(_QUERIES, st.just("doc")).map(list),
        st.tuples(_QUERIES, st.just("doc"), st.just("extra")),
        st.just("ab"),
    ),
    max_size=8,
)


@_compiled
@settings(max_examples=300, deadline=None)
@given(pairs=_PAIRS, as_tuple=st.booleans())
def test_the_compiled_one_query_check_is_the_python_one(pairs: list[Any], as_tuple: bool) -> None:
    given_pairs = tuple(pairs) if as_tuple else pairs
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = _python_one_query(monkeypatch, given_pairs)
    found = _attributes.single_query(given_pairs)
    assert found[0] is expected[0]
    assert found[1] is expected[1]


class _PairList(list):  # type: ignore[type-arg]
    pass


@_compiled
@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(deque([("q", "a")]), id="another sequence"),
        pytest.param([("q", "a"), _PairList(["q", "b"])], id="a list subclass pair"),
    ],
)
def test_the_compiled_one_query_check_leaves_other_kinds_to_python(pairs: Any) -> None:
    assert _attributes._compiled_one_query(pairs) is NotImplemented  # type: ignore[misc]
    assert _attributes.single_query(pairs)[0] is True  # answered by the Python check


class _ClearingQuery:
    """A query whose equality empties the caller's list of pairs while it is read."""

    def __init__(self, pairs: list[Any]) -> None:
        self.pairs = pairs

    def __eq__(self, other: object) -> bool:
        self.pairs.clear()
        return True

    __hash__ = object.__hash__


@_compiled
def test_the_compiled_one_query_check_survives_an_equality_that_changes_the_list() -> None:
    pairs: list[Any] = []
    first, second = _ClearingQuery(pairs), _ClearingQuery(pairs)
    pairs.extend([(first, "a"), (second, "b"), (second, "c")])
    one, query = _attributes.single_query(pairs)
    assert one is True and query is first  # what was read before the list emptied
    assert pairs == []


class _RaisingQuery:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no equality")

    __hash__ = object.__hash__


@_compiled
def test_the_compiled_one_query_check_takes_a_raising_equality_as_different() -> None:
    assert _attributes.single_query([(_RaisingQuery(), "a"), (_RaisingQuery(), "b")]) == (
        False,
        None,
    )


# -- the output documents --------------------------------------------------------------------
def _python_documents(
    monkeypatch: pytest.MonkeyPatch, ranking: Any, limit: int, before: dict[str, Any]
) -> list[tuple[str, Any]]:
    attributes = dict(before)
    with monkeypatch.context() as patched:
        patched.setattr(_rerank, "_compiled_output_documents", None)
        _rerank.add_output_documents(attributes, ranking, limit)
    return list(attributes.items())


def _documents(ranking: Any, limit: int, before: dict[str, Any]) -> list[tuple[str, Any]]:
    attributes = dict(before)
    _rerank.add_output_documents(attributes, ranking, limit)
    return list(attributes.items())


_RANKED_SCORES = st.lists(
    st.one_of(
        st.floats(width=32),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
    ),
    max_size=80,  # past the 64 keys built once
)


@_compiled
@settings(max_examples=300, deadline=None)
@given(
    scores=_RANKED_SCORES,
    shift=st.integers(min_value=0, max_value=10**20),  # ids past a machine word, as text
    limit=st.integers(min_value=0, max_value=90),
    as_tuple=st.booleans(),
    written=st.booleans(),
)
def test_the_compiled_output_documents_are_the_python_ones(
    scores: list[float], shift: int, limit: int, as_tuple: bool, written: bool
) -> None:
    indices = [shift + i for i in range(len(scores))]
    ranking = (tuple(indices), tuple(scores)) if as_tuple else (indices, scores)
    # A key already there (a score written before) keeps its place, as in Python.
    before = {"reranker.output_documents.0.document.score": 9.0, "x": 1} if written else {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = _python_documents(monkeypatch, ranking, limit, before)
    found = _documents(ranking, limit, before)
    assert found == expected  # the same keys, values and order (NaN: the same object)


class _FloatList(list[float]):
    pass


@_compiled
@pytest.mark.parametrize(
    "ranking, limit",
    [
        (([True, 1], [0.5, 0.4]), 2),  # a bool is not an int: str(True)
        (([0, 1], [1, 0.5]), 2),  # an int score
        ((range(2), [0.5, 0.4]), 2),  # another kind of sequence
        (([0, 1], _FloatList([0.5, 0.4])), 2),  # a list subclass
        (([0, 1], [0.5, 0.4]), -1),  # a negative limit slices from the end
        (([0, 1], [0.5, 0.4]), 10**30),  # past a machine word: the slice takes it
        ((list(range(70)), [0.5] * 70), 70),  # more positions than the keys built once
    ],
)
def test_the_compiled_output_documents_leave_other_kinds_to_python(
    ranking: Any, limit: int
) -> None:
    attributes: dict[str, Any] = {}
    assert _rerank._compiled_output_documents is not None
    indices, scores = ranking
    keys = (_rerank._ID_KEYS, _rerank._SCORE_KEYS)
    assert _rerank._compiled_output_documents(attributes, indices, scores, limit, *keys) is False
    assert attributes == {}  # declined before writing anything
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _documents(ranking, limit, {}) == _python_documents(monkeypatch, ranking, limit, {})


# -- the summary written in one call -----------------------------------------------------------
def _python_written(
    monkeypatch: pytest.MonkeyPatch, scores: Any, limit: int, before: dict[str, Any]
) -> tuple[int | None, dict[str, Any]]:
    with monkeypatch.context() as patched:
        for name in ("_compiled_summarize", "_compiled_rank_summary", "_compiled_output_documents"):
            patched.setattr(_rerank, name, None)
        patched.setattr(_ranking, "_compiled_rank_summary", None)
        attributes = dict(before)
        return _rerank.write_summary(attributes, scores, limit), attributes


@_compiled
@settings(max_examples=300, deadline=None)
@given(
    scores=_SCORES,
    limit=st.integers(min_value=0, max_value=70),  # past the 64 keys built once
    kind=st.sampled_from(["list", "float32", "float64", "tensor"]),
    written=st.booleans(),
)
def test_the_compiled_summary_writing_is_the_python_one(
    scores: list[float], limit: int, kind: str, written: bool
) -> None:
    numpy = pytest.importorskip("numpy")
    values: Any = [float(s) for s in scores]
    if kind == "tensor":
        torch = pytest.importorskip("torch")
        values = torch.tensor(values, dtype=torch.float32)
    elif kind != "list":
        values = numpy.asarray(values, dtype=kind)
    # A key already there (a score written before) keeps its place, as in Python.
    before = {"rag.rerank.top_score": 9.0, "x": 1} if written else {}
    attributes = dict(before)
    found = _rerank.write_summary(attributes, values, limit)
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected, expected_attributes = _python_written(monkeypatch, values, limit, before)
    assert found == expected
    assert list(attributes) == list(expected_attributes)  # the same keys, in the same order
    for key, value in expected_attributes.items():
        assert type(attributes[key]) is type(value)
        assert attributes[key] == value or (math.isnan(value) and math.isnan(attributes[key]))


@_compiled
def test_the_compiled_summary_writing_declines_having_written_nothing() -> None:
    assert _rerank._compiled_summarize is not None
    keys = _rerank._WRITTEN_KEYS
    for scores, limit, attributes, given_keys in [
        ([0.5, float("nan")], 10, {}, keys),  # no order: the Python's
        ("ab", 10, {}, keys),  # not scores
        ([0.5] * 70, 70, {}, keys),  # more positions than keys
        ([0.5, 0.2], 10, {}, keys[:3]),  # keys of another shape
    ]:
        assert _rerank._compiled_summarize(scores, limit, attributes, given_keys) is None
        assert attributes == {}


# -- argument binding ------------------------------------------------------------------------
class _Signatures:
    """Methods of each kind of signature a wrapped library method has."""

    def plain(self, a: Any, b: Any = 2, *, c: Any = 3) -> None: ...
    def required_keyword(self, a: Any, *, c: Any) -> None: ...
    def var_keyword(self, a: Any, b: Any = 2, **kwargs: Any) -> None: ...
    def var_positional(self, a: Any, *rest: Any, d: Any = 4) -> None: ...
    def positional_only(self, a: Any, /, b: Any = 2, **kwargs: Any) -> None: ...
    def many(self, a: Any, b: Any = 1, c: Any = 2, d: Any = 3, e: Any = 4) -> None: ...


_METHODS = [name for name in vars(_Signatures) if not name.startswith("_")]
_NAMES = st.sampled_from(["a", "b", "c", "d", "e", "rest", "kwargs", "zz", "self"])


def _python_bind(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(_common, "_compiled_bind", None)
        return _common.bind_arguments(fn, args, kwargs)


@_compiled
@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(_METHODS),
    args=st.lists(st.integers(), max_size=6),
    kwargs=st.dictionaries(_NAMES, st.integers(), max_size=4),
)
def test_the_compiled_binding_is_the_python_one(
    name: str, args: list[int], kwargs: dict[str, int]
) -> None:
    fn = getattr(_Signatures(), name)
    expected = _python_bind(fn, tuple(args), kwargs)  # plans the method, if it has none
    assert _common._compiled_bind is not None
    found = _common._compiled_bind(_common._plans, fn, tuple(args), kwargs)
    if found is not None:  # else declined: the Python answers (and did, above)
        assert found == expected
        assert list(found) == list(_common._plans[fn.__func__].bind(tuple(args), kwargs) or ())
    assert _common.bind_arguments(fn, tuple(args), kwargs) == expected


@_compiled
def test_the_compiled_binding_takes_the_usual_calls_and_declines_the_rest() -> None:
    bind = _common._compiled_bind
    assert bind is not None
    fn = _Signatures().plain
    _python_bind(fn, (1,), {})  # its plan, made once
    plans = _common._plans
    assert bind(plans, fn, (1,), {"c": 4}) == {"a": 1, "b": 2, "c": 4}
    assert bind(plans, fn, (1, 5), {}) == {"a": 1, "b": 5, "c": 3}
    declined = [
        (plans, fn, (1,), {"a": 1}),  # given twice
        (plans, fn, (1, 2, 3), {}),  # too many positionals
        (plans, fn, (), {}),  # a required one missing
        (plans, fn, (1,), {"zz": 1}),  # a keyword it does not take
        (plans, fn, [1], {}),  # not a tuple
        (plans, fn, (1,), MappingProxyType({})),  # not a dict
        (plans, fn.__func__, (1,), {}),  # not a bound method
        ({}, fn, (1,), {}),  # no plan yet
        ({fn.__func__: None}, fn, (1,), {}),  # a signature that could not be read
    ]
    for call in declined:
        assert bind(*call) is None


# -- the build hook --------------------------------------------------------------------------
def _build_hook() -> Any:
    spec = importlib.util.spec_from_file_location("hatch_build", _REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_hook_compiles_the_module_it_imports(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    if not sysconfig.get_config_var("CC"):
        pytest.skip("no C compiler configured for this Python")
    target = tmp_path / f"_speedups{sysconfig.get_config_var('EXT_SUFFIX')}"
    assert _build_hook()._compile(_REPO / "src/otel_rerank/_speedups.c", target) is None
    loader = importlib.machinery.ExtensionFileLoader("otel_rerank._speedups", str(target))
    spec = importlib.util.spec_from_loader("otel_rerank._speedups", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.rank_summary([0.1, 0.9, 0.5], 2) == (0.9, True, -1 / 3, [1, 2], [0.9, 0.5])
    assert list(tmp_path.iterdir()) == [target]  # the object file is not left behind


def test_the_build_hook_says_in_one_line_why_it_could_not_compile(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    if not sysconfig.get_config_var("CC"):
        pytest.skip("no C compiler configured for this Python")
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C;\n")
    reason = _build_hook()._compile(broken, tmp_path / "broken.so")
    assert isinstance(reason, str) and "\n" not in reason
    assert "failed" in reason


# -- the patched method on every supported Python --------------------------------------------
#: The replacement type uses the C API where it changed between versions (vectorcall, a
#: classmethod's binding: 3.13 no longer calls the function's own ``__get__``).
_OTHER_PYTHONS = ("3.10", "3.12", "3.13")
_BUILD_VARS = (
    "import json, sysconfig; print(json.dumps({n: sysconfig.get_config_var(n) for n in "
    "('CC', 'CFLAGS', 'CCSHARED', 'LDSHARED', 'EXT_SUFFIX')} | "
    "{'include': sysconfig.get_paths()['include']}))"
)


@pytest.mark.parametrize("version", _OTHER_PYTHONS)
def test_the_replacement_builds_and_binds_on_other_pythons(version: str, tmp_path: Path) -> None:
    """Where another supported Python is installed (this machine's pyenv has them), the
    module builds for it with its own compiler settings, and ``Replacement`` binds and calls
    as on 3.11 (``tests/_replacement_smoke.py``, standard library only)."""
    import json
    import subprocess

    # pyenv's own installs first: its shims run only the versions it has selected.
    pyenv = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    candidates = [
        *map(str, sorted(pyenv.glob(f"versions/{version}.*/bin/python{version}"))),
        shutil.which(f"python{version}"),
    ]
    for python in filter(None, candidates):
        found = subprocess.run(
            [python, "-c", _BUILD_VARS], check=False, capture_output=True, text=True
        )
        if found.returncode == 0:
            break
    else:
        pytest.skip(f"no python{version} runs here")
    config = json.loads(found.stdout)
    if not config["CC"] or not Path(config["include"], "Python.h").exists():
        pytest.skip(f"no C compiler or headers for python{version}")
    obj = tmp_path / "_speedups.o"
    target = tmp_path / f"_speedups{config['EXT_SUFFIX']}"
    flags = shlex.split(config["CFLAGS"] or "") + shlex.split(config["CCSHARED"] or "")
    for step in (
        [
            *shlex.split(config["CC"]),
            *flags,
            "-I",
            config["include"],
            "-c",
            str(_REPO / "src/otel_rerank/_speedups.c"),
            "-o",
            str(obj),
        ],
        [*shlex.split(config["LDSHARED"]), str(obj), "-o", str(target)],
    ):
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    smoke = subprocess.run(
        [python, str(_REPO / "tests/_replacement_smoke.py"), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert smoke.returncode == 0 and smoke.stdout.strip() == "ok", smoke.stderr[-2000:]
