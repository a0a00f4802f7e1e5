/* The C accelerator for the hot TLV functions, decode(), find_value() and
 * find_all_values(), and the C implementation of the node types decode() returns.
 *
 * _pytlv.py is the specification; this file must agree with it on every input, results
 * and errors alike (tests/tlv/test_differential.py and tools/fuzz_tlv.py check that).
 * Everything else (encode, lookups, tag parsing errors) stays in Python.
 *
 * Design notes:
 * - Input is snapshotted exactly as the Python path does (bytes(data) unless it already is
 *   bytes), so a bytearray mutated by a finalizer during decoding cannot move under us.
 * - All three functions walk the buffer iteratively with a fixed-size explicit stack of
 *   CTLV_MAX_DEPTH frames; depth is checked before every push.
 * - Node types. Most of the cost of decoding is CPython creating and freeing the result, so
 *   this module defines Tlv and TlvList as C types (heap types, one pair per module
 *   instance, so the module supports several interpreters): a Tlv keeps its offset as a C
 *   integer (no int object per node), and both types recycle their memory through small
 *   free lists kept in the module state of the type's module. contactless.tlv.node uses
 *   these types as node.Tlv / node.TlvList unless CONTACTLESS_PUREPYTHON=1; their Python
 *   behaviour is that of the reference classes written out in node.py (tests/tlv/
 *   test_node.py compares the two).
 * - What decode() builds is always node.Tlv / node.TlvList, found at exec: while node.py is
 *   importing this module (it has no Tlv yet), our own types; otherwise node's classes,
 *   which are either our types (from this or another instance of this module: filled
 *   directly) or, under CONTACTLESS_PUREPYTHON=1, the pure-Python classes, filled slot by
 *   slot at the offsets their member descriptors publish (exec refuses a layout it does not
 *   know, and the package then falls back to, or with CONTACTLESS_REQUIRE_C=1 fails loudly
 *   instead of, the pure-Python path).
 * - Lazy truth: `strict` is only evaluated when an error happens, as in Python.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030C0000
#define CTLV_T_OBJECT_EX Py_T_OBJECT_EX
#define CTLV_T_PYSSIZET Py_T_PYSSIZET
#define CTLV_READONLY Py_READONLY
#else
#include <structmember.h>
#define CTLV_T_OBJECT_EX T_OBJECT_EX
#define CTLV_T_PYSSIZET T_PYSSIZET
#define CTLV_READONLY READONLY
#endif

/* Must equal contactless.tlv._pytlv.MAX_DEPTH (exported as _ctlv.MAX_DEPTH; checked at exec
 * when _pytlv is loaded, and by tests/tlv/test_c_extension.py). */
#define CTLV_MAX_DEPTH 32
#define CTLV_STR(x) #x
#ifdef Py_ALWAYS_INLINE
#define CTLV_INLINE inline Py_ALWAYS_INLINE
#else
#define CTLV_INLINE inline
#endif
#define CTLV_XSTR(x) CTLV_STR(x)

/* Free lists: freed nodes and lists keep their memory here for the next decode, instead of
 * going back to the allocator (and through the GC's allocation count) each time. Bounded,
 * so a huge tree does not pin its memory. None in free-threaded builds, where the module
 * state is shared by threads running at once. */
#ifdef Py_GIL_DISABLED
#define CTLV_NODE_FREELIST 0
#define CTLV_LIST_FREELIST 0
#else
#define CTLV_NODE_FREELIST 2048
#define CTLV_LIST_FREELIST 256
#endif
/* A list on the free list keeps an item array of up to this many entries. */
#define CTLV_KEPT_ITEMS 16

/* Order of the slots of the pure-Python node.Tlv that the legacy builder fills. */
enum { SLOT_TAG, SLOT_VALUE, SLOT_CHILDREN, SLOT_OFFSET, SLOT_FORM, SLOT_PADDING, SLOT_COUNT };
static const char *const slot_names[SLOT_COUNT] = {
    "tag_bytes", "value", "children", "offset", "length_form", "padding",
};

typedef struct ctlv_state ctlv_state;

struct ctlv_state {
    /* This module's own node types (exported as _ctlv.Tlv / _ctlv.TlvList). */
    PyTypeObject *node_type;
    PyTypeObject *list_type;
    /* What decode() builds: node.Tlv / node.TlvList (see the design notes). */
    PyTypeObject *out_node_type;
    PyTypeObject *out_list_type;
    /* Whether the output types are C types of this extension (this module's own, or
     * another instance's: the free lists used are those of the module that owns them). */
    int out_is_ours;
    /* Where the pure-Python node.Tlv keeps each slot (when out_is_ours is 0). */
    Py_ssize_t slot_offsets[SLOT_COUNT];

    PyObject *tlv_error;   /* contactless.errors.TlvError */
    PyObject *local_error; /* contactless.errors.LocalProtocolError */
    PyObject *parse_tag;   /* contactless.tlv._pytlv.parse_tag, imported on first need */
    PyObject *str_trailing;
    PyObject *str_error;
    PyObject *str_data;
    PyObject *str_strict;
    PyObject *str_tag;
    PyObject *error_kwnames; /* ("offset", "tag") for TlvError(reason, offset=, tag=) */
    PyObject *empty_tuple;
    PyObject *empty_bytes;
    PyObject *forms[6]; /* the ints 1-5, for length_form (index 0 unused) */
    /* Tags as shared, immutable bytes objects: one-byte ones (CPython's own singletons),
     * and two-byte ones (first byte xx1F, second byte < 0x80), which are most EMV tags.
     * Filled at exec, so decoding only reads them. */
    PyObject *tag1_cache[256];
    PyObject *tag2_cache[8 * 128];

    /* Free lists of the node types this module owns, linked through the first field. */
    PyObject *free_nodes;
    int free_node_count;
    PyObject *free_lists;
    int free_list_count;
    int closed; /* set by m_clear: objects freed later go straight to the allocator */
};

static struct PyModuleDef ctlv_module;

static inline ctlv_state *
get_state(PyObject *module)
{
    return (ctlv_state *)PyModule_GetState(module);
}

/* ---------------------------------------------------------------------------------------
 * Reading one object header: the part shared by decode() and the find functions.
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
 * The node types: Tlv and TlvList in C.
 *
 * Their Python behaviour is that of the reference classes in node.py: the same constructor,
 * attributes (assignable, deletable and holding any object, as __slots__ members),
 * properties, __eq__ (field by field, `and`-chained), no hash, repr and pickling. A
 * TlvList is a list with a __dict__ for `trailing` and `error` (class-level defaults b""
 * and None) and weak reference support.
 *
 * A Tlv keeps its offset as a C integer (no int object per node; the getter makes one)
 * unless the caller stores something else there; its other fields are plain __slots__-like
 * members, which CPython's specializing interpreter reads and writes as fast as those of
 * the reference class.
 */

/* Field numbers, in the order of Tlv.__init__ and of the comparison in __eq__. */
enum { F_TAG, F_VALUE, F_CHILDREN, F_OFFSET, F_FORM, F_PADDING, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "tag_bytes", "value", "children", "offset", "length_form", "padding",
};

