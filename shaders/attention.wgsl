// Causal multi-head self-attention, forward and backward.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH head size.
// qkv [B,T,3C] holds q, k, v one after another along channels; head h owns
// channels h*hs .. (h+1)*hs of each. att [B,NH,T,T] keeps the softmax
// probabilities for backward (entries above the diagonal are zero).
//
// Every output element is owned by one invocation that walks its sum in a
// fixed order: the backward is written as gathers (dq over keys, dk and dv
// over queries) rather than llm.c's scatter, because WGSL has no float
// atomics and runs must be bit-reproducible.
// Padding needs no mask: sequences are right-padded and attention is causal,
// so padded positions never feed real ones.
//
// Every pass comes twice (kernels.rs picks). The `_serial` entry points,
// for software adapters, give each attention row (or, for dk and dv, each
// key's column) to one invocation and meet no barrier, since there a
// barrier suspends every invocation. They walk a head's channels CH at a
// time with that chunk of the row's own vector (its query, its dout) or of
// its sums held in registers, so each multiply-add loads one float, not two,
// and no index is recomputed inside a loop. On a real GPU that is only
// B*NH*T invocations, each walking up to T keys alone, so the other entry
// points split the work finer: the forward and the dpreatt pass (`_rows`)
// give each row a workgroup whose 64 invocations stride over the keys and
// meet in a tree for the row's max and sum; dq and dkv give each output
// channel an invocation.

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
@group(0) @binding(1) var<storage, read_write> out: array<f32>;      // [B,T,C]
@group(0) @binding(2) var<storage, read_write> att: array<f32>;      // [B,NH,T,T]
@group(0) @binding(3) var<storage, read> qkv: array<f32>;            // [B,T,3C]
@group(0) @binding(4) var<storage, read_write> dpreatt: array<f32>;  // [B,NH,T,T]
@group(0) @binding(5) var<storage, read> dout: array<f32>;           // [B,T,C]
@group(0) @binding(6) var<storage, read> att_in: array<f32>;         // [B,NH,T,T]
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;     // [B,T,3C]
@group(0) @binding(8) var<storage, read> dpreatt_in: array<f32>;     // [B,NH,T,T]

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// Invocations of a `_rows` workgroup, and the tree they reduce through.
const WG: u32 = 64u;
var<workgroup> tree: array<f32, WG>;

// The max (or, with `is_sum`, the Σ in a fixed-shape tree) over the
// workgroup of each invocation's `v`; every invocation gets it.
fn workgroup_reduce(v: f32, li: u32, is_sum: bool) -> f32 {
    tree[li] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            let x = tree[li];
            let y = tree[li + stride];
            tree[li] = select(max(x, y), x + y, is_sum);
        }
        workgroupBarrier();
    }
    let r = tree[0];
    // nobody writes the tree again before everyone has read it
    workgroupBarrier();
    return r;
}

// offset of channel 0 of head h of part (0 q, 1 k, 2 v) at position (b, t) in qkv
fn qkv_at(b: u32, t: u32, part: u32, h: u32) -> u32 {
    let hs = p.c / p.nh;
    return (b * p.t + t) * 3u * p.c + part * p.c + h * hs;
}

// Attention row `idx` of [B,NH,T]: query t of head h of sequence b.
struct Row {
    b: u32,
    h: u32,
    t: u32,
    hs: u32,
    // 1/sqrt(hs), folded into the scores
    scale: f32,
    // offset of the row in att [B,NH,T,T]
    att_base: u32,
    // offset of the row's head in out or dout [B,T,C]
    out_base: u32,
}

fn row_of(idx: u32) -> Row {
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    return Row(b, h, t, hs, 1.0 / sqrt(f32(hs)), idx * p.t, (b * p.t + t) * p.c + h * hs);
}

// q_t · k_t2 / sqrt(hs)
fn score(r: Row, t2: u32) -> f32 {
    let q = qkv_at(r.b, r.t, 0u, r.h);
    let k = qkv_at(r.b, t2, 1u, r.h);
    var s = 0.0;
    for (var i = 0u; i < r.hs; i++) {
        s += qkv[q + i] * qkv[k + i];
    }
    return s * r.scale;
}

// channel i of the row's output: Σ_{t2<=t} att[t,t2] v[t2,i]
fn attended(r: Row, i: u32) -> f32 {
    var acc = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        acc += att[r.att_base + t2] * qkv[qkv_at(r.b, t2, 2u, r.h) + i];
    }
    return acc;
}

// datt[t,t2] = dout_t · v_t2
fn datt(r: Row, t2: u32) -> f32 {
    let v = qkv_at(r.b, t2, 2u, r.h);
    var d = 0.0;
    for (var i = 0u; i < r.hs; i++) {
        d += dout[r.out_base + i] * qkv[v + i];
    }
    return d;
}

