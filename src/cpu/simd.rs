//! The f32 backend's matmuls: one register-tiled kernel, `gemm`, that the
//! forward and both backward products are written as. A tile is R rows by
//! LANES columns of the output held in registers while K streams past; the
//! loops over `[f32; LANES]` are what LLVM turns into SIMD (simd128 in the
//! browser, SSE or AVX2 natively). Each output element still sums its K products
//! one after another from the first, the order `kernels::matmul_*` uses, so
//! the result is deterministic and the same on every machine.
//!
//! Legend: N rows (b*T), C input channels, OC output channels.
#![allow(clippy::too_many_arguments)]

/// Columns per register tile: two simd128 vectors, one AVX vector.
const LANES: usize = 8;
/// Rows per register tile.
const ROWS: usize = 4;
/// Rows of B streamed per pass and columns of it per block, so a block of B
/// (128 KB) stays in cache while every row tile of A passes over it.
const K_BLOCK: usize = 128;
const N_BLOCK: usize = 256;

/// A [M,K] read with strides: element (i, k) at `data[i * row + k * col]`,
/// so a transposed operand needs no copy of its own (tiles of it are packed).
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

/// Multiply-adds from which a product is cut among threads. On two cores
/// the cut gained nothing for one run's whole step, but it fills the second
/// core while a lab's third run steps, and a machine with more cores than
/// runs needs it (BENCHMARKS.md, "Threads for the f32 CPU backend").
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// out = or += a · b. A product big enough is cut into blocks of whole
/// output rows, one per thread (`threads`), each reading the same B, packed
/// once before the cut; on one thread B is packed a block at a time into one
/// buffer that stays in cache. Each output is
/// still summed by one thread in the same order, so the bits do not depend
/// on the number of threads.
fn gemm(out: &mut [f32], a: Strided, b: &[f32], p: Product) {
    if let Some(rows) = rows_per_thread(p, super::threads::available()) {
        let packed = PackedB::new(b, p);
        // the rows the product writes: the last needs only n of its ldo floats
        let len = (p.m - 1) * p.ldo + p.n;
        let blocks: Vec<_> = out[..len].chunks_mut(rows * p.ldo).enumerate().collect();
        super::threads::for_each(blocks, |(block, out)| {
            let i0 = block * rows;
            // element (i0 + i, k) of A is element (i, k) of A from row i0 on
            let a = Strided { data: &a.data[i0 * a.row..], ..a };
            gemm_rows(out, a, &packed, b, Product { m: rows.min(p.m - i0), ..p });
        });
        return;
    }
    gemm_rows(out, a, EachBlock(Vec::with_capacity(K_BLOCK * N_BLOCK / LANES)), b, p)
}

/// Rows per thread when `p` is worth splitting over `threads`: a multiple
/// of the register tile's rows, so that only the last block can end in a
/// tile of fewer rows.
fn rows_per_thread(p: Product, threads: usize) -> Option<usize> {
    if threads < 2 || p.m * p.n * p.k < PARALLEL_MIN_WORK {
        return None;
    }
    let rows = p.m.div_ceil(threads).next_multiple_of(ROWS);
    (rows < p.m).then_some(rows)
}

/// B [K,N] as panels of LANES columns, block by block: for each block of
/// K_BLOCK rows and each block of N_BLOCK columns, the block's whole panels
/// one after another, each panel's rows one after another (rows of B a power
/// of two apart would share cache sets). A block's last N_BLOCK % LANES
/// columns are not packed: the tiles read them from B itself.
struct PackedB {
    panels: Vec<[f32; LANES]>,
    /// where block (k block, n block) starts in `panels`, row-major over the
    /// blocks, and one past the end
    starts: Vec<usize>,
    n_blocks: usize,
}

impl PackedB {
    fn new(b: &[f32], p: Product) -> Self {
        let n_blocks = p.n.div_ceil(N_BLOCK);
        let mut panels = Vec::with_capacity(p.k * (p.n / LANES));
        let mut starts = Vec::with_capacity(p.k.div_ceil(K_BLOCK) * n_blocks + 1);
        for k0 in (0..p.k).step_by(K_BLOCK) {
            for j_start in (0..p.n).step_by(N_BLOCK) {
                starts.push(panels.len());
                pack_block(&mut panels, b, p, k0, j_start);
            }
        }
        starts.push(panels.len());
        Self { panels, starts, n_blocks }
    }

    /// The panels of the block of K from `k0` and of N from `j_start`.
    fn block(&self, k0: usize, j_start: usize) -> &[[f32; LANES]] {
        let i = (k0 / K_BLOCK) * self.n_blocks + j_start / N_BLOCK;
        &self.panels[self.starts[i]..self.starts[i + 1]]
    }
}

/// Appends to `panels` the whole panels of B's block from row `k0` and
/// column `j_start` (PackedB's layout for one block).
#[inline(always)]
fn pack_block(panels: &mut Vec<[f32; LANES]>, b: &[f32], p: Product, k0: usize, j_start: usize) {
    let ks = k0..(k0 + K_BLOCK).min(p.k);
    let end = (j_start + N_BLOCK).min(p.n);
    for j0 in (j_start..end).step_by(LANES).filter(|j0| j0 + LANES <= end) {
        panels.extend(
            ks.clone()
                .map(|kk| <[f32; LANES]>::try_from(&b[kk * p.ldb + j0..][..LANES]).unwrap_or_else(|_| unreachable!())),
        );
    }
}