typedef enum { OFFSET_UNSET = 0, OFFSET_INT, OFFSET_OBJECT } offset_kind;

typedef struct {
    PyObject_HEAD
    /* Object fields by field number; slots[F_OFFSET] is the offset when it is not held as a
     * C integer (OFFSET_OBJECT). slots[F_TAG] links the free list while the node is free. */
    PyObject *slots[F_COUNT];
    Py_ssize_t offset; /* the offset when OFFSET_INT */
    int offset_kind;
} TlvNode;

typedef struct {
    PyListObject list;
    PyObject *dict; /* first own field: links the free list while the list is free */
    PyObject *weakreflist;
} TlvListObject;

static void node_dealloc(PyObject *self);
static void list_dealloc(PyObject *self);

/* Types of this extension (from any instance of the module) are known by their deallocator;
 * a Python subclass of them has another one (and is never recycled). */
static inline int
is_our_node_type(PyTypeObject *type)
{
    return type->tp_dealloc == node_dealloc;
}

static inline int
is_our_list_type(PyTypeObject *type)
{
    return type->tp_dealloc == list_dealloc;
}

/* The state of the module that created `type`, which must be one of ours exactly (a heap
 * type made with a module); NULL, without an exception, once the type has been cleared
 * (the GC does that while tearing an interpreter down: the objects still alive are then
 * freed without their free list). PyType_GetModuleState minus the checks and the
 * exception, since every node freed asks. */
static inline ctlv_state *
owner_state(PyTypeObject *type)
{
    PyObject *module = ((PyHeapTypeObject *)type)->ht_module;
    return module == NULL ? NULL : (ctlv_state *)PyModule_GetState(module);
}

static int
types_torn_down(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "contactless.tlv node types are being torn down (interpreter shutdown)");
    return -1;
}

/* Node fields are read and written under the object's critical section in free-threaded
 * builds (as CPython's own __slots__ members are); with a GIL these are plain blocks. */
#ifdef Py_GIL_DISABLED
#define CTLV_LOCK(op) Py_BEGIN_CRITICAL_SECTION(op)
#define CTLV_UNLOCK() Py_END_CRITICAL_SECTION()
#else
#define CTLV_LOCK(op) {
#define CTLV_UNLOCK() }
#endif

/* --- Tlv ------------------------------------------------------------------------------ */

/* A node of `type` (one of ours, exactly) with every field unset, not yet GC-tracked. */
static TlvNode *
node_new_untracked(ctlv_state *owner, PyTypeObject *type)
{
    TlvNode *node;
    int field;
#if CTLV_NODE_FREELIST > 0
    if (owner->free_nodes != NULL) {
        node = (TlvNode *)owner->free_nodes;
        owner->free_nodes = node->slots[F_TAG];
        owner->free_node_count--;
        node->slots[F_TAG] = NULL; /* the rest was cleared when it was freed */
        (void)PyObject_Init((PyObject *)node, type);
        return node;
    }
#else
    (void)owner;
#endif
    node = PyObject_GC_New(TlvNode, type);
    if (node == NULL) {
        return NULL;
    }
    for (field = 0; field < F_COUNT; field++) {
        node->slots[field] = NULL;
    }
    node->offset = 0;
    node->offset_kind = OFFSET_UNSET;
    return node;
}

/* tp_alloc, used by object.__new__(Tlv) (the pure-Python decoder, pickling) and Tlv(). */
static PyObject *
node_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
    if (is_our_node_type(type)) {
        ctlv_state *owner = owner_state(type);
        TlvNode *node;
        if (owner == NULL) {
            (void)types_torn_down();
            return NULL;
        }
        node = node_new_untracked(owner, type);
        if (node != NULL) {
            PyObject_GC_Track(node);
        }
        return (PyObject *)node;
    }
    /* A Python subclass: larger (it has a __dict__), zero-filled and tracked as usual. */
    return PyType_GenericAlloc(type, nitems);
}

static int
node_clear(PyObject *self)
{
    TlvNode *node = (TlvNode *)self;
    int field;
    node->offset_kind = OFFSET_UNSET;
    for (field = 0; field < F_COUNT; field++) {
        Py_CLEAR(node->slots[field]);
    }
    return 0;
}

static int
node_traverse(PyObject *self, visitproc visit, void *arg)
{
    TlvNode *node = (TlvNode *)self;
    int field;
    Py_VISIT(Py_TYPE(self));
    for (field = 0; field < F_COUNT; field++) {
        Py_VISIT(node->slots[field]);
    }
    return 0;
}

static inline int
is_exactly(PyObject *field, PyTypeObject *type)
{
    return field != NULL && Py_IS_TYPE(field, type); /* fields may be unset (NULL) */
}

/* Whether freeing the node may free containers (and so recurse). The first test passes
 * for every primitive node decode makes, and costs less than the general one. */
static inline int
holds_containers(TlvNode *node)
{
    int field;
    if (node->slots[F_CHILDREN] == Py_None && node->slots[F_OFFSET] == NULL &&
        is_exactly(node->slots[F_TAG], &PyBytes_Type) &&
        is_exactly(node->slots[F_VALUE], &PyBytes_Type) &&
        is_exactly(node->slots[F_PADDING], &PyBytes_Type) &&
        is_exactly(node->slots[F_FORM], &PyLong_Type)) {
        return 0;
    }
    for (field = 0; field < F_COUNT; field++) {
        if (node->slots[field] != NULL && PyType_IS_GC(Py_TYPE(node->slots[field]))) {
            return 1;
        }
    }
    return 0;
}

static void
node_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    /* The trashcan bounds the C recursion when a long chain of containers is freed. A node
     * holding only atomic objects (every primitive one decode makes) cannot recurse: it
     * skips the trashcan's cost where the API allows it (3.13 made the check cheap). */
#ifdef Py_TRASHCAN_BEGIN_CONDITION
    Py_TRASHCAN_BEGIN_CONDITION(self, type->tp_dealloc == node_dealloc &&
                                          holds_containers((TlvNode *)self))
#else
    Py_TRASHCAN_BEGIN(self, node_dealloc)
#endif
    int recycled = 0;
    (void)node_clear(self);
#if CTLV_NODE_FREELIST > 0
    if (is_our_node_type(type)) {
        ctlv_state *owner = owner_state(type);
        if (owner != NULL && !owner->closed && owner->free_node_count < CTLV_NODE_FREELIST) {
            ((TlvNode *)self)->slots[F_TAG] = owner->free_nodes;
            owner->free_nodes = self;
            owner->free_node_count++;
            recycled = 1;
        }
    }
#endif
    if (!recycled) {
        type->tp_free(self);
    }
    Py_DECREF(type); /* instances of heap types own a reference to their type */
    Py_TRASHCAN_END
}

