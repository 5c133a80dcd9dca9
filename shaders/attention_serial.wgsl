// Causal multi-head self-attention, forward and backward, on a software
// adapter (lavapipe, SwiftShader): the `_serial` twins of attention.wgsl's
// kernels, which kernels.rs picks there.
// Legend: b sequences per micro-batch, T time, C channels, NH heads, hs = C/NH head size, CH
// channels a kernel holds in registers at once.
// qkv [b,T,3C] holds q, k, v one after another along channels; head h owns
// channels h*hs .. (h+1)*hs of each. att [b,NH,T,T] keeps the softmax
// probabilities for backward (entries above the diagonal are zero).
//
// As in attention.wgsl, every output element is owned by one invocation that
// walks its sum in a fixed order (gathers, not scatter: WGSL has no float
// atomics and runs must be bit-reproducible), and padding needs no mask
// (right-padded sequences, causal attention).
//
// Two neighbouring attention rows (or, for dk and dv, two keys' columns) go
// to one invocation, which meets no barrier, since on a software adapter a
// barrier suspends every invocation. It walks a head's channels CH at a time
// with that chunk of each row's own vector (its query, its dout) or of its
// sums held in registers, so a chunk loaded of another position serves two
// rows' multiply-adds, and no index is recomputed inside a loop.
//
// The params struct, the bindings and the row helpers (index, qkv_at, Row)
// repeat attention.wgsl's, as WGSL has no include; gpu/wgsl_mirror.rs checks
// both files' struct and bindings against the Rust side.

struct AttentionParams {
    b: u32,
    t: u32,
    c: u32,
    nh: u32,
    // backward: 1 adds into dqkv, 0 overwrites it (its first writer)
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;      // [b,T,C]
@group(0) @binding(2) var<storage, read_write> att: array<f32>;      // [b,NH,T,T]
@group(0) @binding(3) var<storage, read> qkv: array<f32>;            // [b,T,3C]
@group(0) @binding(4) var<storage, read_write> dpreatt: array<f32>;  // [b,NH,T,T]
@group(0) @binding(5) var<storage, read> dout: array<f32>;           // [b,T,C]
@group(0) @binding(6) var<storage, read> att_in: array<f32>;         // [b,NH,T,T]
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;     // [b,T,3C]
@group(0) @binding(8) var<storage, read> dpreatt_in: array<f32>;     // [b,NH,T,T]

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// offset of channel 0 of head h of part (0 q, 1 k, 2 v) at position (b, t) in qkv
fn qkv_at(b: u32, t: u32, part: u32, h: u32) -> u32 {
    let hs = p.c / p.nh;
    return (b * p.t + t) * 3u * p.c + part * p.c + h * hs;
}

// Attention row `idx` of [b,NH,T]: query t of head h of sequence b.
struct Row {
    b: u32,
    h: u32,
    t: u32,
    hs: u32,
    // 1/sqrt(hs), folded into the scores
    scale: f32,
    // offset of the row in att [b,NH,T,T]
    att_base: u32,
    // offset of the row's head in out or dout [b,T,C]
    out_base: u32,
}

fn row_of(idx: u32) -> Row {
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    return Row(b, h, t, hs, 1.0 / sqrt(f32(hs)), idx * p.t, (b * p.t + t) * p.c + h * hs);
}

// Channels a `_serial` kernel holds in registers at once (measured on
// lavapipe, BENCHMARKS.md: 8 reloads the row too often, 32 spills).
const CH: u32 = 16u;

// CH floats: a chunk of one head's vector, or sums over one
struct Chunk {
    x0: vec4<f32>,
    x1: vec4<f32>,
    x2: vec4<f32>,
    x3: vec4<f32>,
}

// Where a chunk's CH channels c0.. lie within a head of hs channels,
// clamped into the head: a lane past hs loads a real channel of the same
// head, and the operand it meets is zero there (`in_head`) or it is not stored.
struct Lanes {
    o0: vec4<u32>,
    o1: vec4<u32>,
    o2: vec4<u32>,
    o3: vec4<u32>,
}

fn lanes(c0: u32, hs: u32) -> Lanes {
    let c = vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u);
    let last = vec4<u32>(hs - 1u);
    return Lanes(min(c, last), min(c + 4u, last), min(c + 8u, last), min(c + 12u, last));
}

