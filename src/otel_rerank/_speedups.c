/* Optional compiled versions of what every instrumented call runs: the patched method
 * that stands in for a library's own (the Replacement type at the end), the binding of
 * its arguments, and three pure functions every reranker call runs after its forward
 * pass: the ranking and summary of its scores, the one-query check of
 * CrossEncoder.predict's pairs and the ranking's writing as output documents.
 *
 * The Python is the reference (otel_rerank.instrumentation._base._plain_replacement,
 * otel_rerank.instrumentation._common._BindPlan.bind, otel_rerank._ranking.ranked_prefix,
 * otel_rerank.instrumentation.sentence_transformers._attributes.single_query and
 * otel_rerank._rerank.add_output_documents); each answers exactly as it does, or
 * declines (None / NotImplemented / False) and the caller runs the Python. Built by
 * hatch_build.py when a C compiler is present; without it the package is pure Python and
 * records the same attributes. Why it exists: in place, right after a model's forward
 * pass has evicted the CPU caches, the Python ranking of 50 scores costs 30-50 us and the
 * one-query check up to 30 us; a few interpreter-free loops cost a few
 * (docs/performance.md, "The compiled speed-ups").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* Up to this many scores the buffers live on the stack: every usual candidate list. */
#define ON_STACK 128

/* Sorts positions[0..n) stably by descending values (ties keep the order given) with a
 * bottom-up merge sort, and returns the inversions it undid: the pairs i < j with
 * values[i] < values[j], tau-b's discordant pairs. ``spare`` holds n more positions. */
static Py_ssize_t
sort_counting_discordant(const double *values, Py_ssize_t *positions, Py_ssize_t *spare,
                         Py_ssize_t n)
{
    Py_ssize_t discordant = 0;
    for (Py_ssize_t width = 1; width < n; width *= 2) {
        for (Py_ssize_t low = 0; low < n; low += 2 * width) {
            Py_ssize_t middle = low + width < n ? low + width : n;
            Py_ssize_t high = low + 2 * width < n ? low + 2 * width : n;
            Py_ssize_t left = low, right = middle, out = low;
            /* Every left position is earlier than every right one: a right value placed
             * first is above the left values still waiting, each a discordant pair. An
             * equal value is not placed first, so ties keep the order given. */
            while (left < middle && right < high) {
                if (values[positions[right]] > values[positions[left]]) {
                    discordant += middle - left;
                    spare[out++] = positions[right++];
                }
                else {
                    spare[out++] = positions[left++];
                }
            }
            while (left < middle) {
                spare[out++] = positions[left++];
            }
            while (right < high) {
                spare[out++] = positions[right++];
            }
        }
        memcpy(positions, spare, (size_t)n * sizeof(Py_ssize_t));
    }
    return discordant;
}

/* Reads the scores into values[0..n): the caller's list of floats (exactly floats), or an
 * exact numpy.ndarray of one dimension whose items are native float32 or float64, read
 * through the buffer protocol (its tolist() gives these same doubles). Returns 1, or 0 for
 * anything else and for a NaN (no error set either way; the caller declines). */
static int
read_scores(PyObject *scores, double *values, Py_ssize_t n)
{
    if (PyList_CheckExact(scores)) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyList_GET_ITEM(scores, i);
            if (!PyFloat_CheckExact(item)) {
                return 0;
            }
            double value = PyFloat_AS_DOUBLE(item);
            if (value != value) { /* a NaN: no order */
                return 0;
            }
            values[i] = value;
        }
        return 1;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(scores, &view, PyBUF_RECORDS_RO) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *format = view.format != NULL ? view.format : "B";
    if (format[0] == '@' || format[0] == '=' || format[0] == '<') {
        format++; /* native (a little-endian build reads '<' as native too) */
    }
    /* format[1] is read only once format[0] is known not to end the string */
    int ok = view.ndim == 1 && view.shape[0] == n
             && ((format[0] == 'f' && view.itemsize == 4)
                 || (format[0] == 'd' && view.itemsize == 8))
             && format[1] == '\0';
#if PY_BIG_ENDIAN
    ok = ok && view.format != NULL && view.format[0] != '<';
