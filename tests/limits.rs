//! A GPU's limits named by the settings layer (`gpu::plan`): every buffer a
//! run makes is the size the plan says (built on the adapter wgpu finds,
//! lavapipe here, and counted); a lab past the adapter's own limits is
//! refused naming the settings and the limit before a byte is made; the
//! check holds a lab to constructed limits, each one in turn; the settings
//! check refuses the issue's `seq_len: 4096` on WebGPU by name, and the same
//! lab past a GPU's limits stays a lab the CPU takes where it fits the CPU's
//! budget; and the memory budget admits and refuses what its comment says.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::{Arc, OnceLock};

use gradlab::gpu::plan::{check_lab, webgpu_limits, DeviceBudget, Holds, RunSizes};
use gradlab::gpu::{GpuContext, GpuRun};
use gradlab::lab::page::for_reader;
use gradlab::lab::settings::{Backend, LabSettings, GPU_MEMORY_BUDGET};
use gradlab::lab::{Lab, LabConfig};
use gradlab::model::{LoraConfig, ModelConfig};
use serde_json::{json, Value};

/// A device of the test's own: its count of what was made (`made`) is this
/// test's alone while the others run beside it.
fn ctx() -> GpuContext {
    static SAID: OnceLock<()> = OnceLock::new();
    let ctx = GpuContext::new_blocking().expect("a GPU adapter (install mesa-vulkan-drivers for lavapipe)");
    SAID.get_or_init(|| {
        eprintln!(
            "adapter: {} (maxStorageBufferBindingSize {}, maxBufferSize {})",
            ctx.adapter, ctx.limits.max_storage_buffer_binding_size, ctx.limits.max_buffer_size
        )
    });
    ctx
}

fn corpus() -> Arc<gradlab::data::Corpus> {
    Arc::new(gradlab::data::shipped_corpus("kjv").unwrap())
}

fn settings(v: Value) -> LabSettings {
    LabSettings::from_json(v).unwrap()
}

/// The labs below built for real, counted, against their plan: every
/// buffer `plan` sizes one by one is made at exactly its size (after a
/// step: the distance partials come with the first), and the recorded
/// programs make no more than the plan's bound.
#[test]
fn every_buffer_a_run_makes_is_the_size_the_plan_says() {
    let ctx = &ctx();
    let mut lora = LabConfig::three_way(ModelConfig::nano(), 6, 2, 1.0, 3);
    lora.seq_len = 16;
    lora.lora = Some(LoraConfig::all_layers(4, 3));
    let mut micro = LabConfig::three_way(ModelConfig::micro(), 4, 1, 0.5, 5);
    micro.seq_len = 40;
    let mut packed = LabConfig::sweep(ModelConfig::nano(), 8, 1.0, 7);
    packed.seq_len = 32;
    for config in [lora, micro, packed] {
        let (named_before, programs_before) = ctx.made();
        let mut lab = Lab::new::<GpuRun>(ctx, config.clone(), corpus()).unwrap();
        pollster::block_on(lab.step()).unwrap();
        pollster::block_on(lab.flush()).unwrap();
        let (named, programs) = ctx.made();
        let plans: Vec<RunSizes> = config.run_configs().iter().map(|r| RunSizes::new(r).unwrap()).collect();
        let planned = |run: usize, p: &gradlab::gpu::plan::Planned| {
            // the reference measures no distance to itself
            let made = p.holds != Holds::Programs && !(run == 0 && p.label == "distance partials");
            if made {
                p.bytes() * p.copies as u64
            } else {
                0
            }
        };
        let expected: u64 =
            plans.iter().enumerate().map(|(run, s)| s.buffers().iter().map(|p| planned(run, p)).sum::<u64>()).sum();
        let bound: u64 = plans.iter().map(|s| s.programs().iter().map(|p| p.bytes()).sum::<u64>()).sum();
        let recorded = programs - programs_before;
        eprintln!(
            "{} runs of b = {:?}: buffers {} bytes (planned {expected}), programs {recorded} bytes (bound {bound})",
            plans.len(),
            config.run_configs().iter().map(|r| r.micro_batch).collect::<Vec<_>>(),
            named - named_before
        );
        assert_eq!(named - named_before, expected, "every buffer the plan sizes, at its size");
        assert!(recorded <= bound, "programs made {recorded} bytes, over the plan's bound {bound}");
    }
}

