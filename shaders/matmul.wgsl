// Matrix multiply for every Linear layer, forward and backward.
// Legend: b sequences per micro-batch, T time, C channels, OC output channels, V vocab; N = b*T rows.
//
// One generic kernel, c[M,N] (+)= alpha · op(a)[M,K] · op(b)[K,N] (+ bias[N]),
// where op is given by strides, so the three forms a Linear layer needs share
// one tiled loop:
//   forward   out[N,OC]   = inp[N,C] · weightᵀ      (A·Bᵀ; b is weight [OC,C])
//   dinp      dinp[N,C]  += dout[N,OC] · weight     (A·B)
//   dweight   dweight[OC,C] += doutᵀ · inp          (Aᵀ·B)
// and so do LoRA's: the merge W += (α/r)·B·A and the adapters' backward, with
// alpha carrying α/r (rank r is the K or N of those products; see kernels.rs).
// Element (m,k) of op(a) is a[m*a_rs + k*a_cs]; element (k,n) of op(b) is
// b[k*b_rs + n*b_cs]. Tiles of 64x64 outputs, 16 deep along K, go through
// workgroup memory; each of the 8x8 invocations owns an 8x8 block of outputs,
// kept as sixteen vec4 registers (no private array indexed at run time, which
// software adapters keep in memory); each step along K reads 16 values from
// the tiles for 64 multiply-adds. The bigger the block an invocation owns, the
// fewer tile reads per multiply-add (a 4x4 block needs 8 for 16), so 8x8 blocks
// were measured faster than 4x4 ones, and blocks in registers faster than
// blocks in a private array; the timings belong with the benchmarks.
// On software adapters, matmul_dot4 and matmul_cols4 (at the end) read the
// operands four floats a load; see them.
// The forward's epilogue can also add the residual stream (the attention and
// MLP projections write the block's next residual directly) or apply GELU
// (the MLP's first Linear writes its pre-activation for the backward and the
// activation beside it), so neither needs a dispatch of its own.
// Not here: the bias gradient, which is a column sum (reduce.wgsl).

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    // (the epilogue is FLAGS, below: a pipeline constant, not a uniform)
    _pad0: u32,
    // factor on the product, before the bias
    alpha: f32,
    // matmul_direct: the K each slice z = gid.z sums (all of K unless split)
    k_slice: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;   // [M,N]
@group(0) @binding(2) var<storage, read> a: array<f32>;         // op(a) [M,K]
@group(0) @binding(3) var<storage, read> b: array<f32>;         // op(b) [K,N]
@group(0) @binding(4) var<storage, read> bias: array<f32>;      // [N], read only when FLAGS bit 1
@group(0) @binding(5) var<storage, read_write> aux: array<f32>; // [M,N], only when FLAGS bit 2 or 3
// bindings 2 and 3 seen four floats at a time (no entry point uses both views
// of one binding): by matmul_dot4 both along K, by matmul_cols4 b along N
@group(0) @binding(2) var<storage, read> a_fours: array<vec4<f32>>;  // op(a) [M,K/4]
@group(0) @binding(3) var<storage, read> b_fours: array<vec4<f32>>;  // op(b)ᵀ [N,K/4] or op(b) [K,N/4]

// The epilogue, fixed when the pipeline is built (kernels.rs compiles one
// pipeline per kernel and epilogue used): bit 0 accumulate into c (backward);
// bit 1 add bias; bit 2 add the residual aux [M,N]; bit 3 c gets the
// pre-activation, aux GELU of it. A constant rather than a uniform word,
// because a software adapter runs every branch of a uniform condition for
// every output; specialised, the branches not taken compile away.
override FLAGS: u32 = 0u;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

// GELU's tanh form, as gelu.wgsl computes it (tanh from exp, saturating)
fn gelu(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    let e = exp(-2.0 * abs(u));
    return 0.5 * x * (1.0 + sign(u) * (1.0 - e) / (1.0 + e));
}

const TILE: u32 = 64u;
const DEPTH: u32 = 16u;
// invocations per workgroup: (TILE/8)^2, each owning an 8x8 block
const THREADS: u32 = 64u;

// k-major so the inner loop reads consecutive rows/columns
var<workgroup> a_tile: array<f32, 1024>;   // [DEPTH][TILE]
var<workgroup> b_tile: array<f32, 1024>;   // [DEPTH][TILE]

