//! Tests that the kernel table and the params structs say what the WGSL
//! says: for every kernel, its params struct has the fields of the WGSL
//! struct of the same name, in order and with the same types; its entry point
//! exists; and the bindings that entry point uses are the ones declared, with
//! the same access. Reads the shader text with a small scanner, no GPU.
//!
//! Not a WGSL parser: it knows the shape our shaders are written in (one
//! declaration per line, `//` comments), and a local variable named like a
//! binding would count as a use of it, which fails loudly rather than hiding.

use std::collections::{BTreeSet, HashMap};

use super::table::{Access, KernelId};

fn strip_comments(src: &str) -> String {
    src.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The text between the `{` at or after `from` and its matching `}`.
fn braced(src: &str, from: usize) -> &str {
    let open = from + src[from..].find('{').expect("an opening brace");
    let mut depth = 0;
    for (i, ch) in src[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces")
}

/// Where `word` occurs in `src` as a whole identifier.
fn find_word(src: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    src.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = src[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = src[i + word.len()..].chars().next().is_none_or(|c| !is_ident(c));
        before && after
    })
}

/// The (field, type) list of `struct name { ... }`.
fn struct_fields(src: &str, name: &str) -> Vec<(String, String)> {
    let at = find_word(src, &format!("struct {name}")).unwrap_or_else(|| panic!("no WGSL struct {name}"));
    braced(src, at)
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (field, ty) = f.split_once(':').unwrap_or_else(|| panic!("{name}: odd field {f:?}"));
            (field.trim().to_string(), ty.trim().to_string())
        })
        .collect()
}

/// A module-scope `@group(0) @binding(n) var<space> name: type;`.
struct Global {
    binding: u32,
    /// `uniform`, `storage, read` or `storage, read_write`
    space: String,
    ty: String,
}

fn globals(src: &str) -> HashMap<String, Global> {
    let mut out = HashMap::new();
    for line in src.lines().map(str::trim).filter(|l| l.starts_with("@group(0) @binding(")) {
        let rest = &line["@group(0) @binding(".len()..];
        let (binding, rest) = rest.split_once(')').expect("binding number");
        let rest = rest.trim().strip_prefix("var<").expect("a var");
        let (space, rest) = rest.split_once('>').expect("address space");
        let (name, ty) = rest.trim_end_matches(';').split_once(':').expect("name: type");
        let global = Global { binding: binding.parse().expect("a number"), space: space.into(), ty: ty.trim().into() };
        out.insert(name.trim().to_string(), global);
    }
    out
}

/// Body of every `fn` in the file, by name.
fn functions(src: &str) -> HashMap<String, &str> {
    let mut out = HashMap::new();
    let mut from = 0;
    while let Some(i) = src[from..].find("fn ").map(|i| from + i) {
        let name: String = src[i + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name, braced(src, i));
        }
        from = i + 3;
    }
    out
}

/// Identifiers an entry point uses, through the functions it calls; a name
/// after `.` is a field, not a use.
fn used_names(fns: &HashMap<String, &str>, entry: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut used = BTreeSet::new();
    let mut todo = vec![entry.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let body = fns[&f];
        let starts = body.char_indices().filter(|&(i, c)| {
            is_ident(c) && !c.is_ascii_digit() && body[..i].chars().next_back().is_none_or(|p| !is_ident(p))
        });
        for (start, _) in starts {
            if body[..start].trim_end().ends_with('.') {
                continue;
            }
            let word: String = body[start..].chars().take_while(|&c| is_ident(c)).collect();
            if fns.contains_key(&word) {
                todo.push(word.clone());
            }
            used.insert(word);
        }
    }
    used
}

