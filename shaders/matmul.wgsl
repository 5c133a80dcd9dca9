// Matrix multiply for every Linear layer, forward and backward.
// Legend: B batch, T time, C channels, OC output channels, V vocab; N = B*T rows.
//
// One generic kernel, c[M,N] (+)= op(a)[M,K] · op(b)[K,N] (+ bias[N]), where op
// is given by strides, so the three forms a Linear layer needs share one tiled
// loop:
//   forward   out[N,OC]   = inp[N,C] · weightᵀ      (A·Bᵀ; b is weight [OC,C])
//   dinp      dinp[N,C]  += dout[N,OC] · weight     (A·B)
//   dweight   dweight[OC,C] += doutᵀ · inp          (Aᵀ·B)
// Element (m,k) of op(a) is a[m*a_rs + k*a_cs]; element (k,n) of op(b) is
// b[k*b_rs + n*b_cs]. Tiles of 32x32 outputs, 16 deep along K, go through
// workgroup memory; each of the 8x8 invocations owns a 4x4 block of outputs,
// kept as four vec4 rows. Measured on SwiftShader's WebGPU (nano step, B=4,
// T=16): 64x64 tiles of 16x16 invocations with the block as an array ran the
// matmuls about 3x slower — fewer workgroups to spread over CPU cores, more
// invocations to switch at every barrier, and a private array kept in memory.
// Not here: the bias gradient, which is a column sum (reduce.wgsl).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    // bit 0: accumulate into c (backward); bit 1: add bias
    flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;   // [M,N]
@group(0) @binding(2) var<storage, read> a: array<f32>;         // op(a) [M,K]
@group(0) @binding(3) var<storage, read> b: array<f32>;         // op(b) [K,N]
@group(0) @binding(4) var<storage, read> bias: array<f32>;      // [N], read only when flags bit 1

const TILE: u32 = 32u;
const DEPTH: u32 = 16u;
// invocations per workgroup: (TILE/4)^2, each owning a 4x4 block
const THREADS: u32 = 64u;

// k-major so the inner loop reads consecutive rows/columns
var<workgroup> a_tile: array<f32, 512>;   // [DEPTH][TILE]
var<workgroup> b_tile: array<f32, 512>;   // [DEPTH][TILE]

// Four outputs of row gm from column gn on, clipped to the matrix.
fn store_row(gm: u32, gn: u32, v: vec4<f32>) {
    if (gm >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let col = gn + j;
        if (col >= p.n) {
            return;
        }
        var x = v[j];
        if ((p.flags & 2u) != 0u) {
            x += bias[col];
        }
        let idx = gm * p.n + col;
        if ((p.flags & 1u) != 0u) {
            c[idx] += x;
        } else {
            c[idx] = x;
        }
    }
}

@compute @workgroup_size(8, 8)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    // a 4x4 block of outputs as four rows of vec4: plain registers, no private
    // array indexed at run time (which software GPUs keep in memory)
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += DEPTH) {
        for (var s = 0u; s < DEPTH * TILE / THREADS; s++) {
            let e = li + s * THREADS;
            // A: consecutive invocations walk along K (contiguous when a_cs == 1)
            let am = e / DEPTH;
            let ak = e % DEPTH;
            var av = 0.0;
            if (row0 + am < p.m && k0 + ak < p.k) {
                av = a[(row0 + am) * p.a_rs + (k0 + ak) * p.a_cs];
            }
            a_tile[ak * TILE + am] = av;
            // B: consecutive invocations walk along N (contiguous when b_cs == 1)
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
            let ai = kk * TILE + lid.y * 4u;
            let bi = kk * TILE + lid.x * 4u;
            let br = vec4<f32>(b_tile[bi], b_tile[bi + 1u], b_tile[bi + 2u], b_tile[bi + 3u]);
            acc0 = fma(vec4<f32>(a_tile[ai]), br, acc0);
            acc1 = fma(vec4<f32>(a_tile[ai + 1u]), br, acc1);
            acc2 = fma(vec4<f32>(a_tile[ai + 2u]), br, acc2);
            acc3 = fma(vec4<f32>(a_tile[ai + 3u]), br, acc3);
        }
        workgroupBarrier();
    }
    store_row(row0 + lid.y * 4u, col0 + lid.x * 4u, acc0);
    store_row(row0 + lid.y * 4u + 1u, col0 + lid.x * 4u, acc1);
    store_row(row0 + lid.y * 4u + 2u, col0 + lid.x * 4u, acc2);
    store_row(row0 + lid.y * 4u + 3u, col0 + lid.x * 4u, acc3);
}
