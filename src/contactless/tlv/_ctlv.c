/* The C accelerator for the hot TLV functions: decode() and find_value().
 *
 * _pytlv.py is the specification; this file must agree with it on every input, results
 * and errors alike (tests/tlv/test_differential.py and tools/fuzz_tlv.py check that).
 * Everything else (encode, lookups, tag parsing errors) stays in Python.
 *
 * Design notes:
 * - Input is snapshotted exactly as the Python path does (bytes(data) unless it already is
 *   bytes), so a bytearray mutated by a finalizer during decoding cannot move under us.
 * - Both functions walk the buffer iteratively with a fixed-size explicit stack of
 *   CTLV_MAX_DEPTH frames; depth is checked before every push.
 * - Nodes are the Python classes from contactless.tlv.node, imported at module exec and kept
 *   in module state (no static PyObject globals), so the module supports several
 *   interpreters. A Tlv is allocated with PyObject_GC_New and its six __slots__ are filled
 *   at the offsets its member descriptors publish (what Tlv.__init__ would do, for less);
 *   exec refuses to load if that layout is not what this file expects (then the package
 *   falls back to, or with CONTACTLESS_REQUIRE_C=1 fails loudly instead of, the pure-Python
 *   path).
 * - Lazy truth: `strict` is only evaluated when an error happens, as in Python.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030C0000
#define CTLV_T_OBJECT_EX Py_T_OBJECT_EX
#define CTLV_READONLY Py_READONLY
#else
#include <structmember.h>
#define CTLV_T_OBJECT_EX T_OBJECT_EX
#define CTLV_READONLY READONLY
#endif

/* Must equal contactless.tlv._pytlv.MAX_DEPTH; module exec checks it. */
#define CTLV_MAX_DEPTH 32
#define CTLV_STR(x) #x
#define CTLV_XSTR(x) CTLV_STR(x)

/* Order of the slots we fill; names are those of node.Tlv.__slots__. */
enum { SLOT_TAG, SLOT_VALUE, SLOT_CHILDREN, SLOT_OFFSET, SLOT_FORM, SLOT_PADDING, SLOT_COUNT };
static const char *const slot_names[SLOT_COUNT] = {
    "tag_bytes", "value", "children", "offset", "length_form", "padding",
};

typedef struct {
    PyTypeObject *tlv_type;     /* contactless.tlv.node.Tlv */
    PyTypeObject *tlvlist_type; /* contactless.tlv.node.TlvList */
    PyObject *tlv_error;        /* contactless.errors.TlvError */
    PyObject *local_error;      /* contactless.errors.LocalProtocolError */
    PyObject *parse_tag;        /* contactless.tlv._pytlv.parse_tag (error messages) */
    PyObject *str_trailing;
    PyObject *str_error;
    PyObject *str_data;
    PyObject *str_strict;
    PyObject *str_tag;
    PyObject *error_kwnames; /* ("offset", "tag") for TlvError(reason, offset=, tag=) */
    PyObject *empty_tuple;
    PyObject *empty_bytes;
    /* Two-byte tags (first byte xx1F, second byte < 0x80) are most EMV tags: one shared,
     * immutable bytes object per tag saves an allocation per node. Filled at exec, so
     * decoding only reads it (no races without a GIL). */
    PyObject *tag2_cache[8 * 128];
    Py_ssize_t slot_offsets[SLOT_COUNT];
} ctlv_state;

static inline ctlv_state *
get_state(PyObject *module)
{
    return (ctlv_state *)PyModule_GetState(module);
}

/* ---------------------------------------------------------------------------------------
 * Reading one object header: the part shared by decode() and find_value().
 */

typedef enum {
    FAULT_TAG_TRUNCATED,
    FAULT_TAG_TOO_LONG,
    FAULT_LENGTH_MISSING,
    FAULT_LENGTH_TRUNCATED,
    FAULT_LENGTH_INDEFINITE,
    FAULT_LENGTH_FIELD_TOO_LONG,
    FAULT_PAST_END,
    FAULT_TOO_DEEP,
} fault_kind;

typedef struct {
    Py_ssize_t start;   /* offset of the first tag byte */
    Py_ssize_t tag_end; /* one past the last tag byte read */
    Py_ssize_t vstart;  /* first value byte */
    Py_ssize_t vend;    /* one past the last value byte */
    int form;           /* bytes in the length field (1 short form, 2-5 long form) */
    /* Filled only on a fault: */
    fault_kind fault;
    unsigned int length_byte;
    unsigned long long length;
} header;