static int
node_set_offset(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    TlvNode *node = (TlvNode *)self;
    PyObject *old = NULL;
    long long number = 0;
    int as_int = 0, status = 0;

    if (value != NULL && PyLong_CheckExact(value)) {
        int overflow = 0;
        number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            return -1;
        }
        as_int = !overflow && number >= PY_SSIZE_T_MIN && number <= PY_SSIZE_T_MAX;
    }
    CTLV_LOCK(self);
    if (value == NULL && node->offset_kind == OFFSET_UNSET) {
        status = -1;
    }
    else {
        old = node->slots[F_OFFSET];
        node->slots[F_OFFSET] = NULL;
        if (value == NULL) {
            node->offset_kind = OFFSET_UNSET;
        }
        else if (as_int) {
            node->offset = (Py_ssize_t)number;
            node->offset_kind = OFFSET_INT;
        }
        else {
            node->slots[F_OFFSET] = Py_NewRef(value);
            node->offset_kind = OFFSET_OBJECT;
        }
    }
    CTLV_UNLOCK();
    Py_XDECREF(old);
    if (status < 0) {
        PyErr_SetString(PyExc_AttributeError, "offset"); /* as `del` of an unset slot */
    }
    return status;
}

/* The offset as Python sees it; NULL with AttributeError when unset. */
static PyObject *
node_get_offset(PyObject *self, void *Py_UNUSED(closure))
{
    TlvNode *node = (TlvNode *)self;
    PyObject *result = NULL;
    int kind;
    Py_ssize_t offset;

    CTLV_LOCK(self);
    kind = node->offset_kind;
    offset = node->offset;
    if (kind == OFFSET_OBJECT) {
        result = Py_NewRef(node->slots[F_OFFSET]);
    }
    CTLV_UNLOCK();
    if (kind == OFFSET_INT) {
        return PyLong_FromSsize_t(offset);
    }
    if (kind == OFFSET_UNSET) {
        PyErr_Format(PyExc_AttributeError, "'%.200s' object has no attribute 'offset'",
                     Py_TYPE(self)->tp_name);
    }
    return result;
}

/* A field's value as attribute access gives it: a new reference, or NULL with
 * AttributeError when it is unset. */
static PyObject *
node_field(PyObject *self, int field)
{
    PyObject *value;
    if (field == F_OFFSET) {
        return node_get_offset(self, NULL);
    }
    CTLV_LOCK(self);
    value = Py_XNewRef(((TlvNode *)self)->slots[field]);
    CTLV_UNLOCK();
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.200s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name, field_names[field]);
    }
    return value;
}

/* Assign a field (a new reference, stolen), as attribute assignment does. */
static int
node_store(PyObject *self, int field, PyObject *value)
{
    PyObject *old;
    int status;
    if (field == F_OFFSET) {
        status = node_set_offset(self, value, NULL);
        Py_DECREF(value);
        return status;
    }
    CTLV_LOCK(self);
    old = ((TlvNode *)self)->slots[field];
    ((TlvNode *)self)->slots[field] = value;
    CTLV_UNLOCK();
    Py_XDECREF(old);
    return 0;
}

PyDoc_STRVAR(node_doc,
             "Tlv(tag_bytes, value, children=None, offset=0, length_form=1, padding=b'')\n"
             "--\n\n"
             "One BER-TLV data object.\n\n"
             "Attributes:\n"
             "    tag_bytes: the tag as written, e.g. ``b\"\\\\x9f\\\\x38\"``.\n"
             "    value: the value bytes (for a constructed object: its encoded children).\n"
             "    children: a :class:`TlvList` for a constructed object, else ``None``.\n"
             "    offset: position of the tag's first byte in the buffer given to ``decode``.\n"
             "    length_form: how many bytes the length field took (1 for short form, 2 for\n"
             "        ``81xx``, up to 5 for ``84xxxxxxxx``); re-encoding writes the same form\n"
             "        when the value fits.\n"
             "    padding: ``00``/``FF`` bytes that stood just before this object.\n");

static int
node_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"tag_bytes", "value",       "children", "offset",
                               "length_form", "padding", NULL};
    PyObject *given[F_COUNT] = {NULL, NULL, NULL, NULL, NULL, NULL};
    int field;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OOOO:Tlv", keywords, &given[F_TAG],
                                     &given[F_VALUE], &given[F_CHILDREN], &given[F_OFFSET],
                                     &given[F_FORM], &given[F_PADDING])) {
        return -1;
    }
    for (field = 0; field < F_COUNT; field++) { /* defaults: None, 0, 1, b"" */
        PyObject *value = given[field] != NULL  ? Py_NewRef(given[field])
                          : field == F_CHILDREN ? Py_NewRef(Py_None)
                          : field == F_PADDING  ? PyBytes_FromStringAndSize(NULL, 0)
                                                : PyLong_FromLong(field == F_FORM);
        if (value == NULL || node_store(self, field, value) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
node_get_tag(PyObject *self, void *Py_UNUSED(closure))
{
    PyObject *tag = node_field(self, F_TAG), *result;
    if (tag == NULL) {
        return NULL;
    }
    if (PyBytes_CheckExact(tag) && PyBytes_GET_SIZE(tag) <= 8) {
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(tag);
        unsigned long long number = 0;
        Py_ssize_t k;
        for (k = 0; k < PyBytes_GET_SIZE(tag); k++) {
            number = number << 8 | p[k];
        }
        result = PyLong_FromUnsignedLongLong(number);
    }
    else { /* whatever was stored there: int.from_bytes decides, errors included */
        result = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "Os", tag, "big");
    }
    Py_DECREF(tag);
    return result;
}

static PyObject *
node_get_constructed(PyObject *self, void *Py_UNUSED(closure))
{
    PyObject *tag = node_field(self, F_TAG), *first, *bit;
    int truth;
    if (tag == NULL) {
        return NULL;
    }
    if (PyBytes_CheckExact(tag) && PyBytes_GET_SIZE(tag) >= 1) {
        truth = (PyBytes_AS_STRING(tag)[0] & 0x20) != 0;
        Py_DECREF(tag);
        return PyBool_FromLong(truth);
    }
    /* bool(self.tag_bytes[0] & 0x20), spelled out for anything else */
    first = PySequence_GetItem(tag, 0);
    Py_DECREF(tag);
    if (first == NULL) {
        return NULL;
    }
    bit = PyLong_FromLong(0x20);
    if (bit == NULL) {
        Py_DECREF(first);
        return NULL;
    }
    tag = PyNumber_And(first, bit);
    Py_DECREF(first);
    Py_DECREF(bit);
    if (tag == NULL) {
        return NULL;
    }
    truth = PyObject_IsTrue(tag);
    Py_DECREF(tag);
    return truth < 0 ? NULL : PyBool_FromLong(truth);
}

/* x.hex().upper() */
static PyObject *
hex_upper_of(PyObject *data)
{
    PyObject *hex, *upper;
    if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) <= 64) {
        static const char digits[] = "0123456789ABCDEF";
        char text[128];
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
        Py_ssize_t k, n = PyBytes_GET_SIZE(data);
        for (k = 0; k < n; k++) {
            text[2 * k] = digits[p[k] >> 4];
            text[2 * k + 1] = digits[p[k] & 0x0F];
        }
        return PyUnicode_FromStringAndSize(text, 2 * n);
    }
    hex = PyObject_CallMethod(data, "hex", NULL);
    if (hex == NULL) {
        return NULL;
    }
    upper = PyObject_CallMethod(hex, "upper", NULL);
    Py_DECREF(hex);
    return upper;
}

