"""Fused mixture log-likelihood: one pass over the objects for the value and its gradient.

The cluster models' likelihood is, for N objects with values y_i (d = 1, 2 or 3 coordinates)
and error covariances C_i, and K Gaussian components (means μ_k, covariances S_k, log-weights
log w_k, optional per-object log-offsets o_ik such as a sky density):

    L = Σ_i log Σ_k exp(log w_k + o_ik + log N(y_i | μ_k, S_k + C_i)).

Written as a PyTensor graph (:mod:`starmix.models.likelihoods`, the reference implementation) this
makes several passes over (N, K) temporaries, and the gradient several more.
:class:`MixtureLogLike` computes the per-object terms L_i and the gradient of L with respect
to (log w, o, μ, S) in one compiled Numba loop, which is about twice as fast
(``benchmarks/floor.py``); the gradient
with respect to the sampler's parameters follows by PyTensor's chain rule, O(K) work.

Covariances are read from their upper triangle (as the reference does), so the gradient
with respect to an entry below the diagonal is zero and one above it counts both.
The Op runs on every PyTensor backend: its ``perform`` (C/Python), Numba (PyMC's default
linker, nutpie) and JAX (numpyro, blackjax; :mod:`starmix.models.fused_jax`), each tested
against the reference graph.
"""

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from numba.core.caching import FunctionCache
from pytensor.gradient import grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

LOG_2PI = math.log(2 * math.pi)


# Every fast-math flag but "no NaNs" and "no infinities": a covariance that is not positive
# definite must still give NaN. "afn" lets Numba call vectorised exp and log.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _closed_form_1d(s, r):
    """Determinant, upper triangle of the inverse and projection S^-1 r of the symmetric
    matrix whose upper triangle is the flat tuple ``s`` (row by row), in closed form."""
    inverse = (1.0 / s[0],)
    return s[0], inverse, (r[0] * inverse[0],)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _closed_form_2d(s, r):
    det = s[0] * s[2] - s[1] * s[1]
    inverse = (s[2] / det, -s[1] / det, s[0] / det)
    return det, inverse, (inverse[0] * r[0] + inverse[1] * r[1],
                          inverse[1] * r[0] + inverse[2] * r[1])


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _closed_form_3d(s, r):
    a, b, c, e, f, i = s
    a00, a11, a22 = e * i - f * f, a * i - c * c, a * e - b * b
    a01, a02, a12 = c * f - b * i, b * f - c * e, b * c - a * f
    det = a * a00 + b * a01 + c * a02
    inverse = (a00 / det, a01 / det, a02 / det, a11 / det, a12 / det, a22 / det)
    return det, inverse, (inverse[0] * r[0] + inverse[1] * r[1] + inverse[2] * r[2],
                          inverse[1] * r[0] + inverse[3] * r[1] + inverse[4] * r[2],
                          inverse[2] * r[0] + inverse[4] * r[1] + inverse[5] * r[2])


@numba.njit(inline="always")
def _upper_1d(covs, error_cov, k, i):
    return (covs[k, 0, 0] + error_cov[0, 0, i],)


@numba.njit(inline="always")
def _upper_2d(covs, error_cov, k, i):
    return (covs[k, 0, 0] + error_cov[0, 0, i], covs[k, 0, 1] + error_cov[0, 1, i],
            covs[k, 1, 1] + error_cov[1, 1, i])


@numba.njit(inline="always")
def _upper_3d(covs, error_cov, k, i):
    return (covs[k, 0, 0] + error_cov[0, 0, i], covs[k, 0, 1] + error_cov[0, 1, i],
            covs[k, 0, 2] + error_cov[0, 2, i], covs[k, 1, 1] + error_cov[1, 1, i],
            covs[k, 1, 2] + error_cov[1, 2, i], covs[k, 2, 2] + error_cov[2, 2, i])


@numba.njit(inline="always")
def _residual_1d(values, means, k, i):
    return (values[0, i] - means[k, 0],)


