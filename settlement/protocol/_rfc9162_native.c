/*
 * RFC 9162 Merkle levels hashed in one call each: the compiled half of
 * settlement/protocol/merkle.py.
 *
 * Why this file exists: building a tree in Python makes one hashlib call per node, and that
 * call (an OpenSSL EVP context allocated, initialised and copied for every 65-byte message)
 * costs more than the two SHA-256 blocks it hashes. Here one EVP context and one fetched
 * SHA-256 implementation hash a whole level, so a tree costs little more than its hashing.
 * The bytes are exactly those of the pure-Python loop in merkle.py (tested byte for byte),
 * which remains the fallback wherever this module is not built.
 *
 * Built by `python -m devstack.native` (make install), linked against the system libcrypto.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>

#define DIGEST_SIZE 32

static EVP_MD *sha256;

static const unsigned char LEAF_PREFIX = 0x00;
static const unsigned char NODE_PREFIX = 0x01;

/* SHA-256(prefix || first || second) into out; 0 when OpenSSL fails (it does not, short of
 * memory). */
static int
hash_prefixed(EVP_MD_CTX *context, unsigned char prefix, const char *first, Py_ssize_t first_size,
              const char *second, Py_ssize_t second_size, unsigned char *out)
{
    return EVP_DigestInit_ex2(context, sha256, NULL)
        && EVP_DigestUpdate(context, &prefix, 1)
        && EVP_DigestUpdate(context, first, (size_t)first_size)
        && (second_size == 0 || EVP_DigestUpdate(context, second, (size_t)second_size))
        && EVP_DigestFinal_ex(context, out, NULL);
}

/* The bytes of item, which must be a bytes object; size checked when expected >= 0. */
static int
bytes_of(PyObject *item, Py_ssize_t index, Py_ssize_t expected, char **buffer, Py_ssize_t *size)
{
    if (!PyBytes_Check(item)) {
        PyErr_Format(PyExc_TypeError, "item %zd is %.100s, not bytes", index, Py_TYPE(item)->tp_name);
        return 0;
    }
    if (PyBytes_AsStringAndSize(item, buffer, size) < 0) {
        return 0;
    }
    if (expected >= 0 && *size != expected) {
        PyErr_Format(PyExc_ValueError, "item %zd is %zd bytes, not a %d-byte digest", index, *size,
                     DIGEST_SIZE);
        return 0;
    }
    return 1;
}

static PyObject *
hash_level(PyObject *sequence, int leaves)
{
    PyObject *items = PySequence_Fast(sequence, "expected a list or tuple of bytes");
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    PyObject **item = PySequence_Fast_ITEMS(items);
    Py_ssize_t out_count = leaves ? count : (count + 1) / 2;
    PyObject *out = PyList_New(out_count);
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (out == NULL || context == NULL) {
        if (context == NULL) {
            PyErr_NoMemory();
        }
        goto fail;
    }
    unsigned char digest[DIGEST_SIZE];
    char *first, *second;
    Py_ssize_t first_size, second_size;
    Py_ssize_t step = leaves ? 1 : 2;
    for (Py_ssize_t i = 0; i + step <= count; i += step) {
        int hashed;
        if (leaves) {
            if (!bytes_of(item[i], i, -1, &first, &first_size)) {
                goto fail;
            }
            hashed = hash_prefixed(context, LEAF_PREFIX, first, first_size, NULL, 0, digest);
        } else {
            if (!bytes_of(item[i], i, DIGEST_SIZE, &first, &first_size)
                || !bytes_of(item[i + 1], i + 1, DIGEST_SIZE, &second, &second_size)) {
                goto fail;
            }
            hashed = hash_prefixed(context, NODE_PREFIX, first, first_size, second, second_size, digest);
        }
        if (!hashed) {
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not compute a SHA-256 digest");
            goto fail;
        }
        PyObject *hash = PyBytes_FromStringAndSize((const char *)digest, DIGEST_SIZE);
        if (hash == NULL) {
            goto fail;
        }
        PyList_SET_ITEM(out, i / step, hash);
    }
    if (!leaves && count % 2) {
        /* An unpaired last node is promoted unchanged: RFC 9162's shape, never duplicated. */
        if (!bytes_of(item[count - 1], count - 1, DIGEST_SIZE, &first, &first_size)) {
            goto fail;
        }
        Py_INCREF(item[count - 1]);
        PyList_SET_ITEM(out, out_count - 1, item[count - 1]);
    }
    EVP_MD_CTX_free(context);
    Py_DECREF(items);
    return out;

fail:
    EVP_MD_CTX_free(context);
    Py_DECREF(items);
    Py_XDECREF(out);
    return NULL;
}

static PyObject *
leaf_hashes(PyObject *module, PyObject *entries)
{
    return hash_level(entries, 1);
}

static PyObject *
parent_level(PyObject *module, PyObject *level)
{
    return hash_level(level, 0);
}

static PyMethodDef methods[] = {
    {"leaf_hashes", leaf_hashes, METH_O,
     "leaf_hashes(entries) -> list of SHA-256(0x00 || entry), one per entry."},
    {"parent_level", parent_level, METH_O,
     "parent_level(level) -> the next level up: SHA-256(0x01 || left || right) per pair of\n"
     "32-byte digests, an unpaired last digest promoted unchanged."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_rfc9162_native",
    "RFC 9162 Merkle levels hashed in one call each (see settlement/protocol/merkle.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__rfc9162_native(void)
{
    if (sha256 == NULL) {
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (sha256 == NULL) {
            PyErr_SetString(PyExc_ImportError, "OpenSSL offers no SHA-256 implementation");
            return NULL;
        }
    }
    return PyModule_Create(&module_definition);
}