/// Where a thread finds B's panels, block by block: packed once for every
/// thread (`&PackedB`), or packed here a block at a time (`EachBlock`).
/// Generic rather than a value, so each kind gets its own copy of the loops.
trait Panels {
    fn block(&mut self, b: &[f32], p: Product, k0: usize, j_start: usize) -> &[[f32; LANES]];
}

impl Panels for &PackedB {
    #[inline(always)]
    fn block(&mut self, _: &[f32], _: Product, k0: usize, j_start: usize) -> &[[f32; LANES]] {
        PackedB::block(self, k0, j_start)
    }
}

struct EachBlock(Vec<[f32; LANES]>);

impl Panels for EachBlock {
    #[inline(always)]
    fn block(&mut self, b: &[f32], p: Product, k0: usize, j_start: usize) -> &[[f32; LANES]] {
        self.0.clear();
        pack_block(&mut self.0, b, p, k0, j_start);
        &self.0
    }
}

/// out = or += a · b for a's rows, on this thread. On x86-64 with AVX2 the
/// same code is compiled a second time for 256-bit registers and picked at
/// run time; it computes the same bits (no FMA).
fn gemm_rows(out: &mut [f32], a: Strided, panels: impl Panels, b: &[f32], p: Product) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: this CPU has AVX2, checked just above.
        return unsafe { gemm_avx2(out, a, panels, b, p) };
    }
    gemm_tiles(out, a, panels, b, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(out: &mut [f32], a: Strided, panels: impl Panels, b: &[f32], p: Product) {
    gemm_tiles(out, a, panels, b, p)
}

#[inline(always)]
fn gemm_tiles(out: &mut [f32], a: Strided, mut panels: impl Panels, b: &[f32], p: Product) {
    let Product { m, n, k, ldo, ldb, accumulate } = p;
    if !accumulate {
        for i in 0..m {
            out[i * ldo..i * ldo + n].fill(0.0);
        }
    }
    // a tile of A (ROWS rows over one block of K) packed k-major, so the
    // inner loop reads its R values for one k side by side whatever A's strides
    let mut packed = vec![[0.0f32; ROWS]; K_BLOCK.min(k)];
    let pack = |packed: &mut [[f32; ROWS]], i0: usize, rows: usize, k0: usize| {
        for (kk, p) in packed.iter_mut().enumerate() {
            for (r, x) in p[..rows].iter_mut().enumerate() {
                *x = a.data[(i0 + r) * a.row + (k0 + kk) * a.col];
            }
        }
    };
    for k0 in (0..k).step_by(K_BLOCK) {
        let kb = K_BLOCK.min(k - k0);
        let packed = &mut packed[..kb];
        for j_start in (0..n).step_by(N_BLOCK) {
            let cols = j_start..(j_start + N_BLOCK).min(n);
            let panels = panels.block(b, p, k0, j_start);
            let mut i0 = 0;
            while i0 + ROWS <= m {
                pack(packed, i0, ROWS, k0);
                tile_rows::<ROWS>(out, ldo, packed, panels, b, ldb, i0, cols.clone(), k0);
                i0 += ROWS;
            }
            for i in i0..m {
                pack(packed, i, 1, k0);
                tile_rows::<1>(out, ldo, packed, panels, b, ldb, i, cols.clone(), k0);
            }
        }
    }
}

/// Rows i0..i0+R, columns `cols` of out += a·b over k0..k0+packed.len(),
/// LANES columns at a time, with A's values for those rows in `packed` (row
/// r in lane r) and B's in `panels` (one panel of packed.len() rows per
/// LANES columns; the last cols.len() % LANES columns read `b` itself).
#[inline(always)]
fn tile_rows<const R: usize>(
    out: &mut [f32],
    ldo: usize,
    packed: &[[f32; ROWS]],
    panels: &[[f32; LANES]],
    b: &[f32],
    ldb: usize,
    i0: usize,
    cols: std::ops::Range<usize>,
    k0: usize,
) {
    let (mut j0, n) = (cols.start, cols.end);
    for panel in panels.chunks_exact(packed.len()) {
        let mut acc = [[0.0f32; LANES]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&out[(i0 + r) * ldo + j0..][..LANES]);
        }
        for (ap, brow) in packed.iter().zip(panel) {
            for (acc, &x) in acc.iter_mut().zip(ap) {
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
            for (kk, ap) in packed.iter().enumerate() {
                s += ap[r] * b[(k0 + kk) * ldb + j];
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
    // in 32 x 32 blocks: a plain loop would write each float a page apart
    let mut weight_t = vec![0.0f32; c * oc];
    for o0 in (0..oc).step_by(32) {
        for i0 in (0..c).step_by(32) {
            for o in o0..(o0 + 32).min(oc) {
                for i in i0..(i0 + 32).min(c) {
                    weight_t[i * oc + o] = weight[o * c + i];
                }
            }
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