// out [B,T,C], att [B,NH,T,T] from qkv [B,T,3C], as `attention_forward_serial`;
// one workgroup per (b, h, t): its invocations take keys t2 = li, li + 64, ...
@compute @workgroup_size(64)
fn attention_forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) li: u32) {
    // the row is the workgroup's, so every invocation returns or none does
    let idx = wid.y * nwg.x + wid.x;
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    var mx = -3.402823e38;
    for (var t2 = li; t2 <= r.t; t2 += WG) {
        let s = score(r, t2);
        att[r.att_base + t2] = s;
        mx = max(mx, s);
    }
    mx = workgroup_reduce(mx, li, false);
    var sum = 0.0;
    for (var t2 = li; t2 <= r.t; t2 += WG) {
        let e = exp(att[r.att_base + t2] - mx);
        att[r.att_base + t2] = e;
        sum += e;
    }
    let inv = 1.0 / workgroup_reduce(sum, li, true);
    for (var t2 = li; t2 < p.t; t2 += WG) {
        att[r.att_base + t2] = select(0.0, att[r.att_base + t2] * inv, t2 <= r.t);
    }
    // each channel below reads the whole row, written by every invocation
    storageBarrier();
    for (var i = li; i < r.hs; i += WG) {
        out[r.out_base + i] = attended(r, i);
    }
}

// dpreatt [B,NH,T,T] from dout [B,T,C], qkv [B,T,3C], att [B,NH,T,T], as
// `attention_backward_dpreatt_serial`; one workgroup per (b, h, t), striding
// over keys
@compute @workgroup_size(64)
fn attention_backward_dpreatt_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) li: u32) {
    let idx = wid.y * nwg.x + wid.x;
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    var dot_att_datt = 0.0;
    for (var t2 = li; t2 <= r.t; t2 += WG) {
        let d = datt(r, t2);
        dpreatt[r.att_base + t2] = d;
        dot_att_datt += att_in[r.att_base + t2] * d;
    }
    dot_att_datt = workgroup_reduce(dot_att_datt, li, true);
    for (var t2 = li; t2 < p.t; t2 += WG) {
        dpreatt[r.att_base + t2] = select(0.0, att_in[r.att_base + t2] * (dpreatt[r.att_base + t2] - dot_att_datt) * r.scale, t2 <= r.t);
    }
}

// dqkv [B,T,3C] (its q part) (+)= from dpreatt [B,NH,T,T], qkv [B,T,3C];
// one invocation per (b, h, t, i) (a real GPU's): dq[b,t,h,i] += Σ_{t2<=t} dpreatt[t,t2] k[t2,i]
@compute @workgroup_size(64)
fn attention_backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    let hs = p.c / p.nh;
    if (idx >= p.b * p.nh * p.t * hs) {
        return;
    }
    let i = idx % hs;
    let t = (idx / hs) % p.t;
    let h = (idx / (hs * p.t)) % p.nh;
    let b = idx / (hs * p.t * p.nh);
    let row = ((b * p.nh + h) * p.t + t) * p.t;
    let k = qkv_at(b, 0u, 1u, h) + i;
    let step = 3u * p.c;
    var acc = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        acc += dpreatt_in[row + t2] * qkv[k + t2 * step];
    }
    let dq = qkv_at(b, t, 0u, h) + i;
    if (p.accumulate == 1u) {
        dqkv[dq] += acc;
    } else {
        dqkv[dq] = acc;
    }
}

// dqkv [B,T,3C] (its k and v parts) (+)= from dpreatt, att [B,NH,T,T], qkv [B,T,3C], dout [B,T,C];
// one invocation per (b, h, t2, i) (a real GPU's): dk[t2] += Σ_{t>=t2} dpreatt[t,t2] q[t];
// dv[t2] += Σ_{t>=t2} att[t,t2] dout[t]
@compute @workgroup_size(64)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    let hs = p.c / p.nh;
    if (idx >= p.b * p.nh * p.t * hs) {
        return;
    }
    let i = idx % hs;
    let t2 = (idx / hs) % p.t;
    let h = (idx / (hs * p.t)) % p.nh;
    let b = idx / (hs * p.t * p.nh);
    let plane = (b * p.nh + h) * p.t * p.t;
    let q = qkv_at(b, 0u, 0u, h) + i;
    let o = b * p.t * p.c + h * hs + i;
    let step = 3u * p.c;
    var dk = 0.0;
    var dv = 0.0;
    for (var t = t2; t < p.t; t++) {
        let a = plane + t * p.t + t2;
        dk += dpreatt_in[a] * qkv[q + t * step];
        dv += att_in[a] * dout[o + t * p.c];
    }
    let k = qkv_at(b, t2, 1u, h) + i;
    let v = qkv_at(b, t2, 2u, h) + i;
    if (p.accumulate == 1u) {
        dqkv[k] += dk;
    } else {
        dqkv[k] = dk;
    }
    if (p.accumulate == 1u) {
        dqkv[v] += dv;
    } else {
        dqkv[v] = dv;
    }
}

// ---- software adapters: a row per invocation, CH channels in registers ----

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