// x with the channels past hs zeroed
fn in_head(x: Chunk, c0: u32, hs: u32) -> Chunk {
    let c = vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u);
    let n = vec4<u32>(hs);
    let z = vec4<f32>(0.0);
    return Chunk(select(z, x.x0, c < n), select(z, x.x1, c + 4u < n), select(z, x.x2, c + 8u < n),
                 select(z, x.x3, c + 12u < n));
}

fn qkv4(at: u32, o: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(qkv[at + o.x], qkv[at + o.y], qkv[at + o.z], qkv[at + o.w]);
}

fn qkv_chunk(at: u32, l: Lanes) -> Chunk {
    return Chunk(qkv4(at, l.o0), qkv4(at, l.o1), qkv4(at, l.o2), qkv4(at, l.o3));
}

fn dout4(at: u32, o: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(dout[at + o.x], dout[at + o.y], dout[at + o.z], dout[at + o.w]);
}

fn dout_chunk(at: u32, l: Lanes) -> Chunk {
    return Chunk(dout4(at, l.o0), dout4(at, l.o1), dout4(at, l.o2), dout4(at, l.o3));
}

fn dot_chunk(x: Chunk, y: Chunk) -> f32 {
    return dot(x.x0, y.x0) + dot(x.x1, y.x1) + dot(x.x2, y.x2) + dot(x.x3, y.x3);
}

// acc + w·x
fn add_scaled(acc: Chunk, w: f32, x: Chunk) -> Chunk {
    return Chunk(acc.x0 + w * x.x0, acc.x1 + w * x.x1, acc.x2 + w * x.x2, acc.x3 + w * x.x3);
}

fn zero_chunk() -> Chunk {
    let z = vec4<f32>(0.0);
    return Chunk(z, z, z, z);
}

fn chunk_at(x: Chunk, j: u32) -> f32 {
    let v = array<vec4<f32>, 4>(x.x0, x.x1, x.x2, x.x3);
    return v[j / 4u][j % 4u];
}

// out[at + c0 + j] = x[j] for the channels in the head
fn store_out(at: u32, c0: u32, hs: u32, x: Chunk) {
    for (var j = 0u; j < min(CH, hs - c0); j++) {
        out[at + c0 + j] = chunk_at(x, j);
    }
}

// dqkv[at + c0 + j] (+)= x[j] for the channels in the head
fn store_dqkv(at: u32, c0: u32, hs: u32, x: Chunk) {
    for (var j = 0u; j < min(CH, hs - c0); j++) {
        if (p.accumulate == 1u) {
            dqkv[at + c0 + j] += chunk_at(x, j);
        } else {
            dqkv[at + c0 + j] = chunk_at(x, j);
        }
    }
}

// Two neighbouring rows of one head, t0 = 2m and t1 = 2m + 1, which a
// `_serial` invocation walks together so that each chunk it loads of a key
// (or of a query, for dk and dv) serves both. When T is odd the last pair has
// no t1: `b` is then a copy of `a`, computed alongside and never stored.
struct Pair {
    a: Row,
    b: Row,
    has_b: bool,
}

fn pairs() -> u32 {
    return p.b * p.nh * ((p.t + 1u) / 2u);
}

fn pair_of(idx: u32) -> Pair {
    let per_head = (p.t + 1u) / 2u;
    // the first row of the pair's head in [b,NH,T]
    let head_row = (idx / per_head) * p.t;
    let t0 = 2u * (idx % per_head);
    let has_b = t0 + 1u < p.t;
    return Pair(row_of(head_row + t0), row_of(head_row + select(t0, t0 + 1u, has_b)), has_b);
}

// att[i] = s for the first chunk of channels, += s for the others
fn add_score(i: u32, c0: u32, s: f32) {
    if (c0 == 0u) {
        att[i] = s;
    } else {
        att[i] += s;
    }
}

// Row r's scores in att become its probabilities, zero past t.
fn softmax_row(r: Row) {
    var mx = -3.402823e38;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        let s = att[r.att_base + t2] * r.scale;
        att[r.att_base + t2] = s;
        mx = max(mx, s);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        let e = exp(att[r.att_base + t2] - mx);
        att[r.att_base + t2] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var t2 = 0u; t2 < p.t; t2++) {
        att[r.att_base + t2] = select(0.0, att[r.att_base + t2] * inv, t2 <= r.t);
    }
}