/* Read the tag and length of the object starting at buf[pos] (pos < end, not padding).
 * Returns 0, or -1 with h->fault set. Reads only buf[pos..end). */
static inline int
read_header(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end, header *h)
{
    Py_ssize_t i = pos + 1;
    unsigned int length_byte;
    unsigned long long length;

    h->start = pos;
    if ((buf[pos] & 0x1F) == 0x1F) {
        for (;;) {
            if (i >= end) {
                h->tag_end = i;
                h->fault = FAULT_TAG_TRUNCATED;
                return -1;
            }
            if (i - pos >= 4) {
                h->tag_end = i;
                h->fault = FAULT_TAG_TOO_LONG;
                return -1;
            }
            i++;
            if (!(buf[i - 1] & 0x80)) {
                break;
            }
        }
    }
    h->tag_end = i;
    if (i >= end) {
        h->fault = FAULT_LENGTH_MISSING;
        return -1;
    }
    length_byte = buf[i];
    if (length_byte < 0x80) {
        h->form = 1;
        h->vstart = i + 1;
        length = length_byte;
    }
    else if (length_byte >= 0x81 && length_byte <= 0x84) {
        Py_ssize_t k;
        h->form = (int)length_byte - 0x7F;
        h->vstart = i + h->form;
        if (h->vstart > end) {
            h->fault = FAULT_LENGTH_TRUNCATED;
            return -1;
        }
        length = 0;
        for (k = i + 1; k < h->vstart; k++) {
            length = (length << 8) | buf[k];
        }
    }
    else if (length_byte == 0x80) {
        h->fault = FAULT_LENGTH_INDEFINITE;
        return -1;
    }
    else {
        h->length_byte = length_byte;
        h->fault = FAULT_LENGTH_FIELD_TOO_LONG;
        return -1;
    }
    /* Compare without computing vstart + length, which could overflow. */
    if (length > (unsigned long long)(end - h->vstart)) {
        h->length = length;
        h->vend = end; /* only used for "bytes left" */
        h->fault = FAULT_PAST_END;
        return -1;
    }
    h->vend = h->vstart + (Py_ssize_t)length;
    return 0;
}

static PyObject *
hex_upper(const unsigned char *p, Py_ssize_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    char text[2 * 4];
    Py_ssize_t k;

    /* Tags are at most 4 bytes; longer spans never reach here. */
    if (n > 4) {
        n = 4;
    }
    for (k = 0; k < n; k++) {
        text[2 * k] = digits[p[k] >> 4];
        text[2 * k + 1] = digits[p[k] & 0x0F];
    }
    return PyUnicode_FromStringAndSize(text, 2 * n);
}

/* A new TlvError instance for a fault, worded exactly as _pytlv.py words it. */
static PyObject *
make_fault(ctlv_state *st, const unsigned char *buf, const header *h)
{
    char reason[160];
    int tag_known = 1;
    PyObject *args[3] = {NULL, NULL, NULL};
    PyObject *error = NULL;

    switch (h->fault) {
    case FAULT_TAG_TRUNCATED: {
        /* "tag is truncated (have 9F)": the bytes read so far, at most 4. */
        static const char digits[] = "0123456789ABCDEF";
        char have[9];
        Py_ssize_t n = h->tag_end - h->start, k;
        if (n > 4) {
            n = 4;
        }
        for (k = 0; k < n; k++) {
            have[2 * k] = digits[buf[h->start + k] >> 4];
            have[2 * k + 1] = digits[buf[h->start + k] & 0x0F];
        }
        have[2 * n] = '\0';
        snprintf(reason, sizeof reason, "tag is truncated (have %s)", have);
        tag_known = 0;
        break;
    }
    case FAULT_TAG_TOO_LONG:
        snprintf(reason, sizeof reason, "tag is longer than 4 bytes");
        tag_known = 0;
        break;
    case FAULT_LENGTH_MISSING:
        snprintf(reason, sizeof reason, "length is missing");
        break;
    case FAULT_LENGTH_TRUNCATED:
        snprintf(reason, sizeof reason, "length field is truncated");
        break;
    case FAULT_LENGTH_INDEFINITE:
        snprintf(reason, sizeof reason, "indefinite length (80) is not allowed");
        break;
    case FAULT_LENGTH_FIELD_TOO_LONG:
        snprintf(reason, sizeof reason, "length field of %u bytes is longer than 4",
                 h->length_byte & 0x7Fu);
        break;
    case FAULT_PAST_END:
        snprintf(reason, sizeof reason,
                 "length %llu runs past the end of the data (%lld bytes left)", h->length,
                 (long long)(h->vend - h->vstart));
        break;
    case FAULT_TOO_DEEP:
        snprintf(reason, sizeof reason,
                 "nesting is deeper than " CTLV_XSTR(CTLV_MAX_DEPTH) " levels");
        break;
    }
    args[0] = PyUnicode_FromString(reason);
    if (args[0] == NULL) {
        goto done;
    }
    args[1] = PyLong_FromSsize_t(h->start);
    if (args[1] == NULL) {
        goto done;
    }
    if (tag_known) {
        args[2] = hex_upper(buf + h->start, h->tag_end - h->start);
        if (args[2] == NULL) {
            goto done;
        }
    }
    else {
        args[2] = Py_NewRef(Py_None);
    }
    error = PyObject_Vectorcall(st->tlv_error, args, 1, st->error_kwnames);
done:
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    return error;
}