// out [B,T,C], att [B,NH,T,T] from qkv [B,T,3C];
// one invocation per (b, h, t): the attention row of query t
@compute @workgroup_size(64)
fn attention_forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    // from one position to the next in qkv
    let step = 3u * p.c;
    let q = qkv_at(r.b, r.t, 0u, r.h);
    let k = qkv_at(r.b, 0u, 1u, r.h);
    let v = qkv_at(r.b, 0u, 2u, r.h);
    // scores q·k, their partial sums over the chunks kept in the att row
    for (var c0 = 0u; c0 < r.hs; c0 += CH) {
        let l = lanes(c0, r.hs);
        let qc = in_head(qkv_chunk(q, l), c0, r.hs);
        for (var t2 = 0u; t2 <= r.t; t2++) {
            let s = dot_chunk(qc, qkv_chunk(k + t2 * step, l));
            if (c0 == 0u) {
                att[r.att_base + t2] = s;
            } else {
                att[r.att_base + t2] += s;
            }
        }
    }
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
    // out = Σ att·v, a chunk of sums in registers at a time
    for (var c0 = 0u; c0 < r.hs; c0 += CH) {
        let l = lanes(c0, r.hs);
        var y = zero_chunk();
        for (var t2 = 0u; t2 <= r.t; t2++) {
            y = add_scaled(y, att[r.att_base + t2], qkv_chunk(v + t2 * step, l));
        }
        store_out(r.out_base, c0, r.hs, y);
    }
}

// dpreatt [B,NH,T,T] from dout [B,T,C], qkv [B,T,3C], att [B,NH,T,T];
// one invocation per (b, h, t): gradient of the pre-softmax scores of row t,
// scale included: dpreatt = att ⊙ (datt − Σ att ⊙ datt) / sqrt(hs)
@compute @workgroup_size(64)
fn attention_backward_dpreatt_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                     @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    let step = 3u * p.c;
    let v = qkv_at(r.b, 0u, 2u, r.h);
    // datt[t2] = dout_t · v_t2, partial sums over the chunks kept in the dpreatt row
    for (var c0 = 0u; c0 < r.hs; c0 += CH) {
        let l = lanes(c0, r.hs);
        let dc = in_head(dout_chunk(r.out_base, l), c0, r.hs);
        for (var t2 = 0u; t2 <= r.t; t2++) {
            let d = dot_chunk(dc, qkv_chunk(v + t2 * step, l));
            if (c0 == 0u) {
                dpreatt[r.att_base + t2] = d;
            } else {
                dpreatt[r.att_base + t2] += d;
            }
        }
    }
    var dot_att_datt = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        dot_att_datt += att_in[r.att_base + t2] * dpreatt[r.att_base + t2];
    }
    for (var t2 = 0u; t2 < p.t; t2++) {
        dpreatt[r.att_base + t2] = select(0.0, att_in[r.att_base + t2] * (dpreatt[r.att_base + t2] - dot_att_datt) * r.scale, t2 <= r.t);
    }
}

// dqkv [B,T,3C] (its q part) (+)= from dpreatt [B,NH,T,T], qkv [B,T,3C];
// one invocation per (b, h, t): dq[b,t,h] += Σ_{t2<=t} dpreatt[t,t2] k[t2]
@compute @workgroup_size(64)
fn attention_backward_dq_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    let step = 3u * p.c;
    let k = qkv_at(r.b, 0u, 1u, r.h);
    for (var c0 = 0u; c0 < r.hs; c0 += CH) {
        let l = lanes(c0, r.hs);
        var g = zero_chunk();
        for (var t2 = 0u; t2 <= r.t; t2++) {
            g = add_scaled(g, dpreatt_in[r.att_base + t2], qkv_chunk(k + t2 * step, l));
        }
        store_dqkv(qkv_at(r.b, r.t, 0u, r.h), c0, r.hs, g);
    }
}

// dqkv [B,T,3C] (its k and v parts) (+)= from dpreatt, att [B,NH,T,T], qkv [B,T,3C], dout [B,T,C];
// one invocation per (b, h, t2), the key's column of dpreatt and att:
// dk[t2] += Σ_{t>=t2} dpreatt[t,t2] q[t]; dv[t2] += Σ_{t>=t2} att[t,t2] dout[t]
@compute @workgroup_size(64)
fn attention_backward_dkv_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    // row_of's t is here the key t2
    let r = row_of(idx);
    let t2 = r.t;
    let column = r.att_base - t2 * p.t + t2;
    let step = 3u * p.c;
    let q = qkv_at(r.b, 0u, 0u, r.h);
    let o = r.out_base - t2 * p.c;
    for (var c0 = 0u; c0 < r.hs; c0 += CH) {
        let l = lanes(c0, r.hs);
        var dk = zero_chunk();
        var dv = zero_chunk();
        for (var t = t2; t < p.t; t++) {
            let at = column + t * p.t;
            dk = add_scaled(dk, dpreatt_in[at], qkv_chunk(q + t * step, l));
            dv = add_scaled(dv, att_in[at], dout_chunk(o + t * p.c, l));
        }
        store_dqkv(qkv_at(r.b, t2, 1u, r.h), c0, r.hs, dk);
        store_dqkv(qkv_at(r.b, t2, 2u, r.h), c0, r.hs, dv);
    }
}