#endif
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        const char *item = (const char *)view.buf + i * view.strides[0];
        double value;
        if (view.itemsize == 4) {
            float single;
            memcpy(&single, item, sizeof single);
            value = (double)single;
        }
        else {
            memcpy(&value, item, sizeof value);
        }
        if (value != value) {
            ok = 0;
        }
        values[i] = value;
    }
    PyBuffer_Release(&view);
    return ok;
}

/* rank_summary(scores, limit) -> (top, top1_changed, tau, order, ordered) | None
 *
 * otel_rerank._ranking.ranked_prefix's answer for scores in the order the candidates were
 * given (read_scores: a list of floats, or a float numpy array read in place): the top
 * score (the first among ties), whether it is not the first candidate's, Kendall's tau-b
 * (None when every pair ties or there is one score), and the first ``limit`` positions
 * by descending score with their values (sliced as list[:limit] is). Tau-b is
 * (n0 - tied - 2 * discordant) / sqrt(n0 * (n0 - tied)), the Python's formula: with the
 * product below 2**53 every conversion to double is exact, so the result is the Python's
 * bit for bit; past it (13,778 scores or more) the Python answers. None for that, an empty
 * or other kind of input, a NaN, or a limit that is not an int in a machine word. */
static PyObject *
rank_summary(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "rank_summary(scores, limit)");
        return NULL;
    }
    PyObject *scores = args[0];
    int is_list = PyList_CheckExact(scores);
    if (!is_list && strcmp(Py_TYPE(scores)->tp_name, "numpy.ndarray") != 0) {
        Py_RETURN_NONE; /* a subclass (a masked array) reads differently: the Python's */
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) { /* not an int, or past a machine word */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyObject_Length(scores);
    if (n <= 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    long long n0 = (long long)n * (n - 1) / 2;
    if (n0 > 94906265LL) { /* n0 * n0 past 2**53 (94906266**2 is): the Python's tau */
        Py_RETURN_NONE;
    }
    if (limit < 0) {
        limit = n + limit < 0 ? 0 : n + limit;
    }
    else if (limit > n) {
        limit = n;
    }
    double values_on_stack[ON_STACK];
    Py_ssize_t positions_on_stack[2 * ON_STACK];
    double *values = values_on_stack;
    Py_ssize_t *positions = positions_on_stack;
    if (n > ON_STACK) {
        values = PyMem_Malloc((size_t)n * sizeof(double));
        positions = PyMem_Malloc(2 * (size_t)n * sizeof(Py_ssize_t));
        if (values == NULL || positions == NULL) {
            PyMem_Free(values);
            PyMem_Free(positions);
            return PyErr_NoMemory();
        }
    }
    PyObject *result = NULL;
    PyObject *top = NULL, *tau = NULL, *order = NULL, *ordered = NULL;
    /* Nothing below runs Python code until the lists are built, so the scores cannot
     * change under the loops. */
    if (!read_scores(scores, values, n)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        positions[i] = i;
    }
    long long discordant = sort_counting_discordant(values, positions, positions + n, n);
    long long tied = 0, run = 0; /* each value ties with the equal ones sorted before it */
    for (Py_ssize_t i = 1; i < n; i++) {
        run = values[positions[i]] == values[positions[i - 1]] ? run + 1 : 0;
        tied += run;
    }
    if (n > 1 && tied != n0) {
        tau = PyFloat_FromDouble((double)(n0 - tied - 2 * discordant)
                                 / sqrt((double)(n0 * (n0 - tied))));
    }
    else {
        tau = Py_NewRef(Py_None);
    }
    Py_ssize_t best = positions[0];
    top = is_list ? Py_NewRef(PyList_GET_ITEM(scores, best)) : PyFloat_FromDouble(values[best]);
    order = PyList_New(limit);
    ordered = PyList_New(limit);
    if (tau == NULL || top == NULL || order == NULL || ordered == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < limit; i++) {
        PyObject *position = PyLong_FromSsize_t(positions[i]);
        /* A list's own float objects, as list(map(values.__getitem__, order)) has them. */
        PyObject *value = is_list ? Py_NewRef(PyList_GET_ITEM(scores, positions[i]))
                                  : PyFloat_FromDouble(values[positions[i]]);
        if (position == NULL || value == NULL) {
            Py_XDECREF(position);
            Py_XDECREF(value);
            goto done;
        }
        PyList_SET_ITEM(order, i, position);
        PyList_SET_ITEM(ordered, i, value);
    }
    result = PyTuple_New(5);
    if (result != NULL) {
        PyTuple_SET_ITEM(result, 0, top);
        PyTuple_SET_ITEM(result, 1, Py_NewRef(best != 0 ? Py_True : Py_False));
        PyTuple_SET_ITEM(result, 2, tau);
        PyTuple_SET_ITEM(result, 3, order);
        PyTuple_SET_ITEM(result, 4, ordered);
        top = tau = order = ordered = NULL; /* the tuple holds them */
    }
done:
    Py_XDECREF(top);
    Py_XDECREF(tau);
    Py_XDECREF(order);
    Py_XDECREF(ordered);
    if (values != values_on_stack) {
        PyMem_Free(values);
        PyMem_Free(positions);
    }
    return result;
}

/* one_query(pairs) -> (True, query) | (False, None) | NotImplemented
 *
 * Whether every pair of a list or tuple of [query, document] lists or tuples has the same
 * first element: one object, or equal values of one type (an equality that raises or is
 * not one bool counts as different). NotImplemented for anything the Python check must
 * answer: another kind of sequence, or a pair that is a list or tuple subclass. */
static PyObject *
one_query(PyObject *module, PyObject *pairs)
{
    if (!PyList_CheckExact(pairs) && !PyTuple_CheckExact(pairs)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (PySequence_Fast_GET_SIZE(pairs) == 0) {
        return Py_BuildValue("(OO)", Py_False, Py_None);
    }
    PyObject *query = NULL;
    /* An __eq__ may change the caller's list: its size and items are read afresh each
     * step, and the objects compared are held. */
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(pairs); i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(pairs, i);
        if (!PyList_CheckExact(pair) && !PyTuple_CheckExact(pair)) {
            if (PyList_Check(pair) || PyTuple_Check(pair)) {
                Py_XDECREF(query);
                Py_RETURN_NOTIMPLEMENTED;
            }
            goto different;
        }
        if (PySequence_Fast_GET_SIZE(pair) != 2) {
            goto different;
        }
        PyObject *other = PySequence_Fast_GET_ITEM(pair, 0);
        if (query == NULL) {
            query = Py_NewRef(other);
            continue;
        }
        if (other == query) {
            continue;
        }
        if (Py_TYPE(other) != Py_TYPE(query)) {
            goto different;
        }
        Py_INCREF(pair);
        Py_INCREF(other);
        int same = PyObject_RichCompareBool(other, query, Py_EQ);
        Py_DECREF(other);
        Py_DECREF(pair);
        if (same != 1) {
            PyErr_Clear();
            goto different;
        }
    }
    return Py_BuildValue("(ON)", Py_True, query);
different:
    Py_XDECREF(query);
    return Py_BuildValue("(OO)", Py_False, Py_None);
}

/* bind(plans, fn, args, kwargs) -> dict | None
 *
 * otel_rerank.instrumentation._common._BindPlan.bind's answer for a bound method ``fn``
 * whose function has a plan in ``plans`` (a _BindPlan: the tuple (positional, by_count,
 * keywords, names, var_keyword, defaults), by_count[n] being (the names n positional
 * arguments fill: a frozenset, the required names left: a tuple)): the arguments by name,
 * defaults filled in, ``**kwargs`` flattened. None (no error set) for anything the Python
 * must answer: ``fn`` not a bound method, no plan yet, args not a tuple or kwargs not a
 * dict, or a call the plan does not cover (too many positional arguments, a keyword given
 * twice or not taken, a required one missing). Why: every instrumented call binds its
 * arguments, and right after a model's forward pass the Python's ~100 bytecodes cost
 * several microseconds where this costs a few cache lines. */
static PyObject *
bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "bind(plans, fn, args, kwargs)");
        return NULL;
    }
    PyObject *plans = args[0], *fn = args[1], *given_args = args[2], *kwargs = args[3];
    if (!PyMethod_Check(fn) || !PyDict_CheckExact(plans) || !PyTuple_CheckExact(given_args)
        || !PyDict_CheckExact(kwargs)) {
        Py_RETURN_NONE;
    }
    PyObject *plan = PyDict_GetItemWithError(plans, PyMethod_GET_FUNCTION(fn));
    if (plan == NULL || !PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 6) {
        PyErr_Clear();
        Py_RETURN_NONE; /* no plan yet, or none can be made: the Python's */
    }
    PyObject *positional = PyTuple_GET_ITEM(plan, 0), *by_count = PyTuple_GET_ITEM(plan, 1);
    PyObject *keywords = PyTuple_GET_ITEM(plan, 2), *names = PyTuple_GET_ITEM(plan, 3);
    int var_keyword = PyTuple_GET_ITEM(plan, 4) == Py_True;
    PyObject *defaults = PyTuple_GET_ITEM(plan, 5);
    Py_ssize_t count = PyTuple_GET_SIZE(given_args);
    if (count >= PyTuple_GET_SIZE(by_count)) { /* by_count has len(positional) + 1 */
        Py_RETURN_NONE;
    }
    PyObject *entry = PyTuple_GET_ITEM(by_count, count);
    PyObject *filled = PyTuple_GET_ITEM(entry, 0), *missing = PyTuple_GET_ITEM(entry, 1);
    /* Keys are read without running Python code but their hashes and equality (str
     * keys: none of theirs), so kwargs does not change under the loop. */
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwargs, &position, &key, &value)) {
        int found = PySet_Contains(filled, key);
        if (found != 0) { /* given twice (or an error: the Python's) */
            goto decline;
        }
        found = PySet_Contains(keywords, key);
        if (found < 0) {
            goto decline;
        }
        if (!found && (!var_keyword || PySet_Contains(names, key) != 0)) {
            goto decline; /* not taken, or a positional-only name going to **kwargs */
        }
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(missing); i++) {
        int found = PyDict_Contains(kwargs, PyTuple_GET_ITEM(missing, i));
        if (found != 1) {
            goto decline;
        }
    }
    PyObject *named = PyDict_Copy(defaults);
    if (named == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyDict_SetItem(named, PyTuple_GET_ITEM(positional, i),
                           PyTuple_GET_ITEM(given_args, i)) < 0) {
            Py_DECREF(named);
            return NULL;
        }
    }
    if (PyDict_GET_SIZE(kwargs) && PyDict_Update(named, kwargs) < 0) {
        Py_DECREF(named);
        return NULL;
    }
    return named;
