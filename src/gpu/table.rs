//! The kernel table: every compute kernel declared once, on one line, with
//! its WGSL file, entry point, params struct and storage bindings. From that
//! line come the `KernelId` enum (which indexes compiled pipelines), its
//! `ALL` list, its `spec()`, and a marker type in `kernel` that ties the
//! kernel to its params struct so a dispatch cannot pass the wrong one.
//!
//! Not here: compiling anything (`pipelines`) or dispatching (`kernels`).
//! Imports nothing from `gpu` but the params structs.

use super::params::*;

/// How a kernel binds a storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    /// `var<storage, read_write>`
    W,
    /// `var<storage, read>`
    R,
}

/// What the GPU needs to know about one kernel.
pub(crate) struct KernelSpec {
    /// The WGSL file under `shaders/`, and its text.
    pub file: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    /// Storage bindings as (binding, access), in the order dispatch functions
    /// pass views; binding 0 is always the params uniform.
    pub bindings: &'static [(u32, Access)],
    /// Bytes of the params struct (a multiple of 16).
    pub params_size: u64,
    /// The params struct's name and (field, type) list, as in its WGSL twin.
    #[cfg_attr(not(test), allow(dead_code))]
    pub params_name: &'static str,
    #[cfg_attr(not(test), allow(dead_code))]
    pub params_fields: &'static [(&'static str, &'static str)],
}

/// A kernel as a type: `Params` is the one struct its uniform may hold.
pub(crate) trait KernelDecl {
    const ID: KernelId;
    type Params: bytemuck::Pod;
}

macro_rules! kernels {
    ($( $id:ident: $file:literal $entry:ident($params:ident) [$($binding:literal $access:ident),*]; )*) => {
        /// One compute kernel; `kernel as usize` is its place in `ALL`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum KernelId {
            $($id,)*
        }

        impl KernelId {
            /// Every kernel, in declaration order (so `ALL[k as usize] == k`).
            pub(crate) const ALL: &'static [KernelId] = &[$(KernelId::$id,)*];

            pub(crate) const fn spec(self) -> KernelSpec {
                match self {
                    $(KernelId::$id => KernelSpec {
                        file: $file,
                        // comments stripped by build.rs; the file as written is in shaders/
                        source: include_str!(concat!(env!("OUT_DIR"), "/shaders/", $file)),
                        entry: stringify!($entry),
                        bindings: &[$(($binding, Access::$access)),*],
                        params_size: std::mem::size_of::<$params>() as u64,
                        params_name: $params::NAME,
                        params_fields: $params::FIELDS,
                    },)*
                }
            }
        }

        /// Marker types, one per kernel, named as in `KernelId`.
        pub(crate) mod kernel {
            $(
                pub(crate) struct $id;
                impl super::KernelDecl for $id {
                    const ID: super::KernelId = super::KernelId::$id;
                    type Params = super::$params;
                }
            )*
        }
    };
}

// kernel: file entry_point(params) [storage bindings: number, W read_write or R read]
kernels! {
    Matmul: "matmul.wgsl" matmul(MatmulParams) [1 W, 2 R, 3 R, 4 R, 5 W];
    MatmulDirect: "matmul.wgsl" matmul_direct(MatmulParams) [1 W, 2 R, 3 R, 4 R, 5 W];
    MatmulDot4: "matmul.wgsl" matmul_dot4(MatmulParams) [1 W, 2 R, 3 R, 4 R, 5 W];
    MatmulCols4: "matmul.wgsl" matmul_cols4(MatmulParams) [1 W, 2 R, 3 R, 4 R, 5 W];
    ColumnSums: "reduce.wgsl" column_sums(ColumnSumsParams) [1 W, 2 R];
    SumBlocks: "reduce.wgsl" sum_blocks(SumBlocksParams) [1 W, 2 R];
    SquaredDistanceBlocks: "reduce.wgsl" squared_distance_blocks(SquaredDistanceBlocksParams) [1 W, 2 R, 3 R];
    CrossEntropy: "crossentropy.wgsl" crossentropy_forward_backward(CrossEntropyParams) [1 W, 2 W, 3 R, 4 R, 5 R];
    CrossEntropySerial: "crossentropy.wgsl" crossentropy_forward_backward_serial(CrossEntropyParams) [1 W, 2 W, 3 R, 4 R, 5 R];
    AdamW: "optimizer.wgsl" adamw_update(UpdateParams) [1 W, 2 R, 3 W, 4 W, 5 R, 6 R];
    Sgd: "optimizer.wgsl" sgd_update(UpdateParams) [1 W, 2 R, 3 W, 5 R, 6 R];
    EncoderForward: "encoder.wgsl" encoder_forward(EncoderParams) [1 W, 2 R, 3 R, 4 R];
    EncoderBackwardWpe: "encoder.wgsl" encoder_backward_wpe(EncoderParams) [5 W, 6 R];
    EncoderBackwardWte: "encoder.wgsl" encoder_backward_wte(EncoderParams) [7 W, 6 R, 8 R, 9 R];
    LayernormForward: "layernorm.wgsl" layernorm_forward(LayernormParams) [1 W, 2 W, 3 W, 4 R, 5 R, 6 R];
    LayernormBackward: "layernorm.wgsl" layernorm_backward(LayernormParams) [7 W, 8 R, 4 R, 5 R, 9 R, 10 R];
    LayernormBackwardDweightPartials: "layernorm.wgsl"
        layernorm_backward_dweight_partials(LayernormParams) [11 W, 8 R, 4 R, 9 R, 10 R];
    AttentionForwardSerial: "attention_serial.wgsl" attention_forward_serial(AttentionParams) [1 W, 2 W, 3 R];
    AttentionBackwardDpreattSerial: "attention_serial.wgsl"
        attention_backward_dpreatt_serial(AttentionParams) [4 W, 5 R, 3 R, 6 R];
    AttentionBackwardDqSerial: "attention_serial.wgsl" attention_backward_dq_serial(AttentionParams) [7 W, 8 R, 3 R];
    AttentionBackwardDkvSerial: "attention_serial.wgsl"
        attention_backward_dkv_serial(AttentionParams) [7 W, 8 R, 6 R, 3 R, 5 R];
    AttentionForwardRows: "attention.wgsl" attention_forward_rows(AttentionParams) [1 W, 2 W, 3 R];
    AttentionBackwardDpreattRows: "attention.wgsl" attention_backward_dpreatt_rows(AttentionParams) [4 W, 5 R, 3 R, 6 R];
    AttentionBackwardDq: "attention.wgsl" attention_backward_dq(AttentionParams) [7 W, 8 R, 3 R];
    AttentionBackwardDkv: "attention.wgsl" attention_backward_dkv(AttentionParams) [7 W, 8 R, 6 R, 3 R, 5 R];
    GeluBackward: "gelu.wgsl" gelu_backward(GeluParams) [3 W, 2 R, 4 R];
    SampleNextToken: "sampling.wgsl" sample_next_token(SamplingParams) [1 W, 2 W, 3 W, 4 R, 5 R];
}