static PyObject *
node_get_tag_hex(PyObject *self, void *Py_UNUSED(closure))
{
    PyObject *tag = node_field(self, F_TAG), *result;
    if (tag == NULL) {
        return NULL;
    }
    result = hex_upper_of(tag);
    Py_DECREF(tag);
    return result;
}

static PyObject *
node_get_length(PyObject *self, void *Py_UNUSED(closure))
{
    PyObject *value = node_field(self, F_VALUE);
    Py_ssize_t size;
    if (value == NULL) {
        return NULL;
    }
    size = PyObject_Size(value);
    Py_DECREF(value);
    return size < 0 ? NULL : PyLong_FromSsize_t(size);
}

/* When both offsets are C integers: 1 equal, 0 different; -1 otherwise (compare objects). */
static int
offsets_equal(PyObject *self, PyObject *other)
{
    TlvNode *a = (TlvNode *)self, *b = (TlvNode *)other;
    int both;
    Py_ssize_t x, y;

    CTLV_LOCK(self);
    both = a->offset_kind == OFFSET_INT;
    x = a->offset;
    CTLV_UNLOCK();
    CTLV_LOCK(other);
    both = both && b->offset_kind == OFFSET_INT;
    y = b->offset;
    CTLV_UNLOCK();
    return both ? x == y : -1;
}

/* __eq__ of node.py: NotImplemented for non-nodes, else
 * `a.tag_bytes == b.tag_bytes and a.value == b.value and ... and a.padding == b.padding`
 * (the first false comparison result, or the last one). */
static PyObject *
node_equal(PyObject *self, PyObject *other)
{
    PyTypeObject *base = Py_TYPE(self);
    int field;

    while (base != NULL && !is_our_node_type(base)) {
        base = base->tp_base; /* self may be an instance of a Python subclass */
    }
    if (base == NULL || !PyObject_TypeCheck(other, base)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    for (field = 0; field < F_COUNT; field++) {
        PyObject *mine, *theirs, *same;
        int truth = field == F_OFFSET ? offsets_equal(self, other) : -1;
        if (truth == 0) {
            Py_RETURN_FALSE;
        }
        if (truth == 1) {
            continue;
        }
        mine = node_field(self, field);
        if (mine == NULL) {
            return NULL;
        }
        theirs = node_field(other, field);
        if (theirs == NULL) {
            Py_DECREF(mine);
            return NULL;
        }
        same = PyObject_RichCompare(mine, theirs, Py_EQ);
        Py_DECREF(mine);
        Py_DECREF(theirs);
        if (same == NULL || field == F_COUNT - 1) {
            return same;
        }
        truth = PyObject_IsTrue(same);
        if (truth <= 0) {
            if (truth < 0) {
                Py_CLEAR(same);
            }
            return same;
        }
        Py_DECREF(same);
    }
    Py_RETURN_TRUE; /* not reached: the last field returns above */
}

static PyObject *
node_richcompare(PyObject *self, PyObject *other, int op)
{
    PyObject *same;
    int truth;

    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    same = node_equal(self, other);
    if (op == Py_EQ || same == NULL || same == Py_NotImplemented) {
        return same;
    }
    /* object.__ne__: the negation of __eq__ */
    truth = PyObject_IsTrue(same);
    Py_DECREF(same);
    return truth < 0 ? NULL : PyBool_FromLong(!truth);
}

/* What object.__getstate__ gives for the slotted reference class (or a subclass of it):
 * the instance __dict__ or None, paired with {set fields} when there are any, so that
 * pickles and copies restore through setattr under either implementation. */
static PyObject *
node_getstate(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    /* The order of the reference class's __slots__. */
    static const int slots_order[F_COUNT] = {F_CHILDREN, F_FORM, F_OFFSET,
                                             F_PADDING,  F_TAG,  F_VALUE};
    PyObject *fields, *state = NULL, *result;
    int k;

    if (!is_our_node_type(Py_TYPE(self))) { /* a Python subclass: it has a __dict__ */
        state = PyObject_GenericGetDict(self, NULL);
        if (state == NULL) {
            return NULL;
        }
        if (PyDict_GET_SIZE(state) == 0) {
            Py_CLEAR(state);
        }
    }
    if (state == NULL) {
        state = Py_NewRef(Py_None);
    }
    fields = PyDict_New();
    if (fields == NULL) {
        Py_DECREF(state);
        return NULL;
    }
    for (k = 0; k < F_COUNT; k++) {
        int field = slots_order[k];
        PyObject *value = node_field(self, field);
        int status;
        if (value == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                goto fail;
            }
            PyErr_Clear(); /* unset: left out, as for a slot */
            continue;
        }
        status = PyDict_SetItemString(fields, field_names[field], value);
        Py_DECREF(value);
        if (status < 0) {
            goto fail;
        }
    }
    if (PyDict_GET_SIZE(fields) == 0) {
        Py_DECREF(fields);
        return state;
    }
    result = PyTuple_Pack(2, state, fields);
    Py_DECREF(state);
    Py_DECREF(fields);
    return result;
fail:
    Py_DECREF(state);
    Py_DECREF(fields);
    return NULL;
}

#define CTLV_MEMBER(name, field) \
    {name, CTLV_T_OBJECT_EX, offsetof(TlvNode, slots) + (field) * sizeof(PyObject *), 0, NULL}