// Four outputs of row gm from column gn on, clipped to the matrix, into
// slice z of c (z > 0 only when K is split: every slice but the first leaves
// the bias out, and the slices overwrite, to be summed by column_sums).
fn store4(z: u32, gm: u32, gn: u32, v: vec4<f32>) {
    if (gm >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let col = gn + j;
        if (col >= p.n) {
            return;
        }
        var x = p.alpha * v[j];
        if ((FLAGS & 2u) != 0u && z == 0u) {
            x += bias[col];
        }
        let idx = (z * p.m + gm) * p.n + col;
        if ((FLAGS & 4u) != 0u) {
            x = aux[idx] + x;
        }
        if ((FLAGS & 1u) != 0u) {
            c[idx] += x;
        } else {
            c[idx] = x;
        }
        if ((FLAGS & 8u) != 0u) {
            aux[idx] = gelu(x);
        }
    }
}

// The 4x8 block of outputs from row r and column cl on (rows in l_i for the
// first four columns, h_i for the next four), clipped, into slice z: the
// store of matmul_direct, and of each half of its vec4 variants' 8x8 blocks.
fn store_block(z: u32, r: u32, cl: u32, l0: vec4<f32>, h0: vec4<f32>, l1: vec4<f32>, h1: vec4<f32>,
               l2: vec4<f32>, h2: vec4<f32>, l3: vec4<f32>, h3: vec4<f32>) {
    store4(z, r, cl, l0); store4(z, r, cl + 4u, h0);
    store4(z, r + 1u, cl, l1); store4(z, r + 1u, cl + 4u, h1);
    store4(z, r + 2u, cl, l2); store4(z, r + 2u, cl + 4u, h2);
    store4(z, r + 3u, cl, l3); store4(z, r + 3u, cl + 4u, h3);
}

// Where rows r .. r+3 start in an operand whose rows are `stride` apart;
// rows past the matrix start where its last one does (store4 drops them).
fn block_rows(r: u32, stride: u32) -> vec4<u32> {
    let last = p.m - 1u;
    return vec4<u32>(min(r, last), min(r + 1u, last), min(r + 2u, last), min(r + 3u, last)) * stride;
}