/// A lab whose full-batch attention scores are past this adapter's largest
/// buffer: refused by `Lab::new` on the GPU naming the settings and the
/// limit, with nothing made; the settings layer says the same against the
/// adapter's limits.
#[test]
fn a_lab_past_the_adapters_own_limits_is_refused_by_name_before_anything_is_made() {
    let ctx = &ctx();
    let limit = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
    // nano at T = 4096: 2 heads × 4096² scores of 4 bytes (128 MiB) a sequence
    let per_sequence = 2 * 4096 * 4096 * 4u64;
    let batch = (limit / per_sequence + 1) as usize;
    assert!(batch <= 4096, "this adapter allows more than any lab asks ({limit} bytes)");
    let mut config = LabConfig::three_way(ModelConfig::nano(), batch, 1, 1.0, 1);
    config.model.block_size = 4096;
    config.seq_len = 4096;
    let before = ctx.made();
    let e = Lab::new::<GpuRun>(ctx, config, corpus()).err().expect("refused").to_string();
    eprintln!("B = {batch}: {e}");
    assert_eq!(ctx.made(), before, "nothing made before the refusal");
    assert!(e.starts_with("batch × seq_len: the full batch's attention scores"), "{e}");
    assert!(e.contains("this GPU allows") && e.contains("lower the batch or the context"), "{e}");
    assert!(e.contains("maxStorageBufferBindingSize") || e.contains("maxBufferSize"), "{e}");
    // the settings layer, checked against this adapter's limits, names it for the page
    let page = settings(json!({"batch": batch, "micro_batch": 1, "seq_len": 4096}));
    let e = for_reader(&page.resolve_on(Backend::Gpu, &ctx.limits).unwrap_err());
    assert!(e.starts_with("batch × seq_len (ctx): "), "{e}");
}

/// The check itself, against limits made for it: each limit in turn refuses
/// a small lab naming the settings and the limit; the same lab within them
/// is accepted, and the CPU backend takes it whatever a GPU allows.
#[test]
fn the_check_holds_a_lab_to_each_limit_it_is_given() {
    let lab = settings(json!({"batch": 8, "micro_batch": 2, "seq_len": 64}));
    let runs = lab.resolve(Backend::Cpu).unwrap().run_configs();
    let check = |limits: &wgpu::Limits, memory: Option<u64>| {
        check_lab(&runs, DeviceBudget { limits, memory }).map_err(|e| for_reader(&e))
    };
    let defaults = webgpu_limits();
    assert_eq!(check(&defaults, Some(GPU_MEMORY_BUDGET)), Ok(()));
    // the full batch's MLP activations: 8 × 64 × 4·64 floats, 512 KiB
    let small = wgpu::Limits { max_storage_buffer_binding_size: 256 << 10, ..defaults.clone() };
    assert_eq!(
        check(&small, None).unwrap_err(),
        "batch × seq_len (ctx): the full batch's activations (8 sequences × 64 positions) need 512 KiB in one \
         buffer, this GPU allows 256 KiB per buffer (maxStorageBufferBindingSize); lower the batch or the context"
    );
    let small = wgpu::Limits { max_buffer_size: 256 << 10, ..defaults.clone() };
    let e = check(&small, None).unwrap_err();
    assert!(e.starts_with("batch × seq_len (ctx): the full batch's") && e.contains("(maxBufferSize)"), "{e}");
    // at exactly the largest binding it is accepted, a word under it refused
    let largest: u64 =
        runs.iter().flat_map(|r| RunSizes::new(r).unwrap().buffers()).map(|p| p.binding as u64 * 4).max().unwrap();
    let at = |bytes: u64| wgpu::Limits { max_storage_buffer_binding_size: bytes, ..defaults.clone() };
    assert_eq!(check(&at(largest), None), Ok(()));
    assert!(check(&at(largest - 4), None).is_err());
    // 512 rows of the full batch's products, 32 rows a workgroup
    let narrow = wgpu::Limits { max_compute_workgroups_per_dimension: 8, ..defaults.clone() };
    let e = check(&narrow, None).unwrap_err();
    assert!(e.starts_with("batch × seq_len (ctx): the full batch's 512 positions need 16 workgroups"), "{e}");
    assert!(e.contains("this GPU allows 8 (maxComputeWorkgroupsPerDimension)"), "{e}");
    let few = wgpu::Limits { max_storage_buffers_per_shader_stage: 4, ..defaults.clone() };
    let e = check(&few, None).unwrap_err();
    assert!(e.starts_with("backend: gradlab's kernels bind up to") && e.contains("this GPU allows 4"), "{e}");
    let e = check(&defaults, Some(1 << 20)).unwrap_err();
    assert!(e.contains("of GPU memory in all") && e.contains("over the 1 MiB a lab may take on the GPU"), "{e}");
    // the settings layer: refused on the GPU by these limits, taken by the CPU
    let tiny = wgpu::Limits { max_storage_buffer_binding_size: 256 << 10, ..defaults.clone() };
    assert!(lab.resolve_on(Backend::Gpu, &tiny).unwrap_err().to_string().starts_with("batch × seq_len: "));
    assert!(lab.resolve_on(Backend::Cpu, &tiny).is_ok() && lab.resolve_on(Backend::Reference, &tiny).is_ok());
}