/* ---------------------------------------------------------------------------------------
 * Arguments and input.
 */

/* A minimal keyword-aware argument parser for METH_FASTCALL | METH_KEYWORDS, mirroring the
 * Python signatures: `npos` positional-or-keyword names, then keyword-only ones.
 * `values` receives borrowed references (NULL when not given). */
static int
parse_arguments(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                PyObject *const *names, Py_ssize_t npos, Py_ssize_t nnames, Py_ssize_t nrequired,
                PyObject **values)
{
    Py_ssize_t k, j, nkw;

    for (k = 0; k < nnames; k++) {
        values[k] = NULL;
    }
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional argument%s but %zd were given",
                     fname, npos, npos == 1 ? "" : "s", nargs);
        return -1;
    }
    for (k = 0; k < nargs; k++) {
        values[k] = args[k];
    }
    nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (j = 0; j < nkw; j++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, j);
        for (k = 0; k < nnames; k++) {
            if (key == names[k]) {
                break;
            }
        }
        if (k == nnames) {
            for (k = 0; k < nnames; k++) {
                int same = PyUnicode_Compare(key, names[k]);
                if (same == -1 && PyErr_Occurred()) {
                    return -1;
                }
                if (same == 0) {
                    break;
                }
            }
        }
        if (k == nnames) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", fname,
                         key);
            return -1;
        }
        if (values[k] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%S'", fname,
                         names[k]);
            return -1;
        }
        values[k] = args[nargs + j];
    }
    for (k = 0; k < nrequired; k++) {
        if (values[k] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%S' (pos %zd)", fname,
                         names[k], k + 1);
            return -1;
        }
    }
    return 0;
}