decline:
    PyErr_Clear();
    Py_RETURN_NONE;
}

/* str(i) for the positions a span usually holds (max_documents defaults to 10), made
 * once at import: an id written from here is one of these rather than a new string. */
#define ID_TEXTS 64
static PyObject *id_texts[ID_TEXTS];

/* Writes column[i] (ids: str(column[i])) under keys[i] for i < n; a score that is not
 * finite is not written. Every item was checked by the caller. -1 on a failed write. */
static int
write_column(PyObject *attributes, PyObject *column, PyObject *keys, Py_ssize_t n, int ids)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(column, i);
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (ids) {
            Py_ssize_t position = PyLong_AsSsize_t(item);
            PyObject *text;
            if (position >= 0 && position < ID_TEXTS) {
                text = Py_NewRef(id_texts[position]);
            }
            else {
                PyErr_Clear(); /* past a machine word: its own text */
                text = PyObject_Str(item);
                if (text == NULL) {
                    return -1;
                }
            }
            int failed = PyDict_SetItem(attributes, key, text);
            Py_DECREF(text);
            if (failed) {
                return -1;
            }
        }
        else if (Py_IS_FINITE(PyFloat_AS_DOUBLE(item))
                 && PyDict_SetItem(attributes, key, item) < 0) {
            return -1;
        }
    }
    return 0;
}