// c [M,N] (+)= alpha · op(a) [M,K] · op(b) [K,N] (+ bias [N]); one workgroup per 64x64 tile of c
@compute @workgroup_size(8, 8)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    // rows r of the 8x8 block: left half l_r, right half h_r
    var l0 = vec4<f32>(0.0); var h0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0); var h1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0); var h2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0); var h3 = vec4<f32>(0.0);
    var l4 = vec4<f32>(0.0); var h4 = vec4<f32>(0.0);
    var l5 = vec4<f32>(0.0); var h5 = vec4<f32>(0.0);
    var l6 = vec4<f32>(0.0); var h6 = vec4<f32>(0.0);
    var l7 = vec4<f32>(0.0); var h7 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += DEPTH) {
        for (var s = 0u; s < DEPTH * TILE / THREADS; s++) {
            let e = li + s * THREADS;
            let am = e / DEPTH;
            let ak = e % DEPTH;
            var av = 0.0;
            if (row0 + am < p.m && k0 + ak < p.k) {
                av = a[(row0 + am) * p.a_rs + (k0 + ak) * p.a_cs];
            }
            a_tile[ak * TILE + am] = av;
            let bk = e / TILE;
            let bn = e % TILE;
            var bv = 0.0;
            if (col0 + bn < p.n && k0 + bk < p.k) {
                bv = b[(k0 + bk) * p.b_rs + (col0 + bn) * p.b_cs];
            }
            b_tile[bk * TILE + bn] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < DEPTH; kk++) {
            let ai = kk * TILE + lid.y * 8u;
            let bi = kk * TILE + lid.x * 8u;
            let bl = vec4<f32>(b_tile[bi], b_tile[bi + 1u], b_tile[bi + 2u], b_tile[bi + 3u]);
            let bh = vec4<f32>(b_tile[bi + 4u], b_tile[bi + 5u], b_tile[bi + 6u], b_tile[bi + 7u]);
            var x = a_tile[ai];
            l0 = fma(vec4<f32>(x), bl, l0); h0 = fma(vec4<f32>(x), bh, h0);
            x = a_tile[ai + 1u];
            l1 = fma(vec4<f32>(x), bl, l1); h1 = fma(vec4<f32>(x), bh, h1);
            x = a_tile[ai + 2u];
            l2 = fma(vec4<f32>(x), bl, l2); h2 = fma(vec4<f32>(x), bh, h2);
            x = a_tile[ai + 3u];
            l3 = fma(vec4<f32>(x), bl, l3); h3 = fma(vec4<f32>(x), bh, h3);
            x = a_tile[ai + 4u];
            l4 = fma(vec4<f32>(x), bl, l4); h4 = fma(vec4<f32>(x), bh, h4);
            x = a_tile[ai + 5u];
            l5 = fma(vec4<f32>(x), bl, l5); h5 = fma(vec4<f32>(x), bh, h5);
            x = a_tile[ai + 6u];
            l6 = fma(vec4<f32>(x), bl, l6); h6 = fma(vec4<f32>(x), bh, h6);
            x = a_tile[ai + 7u];
            l7 = fma(vec4<f32>(x), bl, l7); h7 = fma(vec4<f32>(x), bh, h7);
        }
        workgroupBarrier();
    }
    let r = row0 + lid.y * 8u;
    let cl = col0 + lid.x * 8u;
    store4(0u, r, cl, l0); store4(0u, r, cl + 4u, h0);
    store4(0u, r + 1u, cl, l1); store4(0u, r + 1u, cl + 4u, h1);
    store4(0u, r + 2u, cl, l2); store4(0u, r + 2u, cl + 4u, h2);
    store4(0u, r + 3u, cl, l3); store4(0u, r + 3u, cl + 4u, h3);
    store4(0u, r + 4u, cl, l4); store4(0u, r + 4u, cl + 4u, h4);
    store4(0u, r + 5u, cl, l5); store4(0u, r + 5u, cl + 4u, h5);
    store4(0u, r + 6u, cl, l6); store4(0u, r + 6u, cl + 4u, h6);
    store4(0u, r + 7u, cl, l7); store4(0u, r + 7u, cl + 4u, h7);
}

// The same product with no workgroup memory and no barrier, for short K
// (K <= SHORT_K in kernels.rs: the model's forward Linears read K = C), for
// every product on a software adapter, and on a real GPU for every product
// under TILED_MIN_OUTPUTS outputs (kernels.rs says why): each of the 8x8 invocations
// reads its operands straight from storage and owns a 4x8 block of outputs,
// so a workgroup covers 32 rows and 64 columns. With so few steps along K,
// staging tiles costs more than it saves; on a software adapter workgroup
// memory is more of the same CPU memory and a barrier suspends every
// invocation, so it never pays. Each output is summed in the order of k, one
// fma at a time, as in `matmul`.
// A product with few blocks of outputs and a long K (a weight's gradient
// sums over all b*T rows) would leave most of a real GPU idle, so kernels.rs
// may split K into slices, one per gid.z: slice z sums its k_slice steps
// into c [z, M, N] of a scratch, and column_sums adds the slices in order.
// c [M,N] (+)= alpha · op(a) [M,K] · op(b) [K,N] (+ bias [N]); one workgroup per 32x64 block of c (per slice of K)
@compute @workgroup_size(8, 8)
fn matmul_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.y * 4u;
    let cl = gid.x * 8u;
    if (r >= p.m || cl >= p.n) {
        return;
    }
    // rows and columns past the matrix read its last one; store4 drops them
    let rows = block_rows(r, p.a_rs);
    let a0 = rows.x; let a1 = rows.y; let a2 = rows.z; let a3 = rows.w;
    let b0 = min(cl, p.n - 1u) * p.b_cs;
    let b1 = min(cl + 1u, p.n - 1u) * p.b_cs;
    let b2 = min(cl + 2u, p.n - 1u) * p.b_cs;
    let b3 = min(cl + 3u, p.n - 1u) * p.b_cs;
    let b4 = min(cl + 4u, p.n - 1u) * p.b_cs;
    let b5 = min(cl + 5u, p.n - 1u) * p.b_cs;
    let b6 = min(cl + 6u, p.n - 1u) * p.b_cs;
    let b7 = min(cl + 7u, p.n - 1u) * p.b_cs;
    var l0 = vec4<f32>(0.0); var h0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0); var h1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0); var h2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0); var h3 = vec4<f32>(0.0);
    let z = gid.z;
    let k_end = min(p.k, (z + 1u) * p.k_slice);
    for (var k = z * p.k_slice; k < k_end; k++) {
        let ka = k * p.a_cs;
        let kb = k * p.b_rs;
        let bl = vec4<f32>(b[kb + b0], b[kb + b1], b[kb + b2], b[kb + b3]);
        let bh = vec4<f32>(b[kb + b4], b[kb + b5], b[kb + b6], b[kb + b7]);
        var x = a[a0 + ka];
        l0 = fma(vec4<f32>(x), bl, l0); h0 = fma(vec4<f32>(x), bh, h0);
        x = a[a1 + ka];
        l1 = fma(vec4<f32>(x), bl, l1); h1 = fma(vec4<f32>(x), bh, h1);
        x = a[a2 + ka];
        l2 = fma(vec4<f32>(x), bl, l2); h2 = fma(vec4<f32>(x), bh, h2);
        x = a[a3 + ka];
        l3 = fma(vec4<f32>(x), bl, l3); h3 = fma(vec4<f32>(x), bh, h3);
    }
    store_block(z, r, cl, l0, h0, l1, h1, l2, h2, l3, h3);
}