/* bytes(data) as the Python path takes it, or LocalProtocolError for other types. */
static PyObject *
snapshot(ctlv_state *st, PyObject *data)
{
    if (PyBytes_CheckExact(data)) {
        return Py_NewRef(data);
    }
    if (PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data)) {
        PyObject *raw = PyObject_CallOneArg((PyObject *)&PyBytes_Type, data);
        if (raw != NULL && !PyBytes_Check(raw)) {
            /* bytes() guarantees this; checked because we read raw's buffer below. */
            Py_DECREF(raw);
            PyErr_SetString(PyExc_TypeError, "bytes() returned a non-bytes object");
            return NULL;
        }
        return raw;
    }
    PyObject *name = PyType_GetName(Py_TYPE(data));
    if (name != NULL) {
        PyErr_Format(st->local_error, "decode() needs bytes, not %U", name);
        Py_DECREF(name);
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * decode()
 */

/* A new, empty TlvList with room for the objects in buf[pos..end): growing a list one
 * append at a time reallocates it log(n) times, which costs more than this header-only
 * pass over the siblings. The count stops at the first fault; appends past it (none are
 * made) would still work, since PyList_Append grows the list as usual. */
static PyObject *
new_list(ctlv_state *st, const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end)
{
    PyObject *list = st->tlvlist_type->tp_new(st->tlvlist_type, st->empty_tuple, NULL);
#ifndef Py_GIL_DISABLED
    /* (Free-threaded builds keep list items in a private layout: no presizing there.) */
    Py_ssize_t count = 0;
    header h;

    if (list == NULL) {
        return NULL;
    }
    while (pos < end) {
        if (buf[pos] == 0x00 || buf[pos] == 0xFF) {
            pos++;
            continue;
        }
        if (read_header(buf, pos, end, &h) < 0) {
            break;
        }
        count++;
        pos = h.vend;
    }
    if (count > 0) {
        /* The list is fresh (ob_item NULL, allocated 0) and not yet visible to anyone. */
        PyListObject *items = (PyListObject *)list;
        items->ob_item = PyMem_New(PyObject *, (size_t)count);
        if (items->ob_item == NULL) {
            Py_DECREF(list);
            return PyErr_NoMemory();
        }
        items->allocated = count;
    }
#else
    (void)buf;
    (void)pos;
    (void)end;
#endif
    return list;
}

static inline PyObject *
tag_object(ctlv_state *st, const unsigned char *p, Py_ssize_t n)
{
    if (n == 2 && (p[0] & 0x1F) == 0x1F && p[1] < 0x80) {
        return Py_NewRef(st->tag2_cache[((p[0] >> 5) << 7) | p[1]]);
    }
    /* One-byte bytes objects are CPython's own shared singletons. */
    return PyBytes_FromStringAndSize((const char *)p, n);
}

/* Append a new Tlv to `parent`; `children` is a borrowed TlvList or NULL for primitives. */
static int
append_node(ctlv_state *st, PyObject *parent, const unsigned char *buf, const header *h,
            Py_ssize_t pad_start, PyObject *children)
{
    PyObject *fields[SLOT_COUNT];
    PyObject *node;
    int k, status;

    fields[SLOT_TAG] = tag_object(st, buf + h->start, h->tag_end - h->start);
    fields[SLOT_VALUE] =
        PyBytes_FromStringAndSize((const char *)buf + h->vstart, h->vend - h->vstart);
    fields[SLOT_CHILDREN] = Py_NewRef(children != NULL ? children : Py_None);
    fields[SLOT_OFFSET] = PyLong_FromSsize_t(h->start);
    fields[SLOT_FORM] = PyLong_FromLong(h->form);
    fields[SLOT_PADDING] =
        pad_start == h->start
            ? Py_NewRef(st->empty_bytes)
            : PyBytes_FromStringAndSize((const char *)buf + pad_start, h->start - pad_start);
    for (k = 0; k < SLOT_COUNT; k++) {
        if (fields[k] == NULL) {
            goto fail;
        }
    }
    /* Not tp_alloc: its memset and generic checks cost more than filling the object,
     * whose whole body is these six slots (checked at exec). Untracked until filled. */
    node = (PyObject *)PyObject_GC_New(PyObject, st->tlv_type);
    if (node == NULL) {
        goto fail;
    }
    for (k = 0; k < SLOT_COUNT; k++) {
        *(PyObject **)((char *)node + st->slot_offsets[k]) = fields[k];
    }
    PyObject_GC_Track(node);
    status = PyList_Append(parent, node);
    Py_DECREF(node);
    return status;
fail:
    for (k = 0; k < SLOT_COUNT; k++) {
        Py_XDECREF(fields[k]);
    }
    return -1;
}

static int
set_trailing(ctlv_state *st, PyObject *list, const unsigned char *buf, Py_ssize_t from,
             Py_ssize_t end)
{
    PyObject *trailing = PyBytes_FromStringAndSize((const char *)buf + from, end - from);
    int status;
    if (trailing == NULL) {
        return -1;
    }
    status = PyObject_SetAttr(list, st->str_trailing, trailing);
    Py_DECREF(trailing);
    return status;
}

typedef struct {
    PyObject *list; /* owned */
    Py_ssize_t end;
} frame;

static PyObject *
decode_buffer(ctlv_state *st, const unsigned char *buf, Py_ssize_t size, PyObject *strict)
{
    frame stack[CTLV_MAX_DEPTH];
    int depth = 0;
    PyObject *root, *out;
    Py_ssize_t pos = 0, pad_start = 0, end = size;
    header h;

    root = new_list(st, buf, 0, size);
    if (root == NULL) {
        return NULL;
    }
    out = Py_NewRef(root); /* `out` is always an owned reference */
    for (;;) {
        unsigned char first;
        if (pos >= end) {
            if (pad_start < end && set_trailing(st, out, buf, pad_start, end) < 0) {
                goto fail;
            }
            if (depth == 0) {
                break;
            }
            /* A constructed value is done: the parent list resumes right after it. */
            pos = pad_start = end;
            Py_DECREF(out);
            depth--;
            out = stack[depth].list;
            end = stack[depth].end;
            continue;
        }
        first = buf[pos];
        if (first == 0x00 || first == 0xFF) {
            pos++;
            continue;
        }
        if (read_header(buf, pos, end, &h) < 0) {
            goto fault;
        }
        if (first & 0x20) {
            PyObject *children;
            if (depth >= CTLV_MAX_DEPTH) {
                h.fault = FAULT_TOO_DEEP;
                goto fault;
            }
            children = new_list(st, buf, h.vstart, h.vend);
            if (children == NULL) {
                goto fail;
            }
            if (append_node(st, out, buf, &h, pad_start, children) < 0) {
                Py_DECREF(children);
                goto fail;
            }
            stack[depth].list = out;
            stack[depth].end = end;
            depth++;
            out = children;
            end = h.vend;
            pos = pad_start = h.vstart;
        }
        else {
            if (append_node(st, out, buf, &h, pad_start, NULL) < 0) {
                goto fail;
            }
            pos = pad_start = h.vend;
        }
    }
    Py_DECREF(out); /* out is root again */
    return root;

fault: {
    PyObject *error = make_fault(st, buf, &h);
    int raise;
    if (error == NULL) {
        goto fail;
    }
    raise = strict == NULL ? 1 : PyObject_IsTrue(strict);
    if (raise < 0) {
        Py_DECREF(error);
        goto fail;
    }
    if (raise) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
        goto fail;
    }
    /* strict=False: the nodes decoded so far, with the error that stopped decoding. */
    if (PyObject_SetAttr(root, st->str_error, error) < 0) {
        Py_DECREF(error);
        goto fail;
    }
    Py_DECREF(error);
    Py_DECREF(out);
    while (depth > 0) {
        Py_DECREF(stack[--depth].list);
    }
    return root;
}

fail:
    Py_DECREF(out);
    while (depth > 0) {
        Py_DECREF(stack[--depth].list);
    }
    Py_DECREF(root);
    return NULL;
}