// out [b,T,C], att [b,NH,T,T] from qkv [b,T,3C];
// one invocation per pair of rows (b, h, t0) and (b, h, t1)
@compute @workgroup_size(64)
fn attention_forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= pairs()) {
        return;
    }
    let pr = pair_of(idx);
    let ra = pr.a;
    let rb = pr.b;
    // from one position to the next in qkv
    let step = 3u * p.c;
    let k = qkv_at(ra.b, 0u, 1u, ra.h);
    let v = qkv_at(ra.b, 0u, 2u, ra.h);
    // scores q·k, their partial sums over the chunks kept in the att rows
    for (var c0 = 0u; c0 < ra.hs; c0 += CH) {
        let l = lanes(c0, ra.hs);
        let qa = in_head(qkv_chunk(qkv_at(ra.b, ra.t, 0u, ra.h), l), c0, ra.hs);
        let qb = in_head(qkv_chunk(qkv_at(rb.b, rb.t, 0u, rb.h), l), c0, rb.hs);
        for (var t2 = 0u; t2 <= rb.t; t2++) {
            let kc = qkv_chunk(k + t2 * step, l);
            if (t2 <= ra.t) {
                add_score(ra.att_base + t2, c0, dot_chunk(qa, kc));
            }
            if (pr.has_b) {
                add_score(rb.att_base + t2, c0, dot_chunk(qb, kc));
            }
        }
    }
    softmax_row(ra);
    if (pr.has_b) {
        softmax_row(rb);
    }
    // out = Σ att·v, a chunk of sums per row in registers at a time; row t0's
    // probability of key t1 is the zero softmax_row wrote past its end
    for (var c0 = 0u; c0 < ra.hs; c0 += CH) {
        let l = lanes(c0, ra.hs);
        var ya = zero_chunk();
        var yb = zero_chunk();
        for (var t2 = 0u; t2 <= rb.t; t2++) {
            let vc = qkv_chunk(v + t2 * step, l);
            ya = add_scaled(ya, att[ra.att_base + t2], vc);
            yb = add_scaled(yb, att[rb.att_base + t2], vc);
        }
        store_out(ra.out_base, c0, ra.hs, ya);
        if (pr.has_b) {
            store_out(rb.out_base, c0, rb.hs, yb);
        }
    }
}

// dpreatt[i] = d for the first chunk of channels, += d for the others
fn add_datt(i: u32, c0: u32, d: f32) {
    if (c0 == 0u) {
        dpreatt[i] = d;
    } else {
        dpreatt[i] += d;
    }
}

// Row r of dpreatt, holding datt, becomes the gradient of the scores:
// att ⊙ (datt − Σ att ⊙ datt) / sqrt(hs), zero past t.
fn softmax_backward_row(r: Row) {
    var dot_att_datt = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        dot_att_datt += att_in[r.att_base + t2] * dpreatt[r.att_base + t2];
    }
    for (var t2 = 0u; t2 < p.t; t2++) {
        dpreatt[r.att_base + t2] = select(0.0, att_in[r.att_base + t2] * (dpreatt[r.att_base + t2] - dot_att_datt) * r.scale, t2 <= r.t);
    }
}

// dpreatt [b,NH,T,T] from dout [b,T,C], qkv [b,T,3C], att [b,NH,T,T];
// one invocation per pair of rows: the gradient of their pre-softmax scores
@compute @workgroup_size(64)
fn attention_backward_dpreatt_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                     @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= pairs()) {
        return;
    }
    let pr = pair_of(idx);
    let ra = pr.a;
    let rb = pr.b;
    let step = 3u * p.c;
    let v = qkv_at(ra.b, 0u, 2u, ra.h);
    // datt[t2] = dout_t · v_t2, partial sums over the chunks kept in the dpreatt rows
    for (var c0 = 0u; c0 < ra.hs; c0 += CH) {
        let l = lanes(c0, ra.hs);
        let da = in_head(dout_chunk(ra.out_base, l), c0, ra.hs);
        let db = in_head(dout_chunk(rb.out_base, l), c0, rb.hs);
        for (var t2 = 0u; t2 <= rb.t; t2++) {
            let vc = qkv_chunk(v + t2 * step, l);
            if (t2 <= ra.t) {
                add_datt(ra.att_base + t2, c0, dot_chunk(da, vc));
            }
            if (pr.has_b) {
                add_datt(rb.att_base + t2, c0, dot_chunk(db, vc));
            }
        }
    }
    softmax_backward_row(ra);
    if (pr.has_b) {
        softmax_backward_row(rb);
    }
}