/* output_documents(attributes, indices, scores, limit, id_keys, score_keys) -> bool
 *
 * Adds str(indices[i]) under id_keys[i] for the first ``limit`` indices, then scores[i]
 * under score_keys[i] for the first ``limit`` finite scores (in the order given; the
 * dict's order is the span's), and answers True. False, having written nothing, for
 * anything the Python must answer: a dict subclass, columns that are not lists or tuples,
 * an index that is not exactly an int or a score that is not exactly a float, a limit that
 * is negative or not an int that fits a machine word, more entries than keys. Nothing here runs Python code: the columns cannot
 * change while they are read. */
static PyObject *
output_documents(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "output_documents(attributes, indices, scores, limit, id_keys, "
                        "score_keys)");
        return NULL;
    }
    PyObject *attributes = args[0], *indices = args[1], *scores = args[2];
    PyObject *id_keys = args[4], *score_keys = args[5];
    if (!PyDict_CheckExact(attributes) || !PyTuple_CheckExact(id_keys)
        || !PyTuple_CheckExact(score_keys)
        || !(PyList_CheckExact(indices) || PyTuple_CheckExact(indices))
        || !(PyList_CheckExact(scores) || PyTuple_CheckExact(scores))) {
        Py_RETURN_FALSE;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[3]);
    if (limit == -1 && PyErr_Occurred()) { /* not an int, or past a machine word */
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    Py_ssize_t ids = PySequence_Fast_GET_SIZE(indices);
    Py_ssize_t values = PySequence_Fast_GET_SIZE(scores);
    if (limit < 0) {
        Py_RETURN_FALSE;
    }
    ids = ids < limit ? ids : limit;
    values = values < limit ? values : limit;
    if (ids > PyTuple_GET_SIZE(id_keys) || values > PyTuple_GET_SIZE(score_keys)) {
        Py_RETURN_FALSE;
    }
    for (Py_ssize_t i = 0; i < ids; i++) {
        if (!PyLong_CheckExact(PySequence_Fast_GET_ITEM(indices, i))) {
            Py_RETURN_FALSE;
        }
    }
    for (Py_ssize_t i = 0; i < values; i++) {
        if (!PyFloat_CheckExact(PySequence_Fast_GET_ITEM(scores, i))) {
            Py_RETURN_FALSE;
        }
    }
    if (write_column(attributes, indices, id_keys, ids, 1) < 0
        || write_column(attributes, scores, score_keys, values, 0) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* summarize(scores, limit, attributes, keys) -> int | None
 *
 * rank_summary's answer written into ``attributes`` (an exact dict) as
 * otel_rerank._rerank.write_summary writes it (its reference): the top score under
 * keys[0], top1_changed under keys[1], tau-b under keys[2] when it is defined, then the
 * first ``limit`` positions of the ranking as output_documents (their ids, str(position),
 * under keys[3][i]; their finite scores under keys[4][i]); answers how many positions were
 * written. None, having written nothing, where rank_summary declines or there are more
 * positions than keys. Why: the summary and the reranked list of every reranker call in
 * one call, where the Python took five frames and two dicts between them. */
static PyObject *
summarize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "summarize(scores, limit, attributes, keys)");
        return NULL;
    }
    PyObject *attributes = args[2], *keys = args[3];
    if (!PyDict_CheckExact(attributes) || !PyTuple_CheckExact(keys) || PyTuple_GET_SIZE(keys) != 5
        || !PyTuple_CheckExact(PyTuple_GET_ITEM(keys, 3))
        || !PyTuple_CheckExact(PyTuple_GET_ITEM(keys, 4))) {
        Py_RETURN_NONE;
    }
    PyObject *found = rank_summary(module, args, 2);
    if (found == NULL || found == Py_None) {
        return found;
    }
    PyObject *order = PyTuple_GET_ITEM(found, 3), *ordered = PyTuple_GET_ITEM(found, 4);
    Py_ssize_t n = PyList_GET_SIZE(order);
    PyObject *id_keys = PyTuple_GET_ITEM(keys, 3), *score_keys = PyTuple_GET_ITEM(keys, 4);
    PyObject *result = NULL;
    if (n > PyTuple_GET_SIZE(id_keys) || n > PyTuple_GET_SIZE(score_keys)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *tau = PyTuple_GET_ITEM(found, 2);
    if (PyDict_SetItem(attributes, PyTuple_GET_ITEM(keys, 0), PyTuple_GET_ITEM(found, 0)) < 0
        || PyDict_SetItem(attributes, PyTuple_GET_ITEM(keys, 1), PyTuple_GET_ITEM(found, 1)) < 0
        || (tau != Py_None && PyDict_SetItem(attributes, PyTuple_GET_ITEM(keys, 2), tau) < 0)
        || write_column(attributes, order, id_keys, n, 1) < 0
        || write_column(attributes, ordered, score_keys, n, 0) < 0) {
        goto done;
    }
    result = PyLong_FromSsize_t(n);
done:
    Py_DECREF(found);
    return result;
}