PyDoc_STRVAR(decode_doc,
             "decode(data, *, strict=True)\n--\n\n"
             "Decode BER-TLV data into a TlvList of Tlv nodes (C accelerator of\n"
             "contactless.tlv._pytlv.decode; same results and errors).");

static PyObject *
ctlv_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ctlv_state *st = get_state(module);
    PyObject *values[2];
    PyObject *names[2] = {st->str_data, st->str_strict};
    PyObject *raw, *result;

    if (kwnames == NULL && nargs == 1) {
        values[0] = args[0];
        values[1] = NULL;
    }
    else if (parse_arguments("decode", args, nargs, kwnames, names, 1, 2, 1, values) < 0) {
        return NULL;
    }
    raw = snapshot(st, values[0]);
    if (raw == NULL) {
        return NULL;
    }
    result = decode_buffer(st, (const unsigned char *)PyBytes_AS_STRING(raw),
                           PyBytes_GET_SIZE(raw), values[1]);
    Py_DECREF(raw);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * find_value()
 */

static int
well_formed_tag(const unsigned char *raw, Py_ssize_t n)
{
    Py_ssize_t k;
    if (n < 1 || n > 4 || raw[0] == 0x00 || raw[0] == 0xFF) {
        return 0;
    }
    if ((raw[0] & 0x1F) != 0x1F) {
        return n == 1;
    }
    if (n == 1) {
        return 0;
    }
    for (k = 1; k < n - 1; k++) {
        if (!(raw[k] & 0x80)) {
            return 0;
        }
    }
    return !(raw[n - 1] & 0x80);
}

