//! The project's vocabulary, kept (issue 31): B is the sequences of one
//! optimizer step, b those of one micro-batch, G = B/b; the backends are
//! `gpu`, `cpu` (f32) and `reference` (f64); Adam's and momentum's vectors
//! are `moment1`/`moment2`. A doc or comment that says otherwise fails here,
//! with the file and line, so the next reader is not misled.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

const ROOTS: [&str; 7] = ["src", "shaders", "www", "docs", "tests", "scripts", "README.md"];

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            files(&entry.unwrap().path(), out);
        }
    } else if path
        .extension()
        .is_some_and(|e| ["rs", "wgsl", "js", "mjs", "html", "md", "css", "sh"].contains(&e.to_str().unwrap()))
    {
        out.push(path.to_path_buf());
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for r in ROOTS {
        files(&root.join(r), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        // this file quotes what it forbids
        .filter(|p| !p.ends_with("tests/vocabulary.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p.strip_prefix(root).unwrap().display().to_string(), text)
        })
        .collect()
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Where a line defines `B` as a micro-batch's sequences: a standalone `B`
/// whose clause (up to the next `,` `;` `.` `)` or `|`) speaks of one
/// micro-batch ("micro-batch", not "micro-batches").
fn b_per_micro_batch(line: &str) -> bool {
    let chars: Vec<char> = line.chars().collect();
    for i in 0..chars.len() {
        let standalone = chars[i] == 'B'
            && (i == 0 || !is_word(chars[i - 1]))
            && chars.get(i + 1).is_none_or(|&c| !is_word(c) && c != '/' && c != '[');
        if !standalone {
            continue;
        }
        let clause: String = chars[i + 1..].iter().take(48).take_while(|&&c| !",;.|".contains(c)).collect();
        let clause = clause.replace("micro-batches", "");
        let Some(at) = clause.find("micro-batch").or_else(|| clause.find("micro_batch")) else { continue };
        // "B = 8 b = 2 (micro-batch)": the micro-batch is b's, named first
        let before: Vec<char> = clause[..at].chars().collect();
        let names_b = (0..before.len()).any(|k| {
            before[k] == 'b' && (k == 0 || !is_word(before[k - 1])) && before.get(k + 1).is_none_or(|&c| !is_word(c))
        });
        if !names_b {
            return true;
        }
    }
    false
}

#[test]
fn b_is_the_sequences_of_an_optimizer_step_everywhere() {
    let mut wrong = Vec::new();
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            if b_per_micro_batch(line) {
                wrong.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "B documented as per micro-batch (it is per optimizer step; b is per micro-batch):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn kernel_shapes_name_the_micro_batch_b() {
    // a kernel sees one micro-batch: its shapes are [b, T, ...], never [B, ...]
    let mut wrong = Vec::new();
    for (path, text) in sources() {
        let kernel_file = path.starts_with("shaders/") || path.starts_with("src/gpu/") || path.starts_with("src/cpu/");
        if !kernel_file {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            // comments only: a test may name its own constants as it likes
            let Some(comment) = line.find("//").map(|i| &line[i..]) else { continue };
            if comment.contains("[B,")
                || comment.contains("[B, ")
                || comment.contains("B*T")
                || comment.contains("B * T")
            {
                wrong.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "kernel shapes with B (a kernel sees one micro-batch of b sequences):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn cpu_names_the_f32_backend_and_reference_the_f64_one() {
    let mut wrong = Vec::new();
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            // lower case only: the name a user types (the display name "CPU
            // (f64 reference)" is what saved states and sweep.json record)
            let says_cpu_is_f64 = ["cpu (the f64", "cpu (f64", "`cpu` (the f64", "`cpu` (f64", "cpu: the f64"]
                .iter()
                .any(|p| line.contains(p));
            if says_cpu_is_f64 {
                wrong.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(wrong.is_empty(), "`cpu` named as the f64 backend (it is `reference`):\n{}", wrong.join("\n"));
}

#[test]
fn optimizer_vectors_are_moments() {
    let mut wrong = Vec::new();
    for (path, text) in sources() {
        if !(path.starts_with("src/") || path.starts_with("shaders/") || path.starts_with("www/")) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains("state1") || line.contains("state2") {
                wrong.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(wrong.is_empty(), "the optimizer's vectors are moment1/moment2:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_catches_what_it_should() {
    assert!(b_per_micro_batch("//! Legend: B sequences per micro-batch, T positions"));
    assert!(b_per_micro_batch("/// B: sequences per micro-batch."));
    assert!(b_per_micro_batch("//! Legend used across the crate: B batch (sequences in a micro-batch), T time"));
    assert!(b_per_micro_batch("//! Legend: B micro-batch size, T positions"));
    assert!(!b_per_micro_batch("B sequences per optimizer step, b sequences per micro-batch, G = B/b micro-batches"));
    assert!(!b_per_micro_batch("(B = ${v.batch}, b = ${v.micro}): choose fewer ranks or a smaller micro-batch."));
    assert!(!b_per_micro_batch("/// B: sequences per optimizer step (the effective batch)."));
    assert!(!b_per_micro_batch(r#"format!("{strategy:?} B={batch} b={micro_batch} R={ranks}")"#));
}