// matmul_direct for the forward form, where both operands run along K
// (a_cs = b_rs = 1; K, a_rs and b_cs multiples of 4): each invocation reads
// four K at a time as one vec4 per row and column, a quarter of the loads,
// which is where a software adapter's time goes. Its block is 8x8, twice
// matmul_direct's rows: a software adapter's lanes load a float at a time
// whatever the type, so the fewer loads per multiply-add the better, while
// registers that spill cost it little (its lanes store and reload all
// together). Never split.
// c [M,N] (+)= alpha · a [M,K] · bᵀ (b [N,K]) (+ bias [N]); one workgroup per 64x64 block of c
@compute @workgroup_size(8, 8)
fn matmul_dot4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.y * 8u;
    let cl = gid.x * 8u;
    if (r >= p.m || cl >= p.n) {
        return;
    }
    let ar = p.a_rs / 4u;
    let bc = p.b_cs / 4u;
    // rows and columns past the matrix read its last one; store4 drops them
    let rows = block_rows(r, ar);
    let a0 = rows.x; let a1 = rows.y; let a2 = rows.z; let a3 = rows.w;
    let rows2 = block_rows(r + 4u, ar);
    let a4 = rows2.x; let a5 = rows2.y; let a6 = rows2.z; let a7 = rows2.w;
    let b0 = min(cl, p.n - 1u) * bc;
    let b1 = min(cl + 1u, p.n - 1u) * bc;
    let b2 = min(cl + 2u, p.n - 1u) * bc;
    let b3 = min(cl + 3u, p.n - 1u) * bc;
    let b4 = min(cl + 4u, p.n - 1u) * bc;
    let b5 = min(cl + 5u, p.n - 1u) * bc;
    let b6 = min(cl + 6u, p.n - 1u) * bc;
    let b7 = min(cl + 7u, p.n - 1u) * bc;
    var l0 = vec4<f32>(0.0); var h0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0); var h1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0); var h2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0); var h3 = vec4<f32>(0.0);
    var l4 = vec4<f32>(0.0); var h4 = vec4<f32>(0.0);
    var l5 = vec4<f32>(0.0); var h5 = vec4<f32>(0.0);
    var l6 = vec4<f32>(0.0); var h6 = vec4<f32>(0.0);
    var l7 = vec4<f32>(0.0); var h7 = vec4<f32>(0.0);
    for (var k = 0u; k < p.k / 4u; k++) {
        let y0 = b_fours[b0 + k]; let y1 = b_fours[b1 + k]; let y2 = b_fours[b2 + k]; let y3 = b_fours[b3 + k];
        let y4 = b_fours[b4 + k]; let y5 = b_fours[b5 + k]; let y6 = b_fours[b6 + k]; let y7 = b_fours[b7 + k];
        var x = a_fours[a0 + k];
        l0 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h0 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a1 + k];
        l1 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h1 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a2 + k];
        l2 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h2 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a3 + k];
        l3 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h3 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a4 + k];
        l4 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h4 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a5 + k];
        l5 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h5 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a6 + k];
        l6 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h6 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
        x = a_fours[a7 + k];
        l7 += vec4<f32>(dot(x, y0), dot(x, y1), dot(x, y2), dot(x, y3));
        h7 += vec4<f32>(dot(x, y4), dot(x, y5), dot(x, y6), dot(x, y7));
    }
    store_block(0u, r, cl, l0, h0, l1, h1, l2, h2, l3, h3);
    // rows from r + 4 on: none left when the block's first half ends the matrix
    if (r + 4u < p.m) {
        store_block(0u, r + 4u, cl, l4, h4, l5, h5, l6, h6, l7, h7);
    }
}

