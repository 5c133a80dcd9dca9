//! The uniform of every kernel as a Rust struct: each mirrors a WGSL struct
//! of the same name field by field (same names, order and 32-bit types, with
//! explicit padding to 16 bytes), so a dispatch writes named numbers instead
//! of a bare `[u32; N]` whose meaning lives only in the shader.
//!
//! Not here: which kernel takes which struct (`table`), or the numbers a
//! dispatch puts in them (`kernels`). Imports nothing from `gpu`.

/// Declares `#[repr(C)]` Pod structs and, for each, `NAME` and `FIELDS`
/// (name, WGSL type) spelled from the same tokens as the struct, so the test
/// in `wgsl_mirror` can hold them against the shader text.
macro_rules! params {
    ($(
        $(#[$doc:meta])*
        $name:ident { $($(#[$field_doc:meta])* $field:ident: $ty:ident),* $(,)? }
    )*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[$field_doc])* pub $field: $ty,)*
        }

        impl $name {
            pub(crate) const NAME: &'static str = stringify!($name);
            pub(crate) const FIELDS: &'static [(&'static str, &'static str)] = &[$((stringify!($field), stringify!($ty))),*];
        }

        // WGSL rounds a uniform struct up to 16 bytes; the Rust side must match
        // so the bytes written are the bytes the shader reads.
        const _: () = assert!(std::mem::size_of::<$name>() % 16 == 0);
    )*};
}

params! {
    /// matmul.wgsl: c [M,N] (+)= op(a) [M,K] · op(b) [K,N], op given by strides.
    MatmulParams {
        m: u32,
        n: u32,
        k: u32,
        /// element (m,k) of op(a) is a[m*a_rs + k*a_cs]
        a_rs: u32,
        a_cs: u32,
        /// element (k,n) of op(b) is b[k*b_rs + n*b_cs]
        b_rs: u32,
        b_cs: u32,
        /// (the epilogue is matmul.wgsl's pipeline constant FLAGS, not a word here)
        _pad0: u32,
        /// factor on op(a)·op(b), before the bias (LoRA's α/r; 1 elsewhere)
        alpha: f32,
        /// matmul_direct: K summed by each slice (K itself unless split)
        k_slice: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// reduce.wgsl, column_sums: out [ceil(rows/block_rows), cols] from inp [rows, cols].
    ColumnSumsParams {
        rows: u32,
        cols: u32,
        block_rows: u32,
        /// 1 adds into out, 0 overwrites it
        accumulate: u32,
    }

    /// reduce.wgsl, sum_blocks: out[out_index + w] = Σ of block w (of x or x²).
    SumBlocksParams {
        n: u32,
        /// elements per workgroup
        block_len: u32,
        /// 1 sums x², 0 sums x
        square: u32,
        out_index: u32,
    }

    /// reduce.wgsl, squared_distance_blocks: out[out_index + w] = Σ (a − b)² over block w.
    SquaredDistanceBlocksParams {
        n: u32,
        block_len: u32,
        out_index: u32,
        _pad0: u32,
    }

    /// crossentropy.wgsl: N rows of V logits.
    CrossEntropyParams {
        n: u32,
        v: u32,
        /// scalars[scale_index] is dlogits_scale
        scale_index: u32,
        _pad0: u32,
    }

    /// optimizer.wgsl, both updates.
    UpdateParams {
        n: u32,
        decay_end: u32,
        scalars_index: u32,
        norm_index: u32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        max_grad_norm: f32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// encoder.wgsl, forward and both backwards.
    EncoderParams {
        b: u32,
        t: u32,
        c: u32,
        v: u32,
    }

    /// layernorm.wgsl, forward and backward.
    LayernormParams {
        n: u32,
        c: u32,
        /// backward: 1 adds into dinp, 0 overwrites it
        accumulate: u32,
        _pad1: u32,
    }

    /// attention.wgsl and attention_serial.wgsl, forward and backward.
    AttentionParams {
        b: u32,
        t: u32,
        c: u32,
        nh: u32,
        /// backward: 1 adds into dqkv, 0 overwrites it
        accumulate: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// gelu.wgsl, the backward.
    GeluParams {
        n: u32,
        /// backward: 1 adds into dinp, 0 overwrites it
        accumulate: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// sampling.wgsl: row state[0]-1 of logits [T,V].
    SamplingParams {
        t: u32,
        v: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// The bits of the matmul kernels' epilogue (their pipeline constant FLAGS,
/// matmul.wgsl: one pipeline per kernel and epilogue used), and which vec4
/// kernels a product's strides allow.
impl MatmulParams {
    /// FLAGS bit 0: add into c instead of overwriting it (backward).
    pub(crate) const ACCUMULATE: u32 = 1;
    /// FLAGS bit 1: add bias [N] to every row.
    pub(crate) const ADD_BIAS: u32 = 2;
    /// FLAGS bit 2: add the residual aux [M,N] (after the bias).
    pub(crate) const ADD_RESIDUAL: u32 = 4;
    /// FLAGS bit 3: c keeps the pre-activation, aux [M,N] gets GELU of it.
    pub(crate) const GELU: u32 = 8;

    /// Whether `matmul_dot4` can read both operands as vec4 along K: the
    /// forward form (each operand's K stride 1) with K and the other strides
    /// multiples of 4. (A bound view starts 256-byte aligned, so a vec4 never
    /// straddles one.)
    pub(crate) fn reads_fours(&self) -> bool {
        self.a_cs == 1 && self.b_rs == 1 && [self.k, self.a_rs, self.b_cs].iter().all(|x| x.is_multiple_of(4))
    }

    /// Whether `matmul_cols4` can read op(b)'s rows as vec4 along N: b's
    /// columns adjacent (b_cs = 1) and its rows 4-float aligned.
    pub(crate) fn reads_column_fours(&self) -> bool {
        self.b_cs == 1 && self.b_rs.is_multiple_of(4)
    }
}
