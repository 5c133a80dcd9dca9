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
// b[k*b_rs + n*b_cs]. Tiles of 64x64 outputs, 16 deep along K, go through
// workgroup memory; each of the 16x16 invocations owns a 4x4 block of outputs.
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

const TILE: u32 = 64u;
const DEPTH: u32 = 16u;

// k-major so the inner loop reads consecutive rows/columns
var<workgroup> a_tile: array<f32, 1024>;   // [DEPTH][TILE]
var<workgroup> b_tile: array<f32, 1024>;   // [DEPTH][TILE]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < p.k; k0 += DEPTH) {
        for (var s = 0u; s < 4u; s++) {
            let e = li + s * 256u;
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
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = a_tile[kk * TILE + lid.y * 4u + i];
                br[i] = b_tile[kk * TILE + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(ar[i], br[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let gm = row0 + lid.y * 4u + i;
        if (gm >= p.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let gn = col0 + lid.x * 4u + j;
            if (gn >= p.n) {
                continue;
            }
            var v = acc[i * 4u + j];
            if ((p.flags & 2u) != 0u) {
                v += bias[gn];
            }
            let idx = gm * p.n + gn;
            if ((p.flags & 1u) != 0u) {
                c[idx] += v;
            } else {
                c[idx] = v;
            }
        }
    }
}