@numba.njit(inline="always")
def _residual_2d(values, means, k, i):
    return (values[0, i] - means[k, 0], values[1, i] - means[k, 1])


@numba.njit(inline="always")
def _residual_3d(values, means, k, i):
    return (values[0, i] - means[k, 0], values[1, i] - means[k, 1],
            values[2, i] - means[k, 2])


# Pass 3's sums over objects for one component k, one function per dimension: the
# accumulators are scalar locals, which LLVM keeps in vector registers (sums into a small
# array on the heap are stored back on every object, and that loop does not vectorise:
# 2.3x slower for d = 3). Returns (sum resp, sum resp S^-1 r, sum resp (S^-1 r r^T S^-1 -
# S^-1) by upper-triangle pair), resp = terms[k, i] * inv_norm[i].
@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _gradient_sums_1d(values, error_cov, means, covs, terms, inv_norm, k):
    g_w = g_m0 = g_c0 = 0.0
    for i in range(values.shape[1]):
        resp = terms[k, i] * inv_norm[i]
        _, inverse, projected = _closed_form_1d(_upper_1d(covs, error_cov, k, i),
                                                _residual_1d(values, means, k, i))
        g_w += resp
        g_m0 += resp * projected[0]
        g_c0 += resp * (projected[0] * projected[0] - inverse[0])
    return g_w, (g_m0,), (g_c0,)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _gradient_sums_2d(values, error_cov, means, covs, terms, inv_norm, k):
    g_w = g_m0 = g_m1 = g_c0 = g_c1 = g_c2 = 0.0
    for i in range(values.shape[1]):
        resp = terms[k, i] * inv_norm[i]
        _, inverse, x = _closed_form_2d(_upper_2d(covs, error_cov, k, i),
                                        _residual_2d(values, means, k, i))
        g_w += resp
        g_m0 += resp * x[0]
        g_m1 += resp * x[1]
        g_c0 += resp * (x[0] * x[0] - inverse[0])
        g_c1 += resp * (x[0] * x[1] - inverse[1])
        g_c2 += resp * (x[1] * x[1] - inverse[2])
    return g_w, (g_m0, g_m1), (g_c0, g_c1, g_c2)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _gradient_sums_3d(values, error_cov, means, covs, terms, inv_norm, k):
    g_w = g_m0 = g_m1 = g_m2 = 0.0
    g_c0 = g_c1 = g_c2 = g_c3 = g_c4 = g_c5 = 0.0
    for i in range(values.shape[1]):
        resp = terms[k, i] * inv_norm[i]
        _, inverse, x = _closed_form_3d(_upper_3d(covs, error_cov, k, i),
                                        _residual_3d(values, means, k, i))
        g_w += resp
        g_m0 += resp * x[0]
        g_m1 += resp * x[1]
        g_m2 += resp * x[2]
        g_c0 += resp * (x[0] * x[0] - inverse[0])
        g_c1 += resp * (x[0] * x[1] - inverse[1])
        g_c2 += resp * (x[0] * x[2] - inverse[2])
        g_c3 += resp * (x[1] * x[1] - inverse[3])
        g_c4 += resp * (x[1] * x[2] - inverse[4])
        g_c5 += resp * (x[2] * x[2] - inverse[5])
    return g_w, (g_m0, g_m1, g_m2), (g_c0, g_c1, g_c2, g_c3, g_c4, g_c5)


LOG2_E = 1.0 / math.log(2.0)
LN2_HIGH, LN2_LOW = 0.693145751953125, 1.42860682030941723212e-6  # LN2_HIGH exact in 17 bits
EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13))