/// The issue's finding: `validateLabConfig({"seq_len": 4096}, "webgpu")`
/// passed and the GPU then failed ("Invalid Buffer att"). Against WebGPU's
/// default limits (what the settings check uses where it has no adapter)
/// it is refused naming the settings, the need and the limit. On the CPU it
/// is refused too, by the CPU's work budget (four thousand positions of the
/// page's defaults); a lab past a GPU's limits that fits the CPU's budget is
/// the CPU's (above, with limits made for it).
#[test]
fn the_issues_long_context_is_refused_by_name_on_webgpu() {
    let issue = settings(json!({"seq_len": 4096}));
    let e = for_reader(&issue.resolve(Backend::Gpu).unwrap_err());
    assert_eq!(
        e,
        "batch × seq_len (ctx): the full batch's attention scores (8 sequences × 2 heads × 4096 × 4096 positions) \
         need 1 GiB in one buffer, this GPU allows 128 MiB per buffer (maxStorageBufferBindingSize); lower the batch \
         or the context"
    );
    let e = issue.resolve(Backend::Cpu).unwrap_err().to_string();
    assert!(e.starts_with("batch:") && e.contains("operations per step"), "{e}");
    // on an adapter that allows 4 GiB buffers, its 5.4 GiB in all is past the memory budget
    let large = wgpu::Limits { max_storage_buffer_binding_size: 4 << 30, max_buffer_size: 4 << 30, ..webgpu_limits() };
    let e = for_reader(&issue.resolve_on(Backend::Gpu, &large).unwrap_err());
    assert_eq!(
        e,
        "batch × seq_len (ctx): the lab's 3 runs need 5.4 GiB of GPU memory in all (4.5 GiB of it attention scores), \
         over the 4.5 GiB a lab may take on the GPU; lower the batch or the context"
    );
}

/// What `GPU_MEMORY_BUDGET`'s comment says it admits and refuses.
#[test]
fn the_memory_budget_admits_what_its_comment_says() {
    let gib = |c: &LabConfig| {
        c.run_configs().iter().map(|r| RunSizes::new(r).unwrap().total_bytes()).sum::<u64>() as f64
            / (1u64 << 30) as f64
    };
    let close = |x: f64, figure: f64| (x - figure).abs() < 0.05;
    // the largest lab of the page's own settings: small, B = b = 32, T = 256
    let page = settings(json!({"preset": "small", "batch": 32, "micro_batch": 32, "seq_len": 256}));
    let c = page.resolve(Backend::Gpu).unwrap();
    assert!(close(gib(&c), 3.3), "{}", gib(&c));
    // nano at T = 4096 (refused), and the G sweep of small at B = 32, T = 256 (the work budget's largest)
    let mut nano = LabConfig::three_way(ModelConfig::nano(), 8, 2, 1.0, 1);
    (nano.model.block_size, nano.seq_len) = (4096, 4096);
    assert!(close(gib(&nano), 5.4), "{}", gib(&nano));
    let mut sweep = LabConfig::sweep(ModelConfig::small(), 32, 1.0, 1);
    sweep.seq_len = 256;
    assert!(close(gib(&sweep), 4.3), "{}", gib(&sweep));
    let sweep = settings(json!({"preset": "small", "batch": 32, "seq_len": 256, "sweep": true}));
    assert!(sweep.resolve(Backend::Gpu).is_ok());
    assert!(gib(&nano) * (1u64 << 30) as f64 > GPU_MEMORY_BUDGET as f64);
    assert!(gib(&sweep.resolve(Backend::Gpu).unwrap()) * ((1u64 << 30) as f64) < GPU_MEMORY_BUDGET as f64);
}