/* Replacement(function, wrapper, bound, trace_globals, metrics_globals, telemetry_globals)
 *
 * The patcher's stand-in for a library's plain, synchronous Python function (see
 * otel_rerank.instrumentation._base._plain_replacement, the Python twin and reference).
 * Called, it first asks "no SDK configured?" as the Python does: trace._TRACER_PROVIDER
 * is None and metrics._internal._METER_PROVIDER is None and _telemetry.own_providers is
 * False, read from the three modules' dicts on each call (the application may set a
 * provider at any time). If so it calls the original with the very arguments it was
 * given (vectorcall: no tuple, dict or frame of its own); else it calls
 * wrapper(wrapped, instance, args, kwargs) with wrapt's arguments: for a ``bound``
 * replacement (a method, or a classmethod's function) the original bound to the first
 * argument, that argument and the rest; for a staticmethod's, the original and None.
 * Why: in an app without an SDK this check is all a call pays, and right after a model's
 * forward pass has swept the CPU caches a Python function's frame and argument packing
 * cost microseconds where this costs a few cache lines.
 *
 * The answer is kept with what it was read from, so that a call whose dicts have not
 * changed since reads no key, hash or entry of them (three lookups are about fifteen
 * cache lines, each a miss after a forward pass: 5 µs on the model rows, no_sdk_split.py):
 * before 3.12, with the three dicts' version tags (PEP 509: every change of a dict gives
 * it a new one, unique in the process), one line each; from 3.12, where those tags are
 * deprecated, with a dict watcher that counts every change of a watched dict (one line
 * for all three). Where neither holds (the watcher could not be added or a dict not
 * watched), the three lookups run on every call, as before.
 *
 * It behaves as a function where the patcher and the frameworks look: a descriptor that
 * binds like one (and skips the bound method on ``obj.method(...)``, as a function does),
 * a __dict__ for functools.update_wrapper's __name__, __qualname__, __doc__, __module__
 * and __wrapped__ (so inspect.signature reads the original's), weak references, and
 * pickling by qualified name. */