@numba.njit(fastmath=FASTMATH - {"reassoc"})  # keep the two-step reduction exact
def exp_non_positive(x):
    """exp(x) in place for x <= 0 (relative error below 1e-15; below -708 it gives ~1e-308 rather
    than a subnormal), written so that LLVM vectorises it: libm's scalar exp stops that.
    Cody-Waite reduction x = n ln 2 + r with ``|r| <= ln 2 / 2``, a degree-12 Taylor
    polynomial in r, and 2^n built from its IEEE-754 bits."""
    bits = np.empty(x.shape[0], np.int64)
    for i in range(x.shape[0]):
        value = max(x[i], -708.0)
        n = math.floor(value * LOG2_E + 0.5)
        r = (value - n * LN2_HIGH) - n * LN2_LOW
        poly = EXP_TAYLOR[12]
        for j in range(11, -1, -1):
            poly = poly * r + EXP_TAYLOR[j]
        x[i] = poly
        bits[i] = (np.int64(n) + 1023) << 52
    scale = bits.view(np.float64)
    for i in range(x.shape[0]):
        x[i] *= scale[i]


class _SpecialisedCache(FunctionCache):
    """Numba's on-disk cache for a function made by a factory, keyed by the factory's
    argument instead of the function's captured values.

    Numba keys a closure's cache entries by its captured values, pickled; a captured
    Numba function pickles with an id that is new in every process, so each run missed
    the cache and compiled the kernels again (4-5 s each). The source file's time stamp
    still invalidates the entries when this module changes, and the key holds the
    module's name: an entry written under another name (Numba imports that module to
    rebuild the entry) is never read.
    """

    def __init__(self, py_func, specialisation: str):
        super().__init__(py_func)
        self._specialisation = specialisation

    def _index_key(self, sig, codegen):
        code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
        return sig, codegen.magic_tuple(), (code, self._specialisation,
                                             self._py_func.__module__)


def _cached_per_dim(dispatcher, dim: int):
    """``dispatcher`` with Numba's on-disk cache keyed by ``dim`` (:class:`_SpecialisedCache`)."""
    dispatcher._cache = _SpecialisedCache(dispatcher.py_func, f"dim={dim}")
    return dispatcher


def _upper_pairs(dim: int) -> tuple:
    return tuple((p, q) for p in range(dim) for q in range(p, dim))