static PyMemberDef node_members[] = {
    CTLV_MEMBER("tag_bytes", F_TAG),
    CTLV_MEMBER("value", F_VALUE),
    CTLV_MEMBER("children", F_CHILDREN),
    CTLV_MEMBER("length_form", F_FORM),
    CTLV_MEMBER("padding", F_PADDING),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef node_getset[] = {
    {"offset", node_get_offset, node_set_offset, NULL, NULL},
    {"tag", node_get_tag, NULL,
     "The tag as an integer, e.g. ``0x9F38`` (computed on access: decoding stays cheap).",
     NULL},
    {"constructed", node_get_constructed, NULL,
     "True when bit 6 of the first tag byte is set (the value holds more TLV objects).", NULL},
    {"tag_hex", node_get_tag_hex, NULL, "The tag in upper-case hex, e.g. ``\"9F38\"``.", NULL},
    {"length", node_get_length, NULL, "Length of the value in bytes.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef node_methods[] = {
    {"__getstate__", node_getstate, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot node_type_slots[] = {
    {Py_tp_doc, (void *)node_doc},
    {Py_tp_alloc, node_alloc},
    {Py_tp_init, node_init},
    {Py_tp_dealloc, node_dealloc},
    {Py_tp_traverse, node_traverse},
    {Py_tp_clear, node_clear},
    {Py_tp_richcompare, node_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented}, /* mutable: children may be edited */
    /* No tp_repr: node.py sets __repr__ to its own function (one definition, which masks
     * card data, for both implementations). */
    {Py_tp_members, node_members},
    {Py_tp_getset, node_getset},
    {Py_tp_methods, node_methods},
    {0, NULL},
};

/* No tp_new: object.__new__ (which the pure-Python decoder calls) allocates through
 * tp_alloc. __module__ is contactless.tlv.node, where pickle finds the type. */
static PyType_Spec node_type_spec = {
    .name = "contactless.tlv.node.Tlv",
    .basicsize = sizeof(TlvNode),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = node_type_slots,
};

/* --- TlvList -------------------------------------------------------------------------- */

/* An empty list of `type` (one of ours, exactly), GC-tracked. One from the free list may
 * have an item array already (size 0): a valid list state, as after pops. */
static PyObject *
list_new_tracked(ctlv_state *owner, PyTypeObject *type)
{
    TlvListObject *list;
#if CTLV_LIST_FREELIST > 0
    if (owner->free_lists != NULL) {
        list = (TlvListObject *)owner->free_lists;
        owner->free_lists = list->dict;
        owner->free_list_count--;
        list->dict = NULL;
        (void)PyObject_Init((PyObject *)list, type);
        PyObject_GC_Track(list);
        return (PyObject *)list;
    }
#else
    (void)owner;
#endif
    return PyType_GenericAlloc(type, 0); /* zero-filled and tracked */
}

static PyObject *
list_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
    if (is_our_list_type(type)) {
        ctlv_state *owner = owner_state(type);
        if (owner == NULL) {
            (void)types_torn_down();
            return NULL;
        }
        return list_new_tracked(owner, type);
    }
    return PyType_GenericAlloc(type, nitems);
}

static int
list_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((TlvListObject *)self)->dict);
    return PyList_Type.tp_traverse(self, visit, arg);
}

static int
list_clear(PyObject *self)
{
    Py_CLEAR(((TlvListObject *)self)->dict);
    return PyList_Type.tp_clear(self);
}

static void
list_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    TlvListObject *list = (TlvListObject *)self;

    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, list_dealloc)
    int recycled = 0;
    if (list->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    Py_CLEAR(list->dict);
#if CTLV_LIST_FREELIST > 0
    if (is_our_list_type(type)) {
        /* The items go; a small item array stays, for the next list made from this one if
         * it goes on the free list (decided after the items, whose lists may go first). */
        PyListObject *items = (PyListObject *)self;
        ctlv_state *owner;
        Py_ssize_t k = Py_SIZE(items);
        Py_SET_SIZE(items, 0);
        while (--k >= 0) {
            Py_XDECREF(items->ob_item[k]);
        }
        if (items->allocated > CTLV_KEPT_ITEMS) {
            PyMem_Free(items->ob_item);
            items->ob_item = NULL;
            items->allocated = 0;
        }
        owner = owner_state(type);
        if (owner != NULL && !owner->closed && owner->free_list_count < CTLV_LIST_FREELIST) {
            list->dict = owner->free_lists;
            owner->free_lists = self;
            owner->free_list_count++;
            recycled = 1;
        }
    }
#endif
    if (!recycled) {
        (void)PyList_Type.tp_clear(self); /* the items (if still there) and their array */
        type->tp_free(self);
    }
    Py_DECREF(type);
    Py_TRASHCAN_END
}

PyDoc_STRVAR(list_doc,
             "An ordered list of sibling nodes (the top level, or a constructed node's "
             "children).\n\n"
             "``trailing`` holds padding bytes (``00``/``FF``) after the last node, kept for\n"
             "re-encoding. ``error`` is set only by ``decode(..., strict=False)``: the\n"
             ":class:`~contactless.errors.TlvError` that stopped decoding, or ``None``.");