typedef struct {
    PyObject_HEAD
    PyObject *function;
    PyObject *wrapper;
    PyObject *trace_globals;
    PyObject *metrics_globals;
    PyObject *telemetry_globals;
    PyObject *dict;
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
    int bound;
    int answer;       /* no_sdk_looked_up's answer when it was last worked out */
    uint64_t seen[3]; /* the dicts' version tags then; from 3.12 seen[0]: the change count */
#if PY_VERSION_HEX >= 0x030C0000
    int watched; /* the three dicts are watched: else they are looked up on every call */
#endif
} Replacement;

static PyObject *TRACER_PROVIDER_KEY, *METER_PROVIDER_KEY, *OWN_PROVIDERS_KEY;

#if PY_VERSION_HEX >= 0x030C0000
/* Every change of a dict a replacement reads (PyDict_Watch in replacement_new) counts;
 * -1 where the watcher could not be added. */
static int globals_watcher = -1;
static uint64_t globals_changes;

static int
globals_changed(PyDict_WatchEvent event, PyObject *dict, PyObject *key, PyObject *new_value)
{
    globals_changes++; /* before the change: the next call reads the dicts after it */
    return 0;
}
#endif

/* 1 when nothing is configured; 0 otherwise, and when a global cannot be read (the
 * wrapper then asks itself). Sets no error. */