// dqkv [b,T,3C] (its q part) (+)= from dpreatt [b,NH,T,T], qkv [b,T,3C];
// one invocation per pair of rows: dq[b,t,h] += Σ_{t2<=t} dpreatt[t,t2] k[t2]
@compute @workgroup_size(64)
fn attention_backward_dq_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= pairs()) {
        return;
    }
    let pr = pair_of(idx);
    let ra = pr.a;
    let rb = pr.b;
    let step = 3u * p.c;
    let k = qkv_at(ra.b, 0u, 1u, ra.h);
    for (var c0 = 0u; c0 < ra.hs; c0 += CH) {
        let l = lanes(c0, ra.hs);
        var ga = zero_chunk();
        var gb = zero_chunk();
        // row t0's dpreatt is zero at key t1
        for (var t2 = 0u; t2 <= rb.t; t2++) {
            let kc = qkv_chunk(k + t2 * step, l);
            ga = add_scaled(ga, dpreatt_in[ra.att_base + t2], kc);
            gb = add_scaled(gb, dpreatt_in[rb.att_base + t2], kc);
        }
        store_dqkv(qkv_at(ra.b, ra.t, 0u, ra.h), c0, ra.hs, ga);
        if (pr.has_b) {
            store_dqkv(qkv_at(rb.b, rb.t, 0u, rb.h), c0, rb.hs, gb);
        }
    }
}

// dqkv [b,T,3C] (its k and v parts) (+)= from dpreatt, att [b,NH,T,T], qkv [b,T,3C], dout [b,T,C];
// one invocation per pair of keys t2 (the pair's rows as keys), their columns of dpreatt and att:
// dk[t2] += Σ_{t>=t2} dpreatt[t,t2] q[t]; dv[t2] += Σ_{t>=t2} att[t,t2] dout[t]
@compute @workgroup_size(64)
fn attention_backward_dkv_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= pairs()) {
        return;
    }
    let pr = pair_of(idx);
    let ka = pr.a;
    let kb = pr.b;
    // the head's plane in [b,NH,T,T]
    let plane = ka.att_base - ka.t * p.t;
    let step = 3u * p.c;
    let q = qkv_at(ka.b, 0u, 0u, ka.h);
    let o = ka.out_base - ka.t * p.c;
    for (var c0 = 0u; c0 < ka.hs; c0 += CH) {
        let l = lanes(c0, ka.hs);
        var dka = zero_chunk();
        var dva = zero_chunk();
        var dkb = zero_chunk();
        var dvb = zero_chunk();
        // from query t0 on; key t1's entries at query t0 lie above the diagonal, zero
        for (var t = ka.t; t < p.t; t++) {
            let row = plane + t * p.t;
            let qc = qkv_chunk(q + t * step, l);
            let oc = dout_chunk(o + t * p.c, l);
            dka = add_scaled(dka, dpreatt_in[row + ka.t], qc);
            dva = add_scaled(dva, att_in[row + ka.t], oc);
            dkb = add_scaled(dkb, dpreatt_in[row + kb.t], qc);
            dvb = add_scaled(dvb, att_in[row + kb.t], oc);
        }
        store_dqkv(qkv_at(ka.b, ka.t, 1u, ka.h), c0, ka.hs, dka);
        store_dqkv(qkv_at(ka.b, ka.t, 2u, ka.h), c0, ka.hs, dva);
        if (pr.has_b) {
            store_dqkv(qkv_at(kb.b, kb.t, 1u, kb.h), c0, kb.hs, dkb);
            store_dqkv(qkv_at(kb.b, kb.t, 2u, kb.h), c0, kb.hs, dvb);
        }
    }
}