static PyMemberDef list_members[] = {
    {"__dictoffset__", CTLV_T_PYSSIZET, offsetof(TlvListObject, dict), CTLV_READONLY, NULL},
    {"__weaklistoffset__", CTLV_T_PYSSIZET, offsetof(TlvListObject, weakreflist),
     CTLV_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef list_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot list_type_slots[] = {
    {Py_tp_doc, (void *)list_doc},
    {Py_tp_alloc, list_alloc},
    {Py_tp_dealloc, list_dealloc},
    {Py_tp_traverse, list_traverse},
    {Py_tp_clear, list_clear},
    {Py_tp_members, list_members},
    {Py_tp_getset, list_getset},
    {0, NULL},
};

static PyType_Spec list_type_spec = {
    .name = "contactless.tlv.node.TlvList",
    .basicsize = sizeof(TlvListObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = list_type_slots,
};

/* ---------------------------------------------------------------------------------------
 * decode()
 *
 * Nodes are made in document order and pushed on a scratch stack until the list that
 * holds them is complete (its template, or the input, ends); the list then takes them in
 * one array of the exact size. (Appending one at a time reallocates a list log(n) times;
 * counting the siblings first would read every header twice.)
 */

typedef struct {
    PyObject **items; /* owned references, in document order */
    Py_ssize_t size;
    Py_ssize_t capacity;
    PyObject *local[256]; /* enough for most inputs: no allocation */
} scratch;

static void
scratch_init(scratch *pending)
{
    pending->items = pending->local;
    pending->size = 0;
    pending->capacity = (Py_ssize_t)(sizeof pending->local / sizeof pending->local[0]);
}

/* Push `item` (a new reference, stolen even on failure). */
static inline int
scratch_push(scratch *pending, PyObject *item)
{
    if (pending->size == pending->capacity) {
        size_t capacity = 2 * (size_t)pending->capacity;
        PyObject **items = NULL;
        if (capacity <= (size_t)PY_SSIZE_T_MAX / sizeof(PyObject *)) {
            if (pending->items == pending->local) {
                items = PyMem_New(PyObject *, capacity);
                if (items != NULL) {
                    memcpy(items, pending->local, (size_t)pending->size * sizeof(PyObject *));
                }
            }
            else {
                items = (PyObject **)PyMem_Realloc(pending->items,
                                                   capacity * sizeof(PyObject *));
            }
        }
        if (items == NULL) {
            Py_DECREF(item);
            PyErr_NoMemory();
            return -1;
        }
        pending->items = items;
        pending->capacity = (Py_ssize_t)capacity;
    }
    pending->items[pending->size++] = item;
    return 0;
}

/* Move the items pushed since `base` into `list` (new and empty), in order. On failure the
 * items are released. */
static int
scratch_flush(scratch *pending, Py_ssize_t base, PyObject *list)
{
    Py_ssize_t count = pending->size - base, k;

    if (count == 0) {
        return 0;
    }
#ifndef Py_GIL_DISABLED
    /* (Free-threaded builds keep list items in a private layout: appends there.) */
    if (Py_SIZE(list) == 0) {
        PyListObject *items = (PyListObject *)list;
        if (items->allocated < count) { /* no array yet, or a kept one too small */
            PyObject **array = PyMem_New(PyObject *, (size_t)count);
            if (array == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            PyMem_Free(items->ob_item);
            items->ob_item = array;
            items->allocated = count;
        }
        memcpy(items->ob_item, pending->items + base, (size_t)count * sizeof(PyObject *));
        Py_SET_SIZE(items, count);
        pending->size = base;
        return 0;
    }
#endif
    for (k = base; k < pending->size; k++) {
        if (PyList_Append(list, pending->items[k]) < 0) {
            base = k;
            goto fail;
        }
        Py_DECREF(pending->items[k]);
    }
    pending->size -= count;
    return 0;
fail:
    for (k = base; k < pending->size; k++) {
        Py_DECREF(pending->items[k]);
    }
    pending->size -= count;
    return -1;
}

static void
scratch_release(scratch *pending)
{
    while (pending->size > 0) {
        Py_DECREF(pending->items[--pending->size]);
    }
    if (pending->items != pending->local) {
        PyMem_Free(pending->items);
    }
}

/* A new, empty output list (node.TlvList); `owner` is the state that owns the output
 * types when they are ours, else NULL. */
static PyObject *
new_list(ctlv_state *st, ctlv_state *owner)
{
    if (owner != NULL) {
        return list_new_tracked(owner, st->out_list_type);
    }
    return st->out_list_type->tp_new(st->out_list_type, st->empty_tuple, NULL);
}

static inline PyObject *
tag_object(ctlv_state *st, const unsigned char *p, Py_ssize_t n)
{
    if (n == 1) {
        return Py_NewRef(st->tag1_cache[p[0]]);
    }
    if (n == 2 && (p[0] & 0x1F) == 0x1F && p[1] < 0x80) {
        return Py_NewRef(st->tag2_cache[((p[0] >> 5) << 7) | p[1]]);
    }
    return PyBytes_FromStringAndSize((const char *)p, n);
}

/* A new output node (node.Tlv) for the object `h` read; `children` is a borrowed TlvList,
 * or NULL for a primitive object. */
static CTLV_INLINE PyObject *
make_node(ctlv_state *st, ctlv_state *owner, const unsigned char *buf, const header *h,
          Py_ssize_t pad_start, PyObject *children)
{
    PyObject *tag, *value, *padding = NULL;

    tag = tag_object(st, buf + h->start, h->tag_end - h->start);
    value = PyBytes_FromStringAndSize((const char *)buf + h->vstart, h->vend - h->vstart);
    if (pad_start != h->start) {
        padding = PyBytes_FromStringAndSize((const char *)buf + pad_start, h->start - pad_start);
        if (padding == NULL) {
            goto fail;
        }
    }
    if (tag == NULL || value == NULL) {
        goto fail;
    }
    if (owner != NULL) {
        /* Our node type: fields filled directly, the offset kept as a C integer. */
        TlvNode *node = node_new_untracked(owner, st->out_node_type);
        if (node == NULL) {
            goto fail;
        }
        node->slots[F_TAG] = tag;
        node->slots[F_VALUE] = value;
        node->slots[F_CHILDREN] = Py_NewRef(children != NULL ? children : Py_None);
        node->slots[F_FORM] = Py_NewRef(st->forms[h->form]);
        node->slots[F_PADDING] = padding != NULL ? padding : Py_NewRef(st->empty_bytes);
        node->offset = h->start;
        node->offset_kind = OFFSET_INT;
        PyObject_GC_Track(node);
        return (PyObject *)node;
    }
    else {
        /* The pure-Python node.Tlv (CONTACTLESS_PUREPYTHON=1): its six slots filled at the
         * offsets found at exec (what Tlv.__init__ would do, for less). */
        PyObject *fields[SLOT_COUNT], *node;
        int k;
        fields[SLOT_TAG] = tag;
        fields[SLOT_VALUE] = value;
        fields[SLOT_CHILDREN] = Py_NewRef(children != NULL ? children : Py_None);
        fields[SLOT_OFFSET] = PyLong_FromSsize_t(h->start);
        fields[SLOT_FORM] = Py_NewRef(st->forms[h->form]);
        fields[SLOT_PADDING] = padding != NULL ? padding : Py_NewRef(st->empty_bytes);
        if (fields[SLOT_OFFSET] == NULL) {
            Py_DECREF(fields[SLOT_CHILDREN]);
            Py_DECREF(fields[SLOT_FORM]);
            goto fail;
        }
        /* Not tp_alloc: its memset and generic checks cost more than filling the object,
         * whose whole body is these six slots (checked at exec). Untracked until filled. */
        node = (PyObject *)PyObject_GC_New(PyObject, st->out_node_type);
        if (node == NULL) {
            for (k = 0; k < SLOT_COUNT; k++) {
                Py_DECREF(fields[k]);
            }
            return NULL;
        }
        for (k = 0; k < SLOT_COUNT; k++) {
            *(PyObject **)((char *)node + st->slot_offsets[k]) = fields[k];
        }
        PyObject_GC_Track(node);
        return node;
    }
fail:
    Py_XDECREF(tag);
    Py_XDECREF(value);
    Py_XDECREF(padding);
    return NULL;
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
    PyObject *list;  /* owned */
    Py_ssize_t end;  /* end of its content in the buffer */
    Py_ssize_t base; /* where its items start on the scratch stack */
} frame;

static PyObject *
decode_buffer(ctlv_state *st, const unsigned char *buf, Py_ssize_t size, PyObject *strict)
{
    frame stack[CTLV_MAX_DEPTH];
    int depth = 0;
    PyObject *root, *out, *node;
    Py_ssize_t pos = 0, pad_start = 0, end = size, base = 0;
    scratch pending;
    header h;
    ctlv_state *owner = NULL;

    if (st->out_node_type == NULL ||
        (st->out_is_ours && (owner = owner_state(st->out_node_type)) == NULL)) {
        (void)types_torn_down(); /* the module or the node types were cleared */
        return NULL;
    }
    root = new_list(st, owner);
    if (root == NULL) {
        return NULL;
    }
    scratch_init(&pending);
    out = Py_NewRef(root); /* `out` is always an owned reference */
    for (;;) {
        unsigned char first;
        if (pos >= end) {
            /* `out` is complete: it takes its items, then any trailing padding. */
            if (scratch_flush(&pending, base, out) < 0 ||
                (pad_start < end && set_trailing(st, out, buf, pad_start, end) < 0)) {
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
            base = stack[depth].base;
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
            children = new_list(st, owner);
            if (children == NULL) {
                goto fail;
            }
            node = make_node(st, owner, buf, &h, pad_start, children);
            if (node == NULL || scratch_push(&pending, node) < 0) {
                Py_DECREF(children);
                goto fail;
            }
            stack[depth].list = out;
            stack[depth].end = end;
            stack[depth].base = base;
            depth++;
            out = children;
            end = h.vend;
            base = pending.size;
            pos = pad_start = h.vstart;
        }
        else {
            node = make_node(st, owner, buf, &h, pad_start, NULL);
            if (node == NULL || scratch_push(&pending, node) < 0) {
                goto fail;
            }
            pos = pad_start = h.vend;
        }
    }
    Py_DECREF(out); /* out is root again */
    scratch_release(&pending);
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
    /* strict=False: the nodes decoded so far (the open lists take theirs, innermost first),
     * with the error that stopped decoding. */
    if (scratch_flush(&pending, base, out) < 0) {
        Py_DECREF(error);
        goto fail;
    }
    while (depth > 0) {
        Py_DECREF(out);
        depth--;
        out = stack[depth].list;
        if (scratch_flush(&pending, stack[depth].base, out) < 0) {
            Py_DECREF(error);
            goto fail;
        }
    }
    if (PyObject_SetAttr(root, st->str_error, error) < 0) {
        Py_DECREF(error);
        goto fail;
    }
    Py_DECREF(error);
    Py_DECREF(out); /* out is root again */
    scratch_release(&pending);
    return root;
}

fail:
    scratch_release(&pending);
    Py_DECREF(out);
    while (depth > 0) {
        Py_DECREF(stack[--depth].list);
    }
    Py_DECREF(root);
    return NULL;
}

static PyObject *import_attribute(const char *module_name, const char *name);

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
 * find_value() and find_all_values()
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
    if (st->parse_tag == NULL) {
        /* Imported on first need: while node.py imports this module, _pytlv is not ready. */
        st->parse_tag = import_attribute("contactless.tlv._pytlv", "parse_tag");
        if (st->parse_tag == NULL) {
            return -1;
        }
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

/* Validate the whole buffer as decode() does, collecting the objects (pre-order) whose tag
 * is `wanted`. With `matches` NULL (find_value) only the first is remembered and its value,
 * or None, is returned; otherwise (find_all_values) each value is appended to `matches` as
 * it is met and a new reference to `matches` is returned. NULL with an exception set on a
 * fault (the TlvError) or a failed allocation; `matches` then holds a partial list, which
 * the caller drops. */
static PyObject *
find_in_buffer(ctlv_state *st, const unsigned char *buf, Py_ssize_t size,
               const unsigned char *wanted, Py_ssize_t wanted_size, PyObject *matches)
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
        if (h.tag_end - h.start == wanted_size &&
            memcmp(buf + h.start, wanted, (size_t)wanted_size) == 0) {
            if (matches != NULL) {
                /* read_header guarantees vstart <= vend <= size. */
                PyObject *value = PyBytes_FromStringAndSize((const char *)buf + h.vstart,
                                                            h.vend - h.vstart);
                int appended;
                if (value == NULL) {
                    return NULL;
                }
                appended = PyList_Append(matches, value);
                Py_DECREF(value);
                if (appended < 0) {
                    return NULL;
                }
            }
            else if (found_start < 0) {
                found_start = h.vstart;
                found_end = h.vend;
            }
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
    if (matches != NULL) {
        return Py_NewRef(matches);
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

/* The shared body of find_value() and find_all_values(): arguments (tag checked before the
 * data, as the Python path does), snapshot, scan. `all` selects find_all_values. */
static PyObject *
find_call(PyObject *module, const char *fname, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames, int all)
{
    ctlv_state *st = get_state(module);
    PyObject *values[2];
    PyObject *names[2] = {st->str_data, st->str_tag};
    PyObject *raw, *matches = NULL, *result;
    unsigned char wanted[4];
    Py_ssize_t wanted_size;

    if (kwnames == NULL && nargs == 2) {
        values[0] = args[0];
        values[1] = args[1];
    }
    else if (parse_arguments(fname, args, nargs, kwnames, names, 2, 2, 2, values) < 0) {
        return NULL;
    }
    wanted_size = read_tag_argument(st, values[1], wanted);
    if (wanted_size < 0) {
        return NULL;
    }
    raw = snapshot(st, values[0]);
    if (raw == NULL) {
        return NULL;
    }
    if (all) {
        matches = PyList_New(0);
        if (matches == NULL) {
            Py_DECREF(raw);
            return NULL;
        }
    }
    result = find_in_buffer(st, (const unsigned char *)PyBytes_AS_STRING(raw),
                            PyBytes_GET_SIZE(raw), wanted, wanted_size, matches);
    Py_XDECREF(matches);
    Py_DECREF(raw);
    return result;
}

PyDoc_STRVAR(find_value_doc,
             "find_value(data, tag)\n--\n\n"
             "The value of the first object with `tag` (depth first) in raw TLV data, or\n"
             "None; the whole buffer is validated as decode() does, without building a tree.");

static PyObject *
ctlv_find_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return find_call(module, "find_value", args, nargs, kwnames, 0);
}

PyDoc_STRVAR(find_all_values_doc,
             "find_all_values(data, tag)\n--\n\n"
             "The values of every object with `tag` (depth first, document order) in raw\n"
             "TLV data, as a list; the whole buffer is validated as decode() does, without\n"
             "building a tree.");

static PyObject *
ctlv_find_all_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    return find_call(module, "find_all_values", args, nargs, kwnames, 1);
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

/* `name` of an already imported module, or NULL without an error when the module is not
 * loaded or has no such attribute (yet). */
static PyObject *
loaded_attribute(const char *module_name, const char *name)
{
    PyObject *module_key = PyUnicode_FromString(module_name), *module, *value;
    if (module_key == NULL) {
        return NULL;
    }
    module = PyImport_GetModule(module_key);
    Py_DECREF(module_key);
    if (module == NULL) {
        return NULL;
    }
    value = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
    }
    return value;
}

/* Find where the pure-Python node.Tlv keeps each slot, refusing any layout we do not know
 * how to fill. */
static int
load_slot_offsets(ctlv_state *st)
{
    PyTypeObject *type = st->out_node_type;
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

/* This module's own Tlv and TlvList, exported as _ctlv.Tlv / _ctlv.TlvList. */
static int
create_node_types(PyObject *module, ctlv_state *st)
{
    st->node_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &node_type_spec, NULL);
    if (st->node_type == NULL) {
        return -1;
    }
    st->list_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &list_type_spec,
                                                             (PyObject *)&PyList_Type);
    if (st->list_type == NULL) {
        return -1;
    }
    /* object.__new__(Tlv) must work: the pure-Python decoder and pickle call it. */
    if (st->node_type->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_SetString(PyExc_SystemError, "_ctlv: Tlv did not inherit object.__new__");
        return -1;
    }
    /* Messages name the class as the reference class's do ("'Tlv' object has no attribute
     * 'x'"), not by the dotted spec name; __name__, __module__ and __qualname__ come from
     * elsewhere, and 3.12+ frees its own copy of the spec name, not tp_name. */
    st->node_type->tp_name = "Tlv";
    st->list_type->tp_name = "TlvList";
    /* Class-level defaults: decode sets an instance attribute only when non-empty. */
    if (PyObject_SetAttr((PyObject *)st->list_type, st->str_trailing, st->empty_bytes) < 0 ||
        PyObject_SetAttr((PyObject *)st->list_type, st->str_error, Py_None) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Tlv", (PyObject *)st->node_type) < 0 ||
        PyModule_AddObjectRef(module, "TlvList", (PyObject *)st->list_type) < 0) {
        return -1;
    }
    return 0;
}

/* What decode() builds: node.Tlv / node.TlvList (see the design notes at the top). */
static int
choose_output_types(ctlv_state *st)
{
    PyObject *tlv, *tlvlist;

    tlv = loaded_attribute("contactless.tlv.node", "Tlv");
    if (tlv == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        /* node.py is importing us for these very types (or node is not loaded at all). */
        st->out_node_type = (PyTypeObject *)Py_NewRef(st->node_type);
        st->out_list_type = (PyTypeObject *)Py_NewRef(st->list_type);
        st->out_is_ours = 1;
        return 0;
    }
    tlvlist = loaded_attribute("contactless.tlv.node", "TlvList");
    if (tlvlist == NULL) {
        Py_DECREF(tlv);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ImportError, "contactless.tlv.node has Tlv but no TlvList");
        }
        return -1;
    }
    st->out_node_type = (PyTypeObject *)tlv;
    st->out_list_type = (PyTypeObject *)tlvlist;
    if (!PyType_Check(tlv) || !PyType_Check(tlvlist) ||
        !PyType_IsSubtype(st->out_list_type, &PyList_Type)) {
        PyErr_SetString(PyExc_ImportError,
                        "contactless.tlv.node.Tlv/TlvList are not the expected classes");
        return -1;
    }
    if (is_our_node_type(st->out_node_type) && is_our_list_type(st->out_list_type)) {
        /* node uses the C types (of this or another instance of this module). */
        ctlv_state *owner = owner_state(st->out_node_type);
        if (owner == NULL) {
            return types_torn_down();
        }
        st->out_is_ours = 1;
        if (owner_state(st->out_list_type) != owner) {
            PyErr_SetString(PyExc_ImportError,
                            "contactless.tlv.node.Tlv and TlvList come from different modules");
            return -1;
        }
        return 0;
    }
    if (is_our_node_type(st->out_node_type) || is_our_list_type(st->out_list_type)) {
        PyErr_SetString(PyExc_ImportError,
                        "contactless.tlv.node mixes C and pure-Python node types");
        return -1;
    }
    /* The pure-Python reference classes (CONTACTLESS_PUREPYTHON=1). */
    st->out_is_ours = 0;
    return load_slot_offsets(st);
}

/* _pytlv.MAX_DEPTH must be CTLV_MAX_DEPTH. Checked here when _pytlv is already loaded; when
 * node.py imports us on the way to loading _pytlv it is not yet, and
 * tests/tlv/test_c_extension.py compares _ctlv.MAX_DEPTH with it. */
static int
check_max_depth(void)
{
    PyObject *max_depth = loaded_attribute("contactless.tlv._pytlv", "MAX_DEPTH");
    long depth;
    if (max_depth == NULL) {
        return PyErr_Occurred() ? -1 : 0;
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
    return 0;
}

static int
ctlv_exec(PyObject *module)
{
    ctlv_state *st = get_state(module);
    size_t k;

    if (check_max_depth() < 0 ||
        PyModule_AddIntConstant(module, "MAX_DEPTH", CTLV_MAX_DEPTH) < 0) {
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
    for (k = 1; k < sizeof st->forms / sizeof st->forms[0]; k++) {
        st->forms[k] = PyLong_FromSize_t(k);
        if (st->forms[k] == NULL) {
            return -1;
        }
    }
    for (k = 0; k < sizeof st->tag1_cache / sizeof st->tag1_cache[0]; k++) {
        unsigned char tag = (unsigned char)k;
        st->tag1_cache[k] = PyBytes_FromStringAndSize((const char *)&tag, 1);
        if (st->tag1_cache[k] == NULL) {
            return -1;
        }
    }
    for (k = 0; k < sizeof st->tag2_cache / sizeof st->tag2_cache[0]; k++) {
        unsigned char tag[2] = {(unsigned char)((k >> 7) << 5 | 0x1F), (unsigned char)(k & 0x7F)};
        st->tag2_cache[k] = PyBytes_FromStringAndSize((const char *)tag, 2);
        if (st->tag2_cache[k] == NULL) {
            return -1;
        }
    }
    if (create_node_types(module, st) < 0) {
        return -1;
    }
    return choose_output_types(st);
}

static int
ctlv_traverse(PyObject *module, visitproc visit, void *arg)
{
    ctlv_state *st = get_state(module);
    size_t k;
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->node_type);
    Py_VISIT(st->list_type);
    Py_VISIT(st->out_node_type);
    Py_VISIT(st->out_list_type);
    Py_VISIT(st->tlv_error);
    Py_VISIT(st->local_error);
    Py_VISIT(st->parse_tag);
    Py_VISIT(st->error_kwnames);
    Py_VISIT(st->empty_tuple);
    Py_VISIT(st->empty_bytes);
    for (k = 0; k < sizeof st->forms / sizeof st->forms[0]; k++) {
        Py_VISIT(st->forms[k]);
    }
    for (k = 0; k < sizeof st->tag1_cache / sizeof st->tag1_cache[0]; k++) {
        Py_VISIT(st->tag1_cache[k]);
    }
    for (k = 0; k < sizeof st->tag2_cache / sizeof st->tag2_cache[0]; k++) {
        Py_VISIT(st->tag2_cache[k]);
    }
    return 0;
}

/* Give the free lists' memory back. Their objects are dead (untracked, fields cleared);
 * their type is one of ours, still referenced by the state while this runs. */
static void
release_free_lists(ctlv_state *st)
{
    while (st->free_nodes != NULL) {
        TlvNode *node = (TlvNode *)st->free_nodes;
        st->free_nodes = node->slots[F_TAG];
        PyObject_GC_Del(node);
    }
    st->free_node_count = 0;
    while (st->free_lists != NULL) {
        TlvListObject *list = (TlvListObject *)st->free_lists;
        st->free_lists = list->dict;
        PyMem_Free(list->list.ob_item); /* empty, but it may keep its array */
        PyObject_GC_Del(list);
    }
    st->free_list_count = 0;
}

static int
ctlv_clear(PyObject *module)
{
    ctlv_state *st = get_state(module);
    size_t k;
    if (st == NULL) {
        return 0;
    }
    st->closed = 1; /* nodes freed from now on go straight back to the allocator */
    release_free_lists(st);
    st->out_is_ours = 0;
    Py_CLEAR(st->out_node_type);
    Py_CLEAR(st->out_list_type);
    Py_CLEAR(st->node_type);
    Py_CLEAR(st->list_type);
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
    for (k = 0; k < sizeof st->forms / sizeof st->forms[0]; k++) {
        Py_CLEAR(st->forms[k]);
    }
    for (k = 0; k < sizeof st->tag1_cache / sizeof st->tag1_cache[0]; k++) {
        Py_CLEAR(st->tag1_cache[k]);
    }
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
    {"find_all_values", (PyCFunction)(void (*)(void))ctlv_find_all_values,
     METH_FASTCALL | METH_KEYWORDS, find_all_values_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot ctlv_slots[] = {
    {Py_mod_exec, (void *)ctlv_exec},
#ifdef Py_mod_multiple_interpreters
    /* All state is per module: each interpreter has its own node types and free lists. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* decode reads only immutable snapshots and writes only new objects; node fields are
     * read and written under the object's critical section; no free lists in such builds. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef ctlv_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "contactless.tlv._ctlv",
    .m_doc = "C accelerator for contactless.tlv decode(), find_value() and find_all_values(), "
             "and the C node types Tlv and TlvList.",
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