static int
no_sdk_looked_up(Replacement *self)
{
    PyObject *value = PyDict_GetItemWithError(self->trace_globals, TRACER_PROVIDER_KEY);
    if (value == Py_None) {
        value = PyDict_GetItemWithError(self->metrics_globals, METER_PROVIDER_KEY);
        if (value == Py_None) {
            value = PyDict_GetItemWithError(self->telemetry_globals, OWN_PROVIDERS_KEY);
            if (value == Py_False) {
                return 1;
            }
        }
    }
    if (value == NULL) {
        PyErr_Clear();
    }
    return 0;
}

/* no_sdk_looked_up's answer, kept with the state of the three dicts it was read from. */
static int
no_sdk_kept(Replacement *self)
{
    self->answer = no_sdk_looked_up(self);
#if PY_VERSION_HEX < 0x030C0000
    self->seen[0] = ((PyDictObject *)self->trace_globals)->ma_version_tag;
    self->seen[1] = ((PyDictObject *)self->metrics_globals)->ma_version_tag;
    self->seen[2] = ((PyDictObject *)self->telemetry_globals)->ma_version_tag;
#else
    self->seen[0] = globals_changes;
#endif
    return self->answer;
}

/* The kept answer while the three dicts are unchanged (see above), else looked up again. */
static inline int
no_sdk(Replacement *self)
{
#if PY_VERSION_HEX < 0x030C0000
    if (((PyDictObject *)self->trace_globals)->ma_version_tag == self->seen[0]
        && ((PyDictObject *)self->metrics_globals)->ma_version_tag == self->seen[1]
        && ((PyDictObject *)self->telemetry_globals)->ma_version_tag == self->seen[2]) {
        return self->answer;
    }
#else
    if (!self->watched) {
        return no_sdk_looked_up(self);
    }
    if (self->seen[0] == globals_changes) {
        return self->answer;
    }
#endif
    return no_sdk_kept(self);
}

static PyObject *
replacement_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                       PyObject *kwnames)
{
    Replacement *self = (Replacement *)callable;
    if (no_sdk(self)) {
        return PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t first = self->bound ? 1 : 0;
    if (nargs < first) { /* no instance: the original raises its own TypeError */
        return PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    }
    PyObject *instance = self->bound ? args[0] : Py_None;
    PyObject *wrapped = self->bound ? PyMethod_New(self->function, instance)
                                    : Py_NewRef(self->function);
    PyObject *rest = PyTuple_New(nargs - first);
    PyObject *kwargs = PyDict_New();
    PyObject *result = NULL;
    if (wrapped == NULL || rest == NULL || kwargs == NULL) {
        goto done;
    }
    for (Py_ssize_t i = first; i < nargs; i++) {
        PyTuple_SET_ITEM(rest, i - first, Py_NewRef(args[i]));
    }
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                goto done;
            }
        }
    }
    PyObject *call[4] = {wrapped, instance, rest, kwargs};
    result = PyObject_Vectorcall(self->wrapper, call, 4, NULL);
done:
    Py_XDECREF(wrapped);
    Py_XDECREF(rest);
    Py_XDECREF(kwargs);
    return result;
}

static PyObject *
replacement_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *function, *wrapper, *trace_globals, *metrics_globals, *telemetry_globals;
    int bound;
    static char *names[] = {"function", "wrapper", "bound", "trace_globals",
                            "metrics_globals", "telemetry_globals", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOpO!O!O!:Replacement", names, &function,
                                     &wrapper, &bound, &PyDict_Type, &trace_globals,
                                     &PyDict_Type, &metrics_globals, &PyDict_Type,
                                     &telemetry_globals)) {
        return NULL;
    }
    if (!PyCallable_Check(function) || !PyCallable_Check(wrapper)) {
        PyErr_SetString(PyExc_TypeError, "Replacement: function and wrapper must be callable");
        return NULL;
    }
    Replacement *self = (Replacement *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->function = Py_NewRef(function);
    self->wrapper = Py_NewRef(wrapper);
    self->trace_globals = Py_NewRef(trace_globals);
    self->metrics_globals = Py_NewRef(metrics_globals);
    self->telemetry_globals = Py_NewRef(telemetry_globals);
    self->bound = bound;
    self->vectorcall = replacement_vectorcall;
#if PY_VERSION_HEX >= 0x030C0000
    /* Watched, a dict's changes are counted and the answer is kept between them; where a
     * dict cannot be watched, it is looked up on every call. */
    if (globals_watcher >= 0) {
        if (PyDict_Watch(globals_watcher, trace_globals) < 0
            || PyDict_Watch(globals_watcher, metrics_globals) < 0
            || PyDict_Watch(globals_watcher, telemetry_globals) < 0) {
            PyErr_Clear();
        }
        else {
            self->watched = 1;
        }
    }
#endif
    no_sdk_kept(self);
    return (PyObject *)self;
}