def _specialised_kernel(dim: int):
    """The fused computation for ``dim`` coordinates (a compile-time constant).

    Objects are the innermost loop of every pass, with structure-of-arrays inputs, so that
    LLVM vectorises it (SIMD exp, log and arithmetic): pass 1 the per-component log terms,
    pass 2 the logsumexp over components and the responsibilities, pass 3 the gradient
    sums, recomputing the cheap closed-form inverses rather than storing them.
    Returns the kernel (filling the per-object log-likelihoods ``pointwise`` and the
    ``grad_*`` arrays of their sum; data objects last) and the per-object membership
    function (passes 1 and 2 only).
    """
    pairs = _upper_pairs(dim)
    n_pairs = len(pairs)
    norm_const = 0.5 * dim * LOG_2PI

    closed_form = (_closed_form_1d, _closed_form_2d, _closed_form_3d)[dim - 1]
    upper = (_upper_1d, _upper_2d, _upper_3d)[dim - 1]
    residual = (_residual_1d, _residual_2d, _residual_3d)[dim - 1]
    gradient_sums = (_gradient_sums_1d, _gradient_sums_2d, _gradient_sums_3d)[dim - 1]

    @numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
    def mixture_terms(values, error_cov, log_w, offsets, means, covs):
        """Passes 1 and 2: terms[k, i] = w_k N(y_i | mu_k, S_k + C_i) e^(o_ik - best_i),
        best_i and norm_i = sum_k terms[k, i], so that
        log sum_k w_k N_ik e^o_ik = best_i + log(norm_i) - (d / 2) log(2 pi)."""
        n_objects = values.shape[1]
        n_comp = means.shape[0]
        exponent = np.empty((n_comp, n_objects))
        terms = np.empty((n_comp, n_objects))
        for k in range(n_comp):  # pass 1: prefactor_ki exp(exponent_ki)
            weight = math.exp(log_w[k])
            for i in range(n_objects):
                r = residual(values, means, k, i)
                det, _, projected = closed_form(upper(covs, error_cov, k, i), r)
                quad = 0.0
                for p in range(dim):
                    quad += r[p] * projected[p]
                exponent[k, i] = -0.5 * quad
                terms[k, i] = weight / math.sqrt(det)
            if offsets.shape[0] > 0:
                for i in range(n_objects):
                    exponent[k, i] += offsets[i, k]
        # pass 2: shifted by the largest exponent (its term is >= its prefactor, so the
        # sum cannot underflow)
        best = exponent[0].copy()
        for k in range(1, n_comp):
            for i in range(n_objects):
                best[i] = max(best[i], exponent[k, i])
        norm = np.zeros(n_objects)
        for k in range(n_comp):
            for i in range(n_objects):
                exponent[k, i] -= best[i]
            exp_non_positive(exponent[k])
            for i in range(n_objects):
                terms[k, i] *= exponent[k, i]
                norm[i] += terms[k, i]
        return terms, best, norm

    @numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
    def membership(values, error_cov, log_w, offsets, means, covs, members,
                   responsibility, loglike):
        """Per object: the summed responsibility of the components k with members[k] = 1
        (a (K,) 0/1 array) and log sum_k w_k N_ik e^o_ik, written into the two (N,) arrays."""
        terms, best, norm = mixture_terms(values, error_cov, log_w, offsets, means, covs)
        for i in range(values.shape[1]):
            total = 0.0
            for k in range(means.shape[0]):
                total += members[k] * terms[k, i]
            responsibility[i] = total / norm[i]
            loglike[i] = best[i] + math.log(norm[i]) - norm_const

    @numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy")
    def kernel(values, error_cov, log_w, offsets, means, covs,
               grad_log_w, grad_offsets, grad_means, grad_covs, pointwise):
        n_objects = values.shape[1]
        n_comp = means.shape[0]
        with_offsets = offsets.shape[0] > 0
        terms, best, norm = mixture_terms(values, error_cov, log_w, offsets, means, covs)
        for i in range(n_objects):
            pointwise[i] = best[i] + math.log(norm[i]) - norm_const
            norm[i] = 1.0 / norm[i]
        for k in range(n_comp):  # pass 3: gradient sums, responsibility-weighted
            g_w, g_m, g_c = gradient_sums(values, error_cov, means, covs, terms, norm, k)
            grad_log_w[k] = g_w
            grad_covs[k] = 0.0
            for p in range(dim):
                grad_means[k, p] = g_m[p]
            for j in range(n_pairs):
                p, q = pairs[j]
                grad_covs[k, p, q] = 0.5 * g_c[j] if p == q else g_c[j]
            if with_offsets:
                for i in range(n_objects):
                    grad_offsets[i, k] = terms[k, i] * norm[i]

    return _cached_per_dim(kernel, dim), _cached_per_dim(membership, dim)


KERNELS = {dim: _specialised_kernel(dim) for dim in (1, 2, 3)}
MEMBERSHIP = {dim: kernels[1] for dim, kernels in KERNELS.items()}


def _specialised_loglike(dim: int):
    """Per-object log-likelihoods and the gradients of their sum as new arrays, through the
    kernel for ``dim`` (one dimension only, so that a compiled model contains, and Numba
    compiles, just the kernel it uses). The data come objects first, as the model holds
    them; the kernel reads them with objects last, contiguous, so that LLVM vectorises.
    Fortran-ordered data (as :func:`starmix.models.field.star_data` stores them) are that already,
    transposed; others are copied on every call. The error covariances are read
    transposed, (q, p) for (p, q): they are symmetric."""
    kernel = KERNELS[dim][0]

    @numba.njit(cache=True)
    def loglike_with_grads(values, error_cov, log_w, offsets, means, covs):
        values_t = np.ascontiguousarray(values.T)
        error_t = np.ascontiguousarray(error_cov.transpose(2, 1, 0))
        grads = (np.empty_like(log_w), np.empty_like(offsets), np.empty_like(means),
                 np.empty_like(covs))
        pointwise = np.empty(values.shape[0])
        kernel(values_t, error_t, log_w, offsets, means, covs, *grads, pointwise)
        return pointwise, grads[0], grads[1], grads[2], grads[3]

    return _cached_per_dim(loglike_with_grads, dim)