// matmul_direct for the backward forms, where op(b)'s rows run along N
// (b_cs = 1, b_rs a multiple of 4): the eight columns of a step along K are
// two vec4 loads instead of eight. a is read a float per row as in
// matmul_direct. Columns past N read whatever follows the row (or, past the
// buffer's end, what WGSL's bounds clamp gives); store4 drops them. Its block
// is 8x8, as matmul_dot4's. Never split.
// c [M,N] (+)= alpha · op(a) [M,K] · b [K,N] (+ bias [N]); one workgroup per 64x64 block of c
@compute @workgroup_size(8, 8)
fn matmul_cols4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.y * 8u;
    let cl = gid.x * 8u;
    if (r >= p.m || cl >= p.n) {
        return;
    }
    let rows = block_rows(r, p.a_rs);
    let a0 = rows.x; let a1 = rows.y; let a2 = rows.z; let a3 = rows.w;
    let rows2 = block_rows(r + 4u, p.a_rs);
    let a4 = rows2.x; let a5 = rows2.y; let a6 = rows2.z; let a7 = rows2.w;
    let br = p.b_rs / 4u;
    let bc = cl / 4u;
    var l0 = vec4<f32>(0.0); var h0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0); var h1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0); var h2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0); var h3 = vec4<f32>(0.0);
    var l4 = vec4<f32>(0.0); var h4 = vec4<f32>(0.0);
    var l5 = vec4<f32>(0.0); var h5 = vec4<f32>(0.0);
    var l6 = vec4<f32>(0.0); var h6 = vec4<f32>(0.0);
    var l7 = vec4<f32>(0.0); var h7 = vec4<f32>(0.0);
    for (var k = 0u; k < p.k; k++) {
        let ka = k * p.a_cs;
        let bl = b_fours[k * br + bc];
        let bh = b_fours[k * br + bc + 1u];
        var x = a[a0 + ka];
        l0 = fma(vec4<f32>(x), bl, l0); h0 = fma(vec4<f32>(x), bh, h0);
        x = a[a1 + ka];
        l1 = fma(vec4<f32>(x), bl, l1); h1 = fma(vec4<f32>(x), bh, h1);
        x = a[a2 + ka];
        l2 = fma(vec4<f32>(x), bl, l2); h2 = fma(vec4<f32>(x), bh, h2);
        x = a[a3 + ka];
        l3 = fma(vec4<f32>(x), bl, l3); h3 = fma(vec4<f32>(x), bh, h3);
        x = a[a4 + ka];
        l4 = fma(vec4<f32>(x), bl, l4); h4 = fma(vec4<f32>(x), bh, h4);
        x = a[a5 + ka];
        l5 = fma(vec4<f32>(x), bl, l5); h5 = fma(vec4<f32>(x), bh, h5);
        x = a[a6 + ka];
        l6 = fma(vec4<f32>(x), bl, l6); h6 = fma(vec4<f32>(x), bh, h6);
        x = a[a7 + ka];
        l7 = fma(vec4<f32>(x), bl, l7); h7 = fma(vec4<f32>(x), bh, h7);
    }
    store_block(0u, r, cl, l0, h0, l1, h1, l2, h2, l3, h3);
    // rows from r + 4 on: none left when the block's first half ends the matrix
    if (r + 4u < p.m) {
        store_block(0u, r + 4u, cl, l4, h4, l5, h5, l6, h6, l7, h7);
    }
}