static int
replacement_traverse(Replacement *self, visitproc visit, void *arg)
{
    Py_VISIT(self->function);
    Py_VISIT(self->wrapper);
    Py_VISIT(self->trace_globals);
    Py_VISIT(self->metrics_globals);
    Py_VISIT(self->telemetry_globals);
    Py_VISIT(self->dict);
    return 0;
}

static int
replacement_clear(Replacement *self)
{
    Py_CLEAR(self->function);
    Py_CLEAR(self->wrapper);
    Py_CLEAR(self->trace_globals);
    Py_CLEAR(self->metrics_globals);
    Py_CLEAR(self->telemetry_globals);
    Py_CLEAR(self->dict);
    return 0;
}

static void
replacement_dealloc(Replacement *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    replacement_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Bound to an instance as a function is: a method of it; looked up on the class, itself. */
static PyObject *
replacement_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
replacement_repr(Replacement *self)
{
    return PyUnicode_FromFormat("<otel-rerank replacement of %R>", self->function);
}

/* Pickled by qualified name, as a function is: the unpickler finds the patched method. */
static PyObject *
replacement_reduce(PyObject *self, PyObject *unused)
{
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyMethodDef replacement_methods[] = {
    {"__reduce__", replacement_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef replacement_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ReplacementType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "otel_rerank._speedups.Replacement",
    .tp_doc = "The patcher's compiled stand-in for a library's plain synchronous function.",
    .tp_basicsize = sizeof(Replacement),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = replacement_new,
    .tp_dealloc = (destructor)replacement_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_traverse = (traverseproc)replacement_traverse,
    .tp_clear = (inquiry)replacement_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Replacement, vectorcall),
    .tp_descr_get = replacement_get,
    .tp_repr = (reprfunc)replacement_repr,
    .tp_methods = replacement_methods,
    .tp_getset = replacement_getset,
    .tp_dictoffset = offsetof(Replacement, dict),
    .tp_weaklistoffset = offsetof(Replacement, weakrefs),
};

static PyMethodDef speedups_methods[] = {
    {"rank_summary", (PyCFunction)(void (*)(void))rank_summary, METH_FASTCALL, NULL},
    {"one_query", (PyCFunction)one_query, METH_O, NULL},
    {"output_documents", (PyCFunction)(void (*)(void))output_documents, METH_FASTCALL, NULL},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL, NULL},
    {"summarize", (PyCFunction)(void (*)(void))summarize, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "otel_rerank._speedups",
    "Compiled versions of the patched method, its argument binding and three hot pure "
    "functions; the Python ones are the reference.",
    0,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    TRACER_PROVIDER_KEY = PyUnicode_InternFromString("_TRACER_PROVIDER");
    METER_PROVIDER_KEY = PyUnicode_InternFromString("_METER_PROVIDER");
    OWN_PROVIDERS_KEY = PyUnicode_InternFromString("own_providers");
    if (TRACER_PROVIDER_KEY == NULL || METER_PROVIDER_KEY == NULL || OWN_PROVIDERS_KEY == NULL
        || PyType_Ready(&ReplacementType) < 0) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    globals_watcher = PyDict_AddWatcher(globals_changed);
    if (globals_watcher < 0) { /* all eight taken: the replacements look up on every call */
        PyErr_Clear();
    }
#endif
    for (Py_ssize_t i = 0; i < ID_TEXTS; i++) {
        id_texts[i] = PyUnicode_FromFormat("%zd", i);
        if (id_texts[i] == NULL) {
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Replacement", (PyObject *)&ReplacementType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