LOGLIKE_WITH_GRADS = {dim: _specialised_loglike(dim) for dim in KERNELS}


def fused_likelihood_node(output):
    """The :class:`MixtureLogLike` application that ``output`` (a model's likelihood term)
    is computed from, or None."""
    from pytensor.graph.traversal import ancestors

    for variable in ancestors([output]):
        if variable.owner is not None and isinstance(variable.owner.op, MixtureLogLike):
            return variable.owner
    return None


def _loglike_with_grads(values, error_cov, log_w, offsets, means, covs):
    return LOGLIKE_WITH_GRADS[values.shape[1]](values, error_cov, log_w, offsets, means, covs)


class MixtureLogLike(Op):
    """Outputs (L_i, dL/dlog_w, dL/doffsets, dL/dmeans, dL/dcovs), L_i the (N,) per-object
    log-likelihoods and L = Σ_i L_i; see the module docstring.

    Inputs: values (N, d) and error_cov (N, d, d) (data, no gradient); log_w (K,),
    offsets (N, K) or (0, K), means (K, d), covs (K, d, d).

    The gradients are computed with the values, in the same pass. They are those of L, so
    the Op's gradient is exact for L and for any multiple of it (a sampler's log density
    sums L_i with equal weights); a weighted sum Σ_i g_i L_i with unequal g_i is refused at
    run time, except through the offsets, whose gradient is per object and exact for any g.
    """

    __props__ = ()

    def make_node(self, values, error_cov, log_w, offsets, means, covs):
        inputs = [pt.as_tensor_variable(x).astype("float64")
                  for x in (values, error_cov, log_w, offsets, means, covs)]
        outputs = [pt.dvector()] + [x.type() for x in inputs[2:]]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, _loglike_with_grads(*inputs), strict=True):
            storage[0] = value

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0][:1], *input_shapes[2:]]

    def pullback(self, inputs, outputs, cotangents):
        from pytensor.raise_op import Assert

        per_object = cotangents[0]
        common = Assert("the fused mixture likelihood's gradient holds only for an "
                        "equally weighted sum over objects")(
            per_object[0], pt.all(pt.eq(per_object, per_object[0])))
        grad_log_w, grad_offsets, grad_means, grad_covs = outputs[1:]
        no_offsets = inputs[3].type.shape[0] == 0  # (0, K): none given
        offsets_grad = grad_offsets if no_offsets else per_object[:, None] * grad_offsets
        return [grad_undefined(self, 0, inputs[0], "data: no gradient"),
                grad_undefined(self, 1, inputs[1], "data: no gradient"),
                common * grad_log_w, offsets_grad, common * grad_means, common * grad_covs]


def mixture_loglike(values, error_cov, log_w, means, covs, offsets=None):
    """The (N,) per-object mixture log-likelihoods L_i through the fused Op.

    values (N, d) and error_cov (N, d, d): data (arrays or PyTensor variables holding
    data); log_w (K,), means (K, d), covs (K, d, d) and the optional per-object offsets
    (N, K): PyTensor expressions.
    """
    if offsets is None:
        offsets = pt.zeros((0, log_w.shape[0]))
    return MixtureLogLike()(values, error_cov, log_w, offsets, means, covs)[0]


# Salts PyTensor's on-disk cache key of compiled graphs (otherwise just the Op's type), so
# that a changed kernel is never replaced by a stale compiled copy.
_SOURCE_VERSION = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12], 16)


@register_funcify_default_op_cache_key(MixtureLogLike)
def _numba_mixture_loglike(op, node=None, **kwargs):
    dim = node.inputs[0].type.shape[1]  # (N, d) data of known d
    return LOGLIKE_WITH_GRADS[dim], _SOURCE_VERSION * 4 + dim