static int
hex_digit(Py_UCS1 c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Common spellings of a valid tag (exact int, bytes, plain hex str) are read here; anything
 * else, and every invalid tag, goes to the Python parse_tag so that its errors are the
 * errors. Returns the tag length (1-4) or -1 with an exception set. */
static Py_ssize_t
read_tag_argument(ctlv_state *st, PyObject *tag, unsigned char raw[4])
{
    Py_ssize_t n = 0, k;
    PyObject *parsed;

    if (PyLong_CheckExact(tag)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(tag, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (!overflow && number > 0 && number <= 0xFFFFFFFFLL) {
            unsigned long long v = (unsigned long long)number;
            while (v >> (8 * n)) {
                n++;
            }
            for (k = 0; k < n; k++) {
                raw[k] = (unsigned char)(v >> (8 * (n - 1 - k)));
            }
        }
    }
    else if (PyBytes_CheckExact(tag)) {
        Py_ssize_t size = PyBytes_GET_SIZE(tag);
        if (size >= 1 && size <= 4) {
            memcpy(raw, PyBytes_AS_STRING(tag), (size_t)size);
            n = size;
        }
    }
    else if (PyUnicode_CheckExact(tag) && PyUnicode_IS_ASCII(tag)) {
        Py_ssize_t size = PyUnicode_GET_LENGTH(tag);
        const Py_UCS1 *text = PyUnicode_1BYTE_DATA(tag);
        if (size >= 2 && size <= 8 && size % 2 == 0) {
            for (k = 0; k < size / 2; k++) {
                int hi = hex_digit(text[2 * k]), lo = hex_digit(text[2 * k + 1]);
                if (hi < 0 || lo < 0) {
                    break;
                }
                raw[k] = (unsigned char)(hi << 4 | lo);
            }
            if (k == size / 2) {
                n = k;
            }
        }
    }
    if (n > 0 && well_formed_tag(raw, n)) {
        return n;
    }
    parsed = PyObject_CallOneArg(st->parse_tag, tag);
    if (parsed == NULL) {
        return -1;
    }
    if (!PyBytes_Check(parsed) || PyBytes_GET_SIZE(parsed) < 1 || PyBytes_GET_SIZE(parsed) > 4) {
        Py_DECREF(parsed);
        PyErr_SetString(PyExc_SystemError, "parse_tag() returned an unexpected value");
        return -1;
    }
    n = PyBytes_GET_SIZE(parsed);
    memcpy(raw, PyBytes_AS_STRING(parsed), (size_t)n);
    Py_DECREF(parsed);
    return n;
}

/* Validate the whole buffer as decode() does, remembering the first object (pre-order)
 * whose tag is `wanted`. Returns its value, None, or NULL with the TlvError set. */
static PyObject *
find_in_buffer(ctlv_state *st, const unsigned char *buf, Py_ssize_t size,
               const unsigned char *wanted, Py_ssize_t wanted_size)
{
    Py_ssize_t ends[CTLV_MAX_DEPTH];
    int depth = 0;
    Py_ssize_t pos = 0, end = size, found_start = -1, found_end = -1;
    header h;

    for (;;) {
        unsigned char first;
        if (pos >= end) {
            if (depth == 0) {
                break;
            }
            pos = end;
            end = ends[--depth];
            continue;
        }
        first = buf[pos];
        if (first == 0x00 || first == 0xFF) {
            pos++;
            continue;
        }
        if (read_header(buf, pos, end, &h) < 0) {
            goto fault;
        }
        if (found_start < 0 && h.tag_end - h.start == wanted_size &&
            memcmp(buf + h.start, wanted, (size_t)wanted_size) == 0) {
            found_start = h.vstart;
            found_end = h.vend;
        }
        if (first & 0x20) {
            if (depth >= CTLV_MAX_DEPTH) {
                h.fault = FAULT_TOO_DEEP;
                goto fault;
            }
            ends[depth++] = end;
            end = h.vend;
            pos = h.vstart;
        }
        else {
            pos = h.vend;
        }
    }
    if (found_start < 0) {
        Py_RETURN_NONE;
    }
    return PyBytes_FromStringAndSize((const char *)buf + found_start, found_end - found_start);

fault: {
    PyObject *error = make_fault(st, buf, &h);
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return NULL;
}
}

PyDoc_STRVAR(find_value_doc,
             "find_value(data, tag)\n--\n\n"
             "The value of the first object with `tag` (depth first) in raw TLV data, or\n"
             "None; the whole buffer is validated as decode() does, without building a tree.");

static PyObject *
ctlv_find_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ctlv_state *st = get_state(module);
    PyObject *values[2];
    PyObject *names[2] = {st->str_data, st->str_tag};
    PyObject *raw, *result;
    unsigned char wanted[4];
    Py_ssize_t wanted_size;

    if (kwnames == NULL && nargs == 2) {
        values[0] = args[0];
        values[1] = args[1];
    }
    else if (parse_arguments("find_value", args, nargs, kwnames, names, 2, 2, 2, values) < 0) {
        return NULL;
    }
    /* Same order as the Python path: the tag is checked before the data. */
    wanted_size = read_tag_argument(st, values[1], wanted);
    if (wanted_size < 0) {
        return NULL;
    }
    raw = snapshot(st, values[0]);
    if (raw == NULL) {
        return NULL;
    }
    result = find_in_buffer(st, (const unsigned char *)PyBytes_AS_STRING(raw),
                            PyBytes_GET_SIZE(raw), wanted, wanted_size);
    Py_DECREF(raw);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Module: multi-phase init, per-module state.
 */

static PyObject *
import_attribute(const char *module_name, const char *name)
{
    PyObject *module = PyImport_ImportModule(module_name);
    PyObject *value;
    if (module == NULL) {
        return NULL;
    }
    value = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    return value;
}

/* Find where node.Tlv keeps each slot, refusing any layout we do not know how to fill. */
static int
load_slot_offsets(ctlv_state *st)
{
    PyTypeObject *type = st->tlv_type;
    int k;

    /* The object must be exactly a GC header plus the six slots: no __dict__, no
     * __weakref__, no custom __new__, fixed size. */
    if (type->tp_new != PyBaseObject_Type.tp_new || type->tp_itemsize != 0 ||
        type->tp_basicsize != (Py_ssize_t)(sizeof(PyObject) + SLOT_COUNT * sizeof(PyObject *)) ||
        type->tp_dictoffset != 0 || type->tp_weaklistoffset != 0 ||
#ifdef Py_TPFLAGS_MANAGED_DICT
        (type->tp_flags & Py_TPFLAGS_MANAGED_DICT) ||
#endif
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
        (type->tp_flags & Py_TPFLAGS_MANAGED_WEAKREF) ||
#endif
        !(type->tp_flags & Py_TPFLAGS_HAVE_GC)) {
        PyErr_SetString(PyExc_ImportError,
                        "contactless.tlv.node.Tlv changed shape (custom __new__, __dict__, "
                        "__weakref__ or other fields than its six slots); _ctlv.c must be "
                        "updated");
        return -1;
    }
    for (k = 0; k < SLOT_COUNT; k++) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)type, slot_names[k]);
        PyMemberDef *member;
        if (descr == NULL) {
            return -1;
        }
        if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            Py_DECREF(descr);
            PyErr_Format(PyExc_ImportError,
                         "contactless.tlv.node.Tlv.%s is not a __slots__ member; _ctlv.c "
                         "must be updated",
                         slot_names[k]);
            return -1;
        }
        member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != CTLV_T_OBJECT_EX || (member->flags & CTLV_READONLY) ||
            member->offset < (Py_ssize_t)sizeof(PyObject) ||
            member->offset + (Py_ssize_t)sizeof(PyObject *) > type->tp_basicsize) {
            Py_DECREF(descr);
            PyErr_Format(PyExc_ImportError,
                         "contactless.tlv.node.Tlv.%s has an unexpected layout", slot_names[k]);
            return -1;
        }
        st->slot_offsets[k] = member->offset;
        Py_DECREF(descr);
    }
    return 0;
}

