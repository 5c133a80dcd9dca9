//! The f32 backend's matmuls: one register-tiled kernel, `gemm`, that the
//! forward and both backward products are written as. A tile is R rows by
//! LANES columns of the output held in registers while K streams past; the
//! loops over `[f32; LANES]` are what LLVM turns into SIMD (simd128 in the
//! browser, SSE or AVX2 natively). Each output element still sums its K products
//! one after another from the first, the order `kernels::matmul_*` uses, so
//! the result is deterministic and the same on every machine.
//!
//! Legend: N rows (B*T), C input channels, OC output channels.
#![allow(clippy::too_many_arguments)]

/// Columns per register tile: two simd128 vectors, one AVX vector.
const LANES: usize = 8;
/// Rows per register tile.
const ROWS: usize = 4;
/// Rows of B streamed per pass, so a pass's slice of B stays in cache.
const K_BLOCK: usize = 128;

/// A [M,K] read with strides: element (i, k) at `data[i * row + k * col]`,
/// so a transposed operand costs nothing.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    row: usize,
    col: usize,
}

/// The sizes of one product: out [M,N] (row stride ldo) = or += a [M,K] ·
/// b [K,N] (row stride ldb).
#[derive(Clone, Copy)]
struct Product {
    m: usize,
    n: usize,
    k: usize,
    ldo: usize,
    ldb: usize,
    accumulate: bool,
}

/// out = or += a · b. On x86-64 with AVX2 the same code is compiled a second
/// time for 256-bit registers and picked at run time; it computes the same
/// bits (no FMA).
fn gemm(out: &mut [f32], a: Strided, b: &[f32], p: Product) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: this CPU has AVX2, checked just above.
        return unsafe { gemm_avx2(out, a, b, p) };
    }
    gemm_tiles(out, a, b, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(out: &mut [f32], a: Strided, b: &[f32], p: Product) {
    gemm_tiles(out, a, b, p)
}

#[inline(always)]
fn gemm_tiles(out: &mut [f32], a: Strided, b: &[f32], p: Product) {
    let Product { m, n, k, ldo, ldb, accumulate } = p;
    if !accumulate {
        for i in 0..m {
            out[i * ldo..i * ldo + n].fill(0.0);
        }
    }
    for k0 in (0..k).step_by(K_BLOCK) {
        let ks = k0..(k0 + K_BLOCK).min(k);
        let mut i0 = 0;
        while i0 + ROWS <= m {
            tile_rows::<ROWS>(out, ldo, a, b, ldb, i0, n, ks.clone());
            i0 += ROWS;
        }
        for i in i0..m {
            tile_rows::<1>(out, ldo, a, b, ldb, i, n, ks.clone());
        }
    }
}

/// Rows i0..i0+R of out += a·b over the k in `ks`, LANES columns at a time.
#[inline(always)]
fn tile_rows<const R: usize>(
    out: &mut [f32],
    ldo: usize,
    a: Strided,
    b: &[f32],
    ldb: usize,
    i0: usize,
    n: usize,
    ks: std::ops::Range<usize>,
) {
    let mut j0 = 0;
    while j0 + LANES <= n {
        let mut acc = [[0.0f32; LANES]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&out[(i0 + r) * ldo + j0..][..LANES]);
        }
        for kk in ks.clone() {
            let brow: &[f32; LANES] = b[kk * ldb + j0..][..LANES].try_into().unwrap_or_else(|_| unreachable!());
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = a.data[(i0 + r) * a.row + kk * a.col];
                for l in 0..LANES {
                    acc[l] += x * brow[l];
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            out[(i0 + r) * ldo + j0..][..LANES].copy_from_slice(acc);
        }
        j0 += LANES;
    }
    // the last n % LANES columns, one element at a time in the same order
    for r in 0..R {
        for j in j0..n {
            let mut s = out[(i0 + r) * ldo + j];
            for kk in ks.clone() {
                s += a.data[(i0 + r) * a.row + kk * a.col] * b[kk * ldb + j];
            }
            out[(i0 + r) * ldo + j] = s;
        }
    }
}

/// out [N,OC] = inp [N,C] · weightᵀ (weight [OC,C]) + bias [OC]
pub fn matmul_forward(
    out: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    c: usize,
    oc: usize,
) {
    // weightᵀ [C,OC], so each k brings a contiguous row of outputs' weights
    let mut weight_t = vec![0.0f32; c * oc];
    for o in 0..oc {
        for i in 0..c {
            weight_t[i * oc + o] = weight[o * c + i];
        }
    }
    gemm(
        out,
        Strided { data: inp, row: c, col: 1 },
        &weight_t,
        Product { m: n, n: oc, k: c, ldo: oc, ldb: oc, accumulate: false },
    );
    if let Some(bias) = bias {
        for row in out[..n * oc].chunks_exact_mut(oc) {
            for (o, b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

/// dinp [N,C] += dout [N,OC] · weight [OC,C]; dweight [OC,C] += doutᵀ · inp; dbias [OC] += Σ_rows dout.
/// A frozen weight (LoRA) passes no `dweight` and gets no gradient.
pub fn matmul_backward(
    dinp: &mut [f32],
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    n: usize,
    c: usize,
    oc: usize,
) {
    gemm(
        dinp,
        Strided { data: dout, row: oc, col: 1 },
        weight,
        Product { m: n, n: c, k: oc, ldo: c, ldb: c, accumulate: true },
    );
    if let Some(dweight) = dweight {
        gemm(
            dweight,
            Strided { data: dout, row: 1, col: oc },
            inp,
            Product { m: oc, n: c, k: n, ldo: c, ldb: c, accumulate: true },
        );
    }
    if let Some(dbias) = dbias {
        for row in dout[..n * oc].chunks_exact(oc) {
            for (d, g) in dbias.iter_mut().zip(row) {
                *d += g;
            }
        }
    }
}