#[test]
fn rust_params_mirror_wgsl_structs_and_bindings() {
    for &kernel in KernelId::ALL {
        let spec = kernel.spec();
        let src = strip_comments(spec.source);
        let what = format!("{kernel:?} ({}, {})", spec.file, spec.entry);

        let wgsl = struct_fields(&src, spec.params_name);
        let rust: Vec<(String, String)> =
            spec.params_fields.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
        assert_eq!(rust, wgsl, "{what}: {} differs between Rust and WGSL", spec.params_name);

        let fns = functions(&src);
        assert!(fns.contains_key(spec.entry), "{what}: no entry point");
        let at = find_word(&src, &format!("fn {}", spec.entry)).unwrap_or_default();
        assert!(src[..at].trim_end().rsplit('\n').take(2).any(|l| l.contains("@compute")), "{what}: not @compute");

        let globals = globals(&src);
        let used = used_names(&fns, spec.entry);
        let mut uniforms = Vec::new();
        let mut storage = BTreeSet::new();
        for (name, g) in globals.iter().filter(|(name, _)| used.contains(*name)) {
            match g.space.as_str() {
                "uniform" => uniforms.push((name.clone(), g.binding, g.ty.clone())),
                "storage, read" => assert!(storage.insert((g.binding, Access::R)), "{what}: {name} twice"),
                "storage, read_write" => assert!(storage.insert((g.binding, Access::W)), "{what}: {name} twice"),
                other => panic!("{what}: {name} in address space {other}"),
            }
        }
        assert_eq!(uniforms.len(), 1, "{what}: uses uniforms {uniforms:?}, wants exactly one");
        let (name, binding, ty) = &uniforms[0];
        assert_eq!((*binding, ty.as_str()), (0, spec.params_name), "{what}: uniform {name}");
        let declared: BTreeSet<(u32, Access)> = spec.bindings.iter().copied().collect();
        assert_eq!(declared.len(), spec.bindings.len(), "{what}: a binding declared twice");
        assert_eq!(storage, declared, "{what}: bindings the WGSL uses vs those declared");
    }
}

/// attention.wgsl (a real GPU's kernels) and attention_serial.wgsl (a
/// software adapter's) each declare the params, the bindings and the row
/// helpers, WGSL having no include: the same in both, so one cannot drift.
#[test]
fn the_attention_files_repeat_their_shared_declarations_exactly() {
    let (gpu, serial) = (KernelId::AttentionForwardRows.spec(), KernelId::AttentionForwardSerial.spec());
    assert_eq!((gpu.file, serial.file), ("attention.wgsl", "attention_serial.wgsl"));
    let (gpu, serial) = (strip_comments(gpu.source), strip_comments(serial.source));
    for name in ["AttentionParams", "Row"] {
        assert_eq!(struct_fields(&gpu, name), struct_fields(&serial, name), "struct {name}");
    }
    let (gpu_fns, serial_fns) = (functions(&gpu), functions(&serial));
    for name in ["index", "qkv_at", "row_of"] {
        assert_eq!(gpu_fns[name], serial_fns[name], "fn {name}");
    }
    let declared = |src: &str| -> BTreeSet<(String, u32, String, String)> {
        globals(src).into_iter().map(|(name, g)| (name, g.binding, g.space, g.ty)).collect()
    };
    assert_eq!(declared(&gpu), declared(&serial), "the bindings");
}

#[test]
fn kernel_ids_index_the_table() {
    for (i, &kernel) in KernelId::ALL.iter().enumerate() {
        assert_eq!(kernel as usize, i);
        assert!(kernel.spec().bindings.iter().all(|&(b, _)| b != 0), "{kernel:?}: binding 0 is the params");
    }
}

#[test]
fn scanner_sees_through_helpers_and_fields() {
    let src = "fn helper() -> f32 { return xs[0]; }\n@compute fn main() { let a = p.xs + helper(); }";
    let fns = functions(src);
    let used = used_names(&fns, "main");
    assert!(used.contains("xs") && used.contains("p") && used.contains("helper"));
    let used = used_names(&fns, "helper");
    assert!(used.contains("xs") && !used.contains("p") && !used.contains("a"));
}