static int
ctlv_exec(PyObject *module)
{
    ctlv_state *st = get_state(module);
    PyObject *max_depth;
    long depth;
    size_t k;

    st->tlv_type = (PyTypeObject *)import_attribute("contactless.tlv.node", "Tlv");
    if (st->tlv_type == NULL) {
        return -1;
    }
    st->tlvlist_type = (PyTypeObject *)import_attribute("contactless.tlv.node", "TlvList");
    if (st->tlvlist_type == NULL) {
        return -1;
    }
    if (!PyType_Check(st->tlv_type) || !PyType_Check(st->tlvlist_type) ||
        !PyType_IsSubtype(st->tlvlist_type, &PyList_Type)) {
        PyErr_SetString(PyExc_ImportError,
                        "contactless.tlv.node.Tlv/TlvList are not the expected classes");
        return -1;
    }
    if (load_slot_offsets(st) < 0) {
        return -1;
    }
    st->tlv_error = import_attribute("contactless.errors", "TlvError");
    if (st->tlv_error == NULL) {
        return -1;
    }
    st->local_error = import_attribute("contactless.errors", "LocalProtocolError");
    if (st->local_error == NULL) {
        return -1;
    }
    st->parse_tag = import_attribute("contactless.tlv._pytlv", "parse_tag");
    if (st->parse_tag == NULL) {
        return -1;
    }
    max_depth = import_attribute("contactless.tlv._pytlv", "MAX_DEPTH");
    if (max_depth == NULL) {
        return -1;
    }
    depth = PyLong_AsLong(max_depth);
    Py_DECREF(max_depth);
    if (depth == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (depth != CTLV_MAX_DEPTH) {
        PyErr_Format(PyExc_ImportError,
                     "_pytlv.MAX_DEPTH is %ld but _ctlv was built with %d; rebuild it", depth,
                     CTLV_MAX_DEPTH);
        return -1;
    }
#define INTERN(field, text)                                \
    do {                                                   \
        st->field = PyUnicode_InternFromString(text);      \
        if (st->field == NULL) {                           \
            return -1;                                     \
        }                                                  \
    } while (0)
    INTERN(str_trailing, "trailing");
    INTERN(str_error, "error");
    INTERN(str_data, "data");
    INTERN(str_strict, "strict");
    INTERN(str_tag, "tag");
#undef INTERN
    st->error_kwnames = Py_BuildValue("(ss)", "offset", "tag");
    if (st->error_kwnames == NULL) {
        return -1;
    }
    st->empty_tuple = PyTuple_New(0);
    if (st->empty_tuple == NULL) {
        return -1;
    }
    st->empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    if (st->empty_bytes == NULL) {
        return -1;
    }
    for (k = 0; k < sizeof st->tag2_cache / sizeof st->tag2_cache[0]; k++) {
        unsigned char tag[2] = {(unsigned char)((k >> 7) << 5 | 0x1F), (unsigned char)(k & 0x7F)};
        st->tag2_cache[k] = PyBytes_FromStringAndSize((const char *)tag, 2);
        if (st->tag2_cache[k] == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
ctlv_traverse(PyObject *module, visitproc visit, void *arg)
{
    ctlv_state *st = get_state(module);
    size_t k;
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->tlv_type);
    Py_VISIT(st->tlvlist_type);
    Py_VISIT(st->tlv_error);
    Py_VISIT(st->local_error);
    Py_VISIT(st->parse_tag);
    Py_VISIT(st->error_kwnames);
    Py_VISIT(st->empty_tuple);
    Py_VISIT(st->empty_bytes);
    for (k = 0; k < sizeof st->tag2_cache / sizeof st->tag2_cache[0]; k++) {
        Py_VISIT(st->tag2_cache[k]);
    }
    return 0;
}

static int
ctlv_clear(PyObject *module)
{
    ctlv_state *st = get_state(module);
    size_t k;
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->tlv_type);
    Py_CLEAR(st->tlvlist_type);
    Py_CLEAR(st->tlv_error);
    Py_CLEAR(st->local_error);
    Py_CLEAR(st->parse_tag);
    Py_CLEAR(st->str_trailing);
    Py_CLEAR(st->str_error);
    Py_CLEAR(st->str_data);
    Py_CLEAR(st->str_strict);
    Py_CLEAR(st->str_tag);
    Py_CLEAR(st->error_kwnames);
    Py_CLEAR(st->empty_tuple);
    Py_CLEAR(st->empty_bytes);
    for (k = 0; k < sizeof st->tag2_cache / sizeof st->tag2_cache[0]; k++) {
        Py_CLEAR(st->tag2_cache[k]);
    }
    return 0;
}

static void
ctlv_free(void *module)
{
    (void)ctlv_clear((PyObject *)module);
}

static PyMethodDef ctlv_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))ctlv_decode, METH_FASTCALL | METH_KEYWORDS,
     decode_doc},
    {"find_value", (PyCFunction)(void (*)(void))ctlv_find_value, METH_FASTCALL | METH_KEYWORDS,
     find_value_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot ctlv_slots[] = {
    {Py_mod_exec, (void *)ctlv_exec},
#ifdef Py_mod_multiple_interpreters
    /* All state is per module: each interpreter imports its own node/error classes. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* Only immutable snapshots are read and only new objects are written. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef ctlv_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "contactless.tlv._ctlv",
    .m_doc = "C accelerator for contactless.tlv decode() and find_value().",
    .m_size = sizeof(ctlv_state),
    .m_methods = ctlv_methods,
    .m_slots = ctlv_slots,
    .m_traverse = ctlv_traverse,
    .m_clear = ctlv_clear,
    .m_free = ctlv_free,
};

PyMODINIT_FUNC
PyInit__ctlv(void)
{
    return PyModuleDef_Init(&ctlv_module);
}
