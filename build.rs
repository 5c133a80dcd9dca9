//! Copies each WGSL file in `shaders/` into OUT_DIR without its comments and
//! indentation, for `gpu/table.rs` to compile in. The comments are for
//! people reading `shaders/`, and the web module need not carry them
//! (BENCHMARKS.md, the module's size). Every line stays a line, so a line
//! number in a shader compiler's message still points into the file in
//! `shaders/`. (WGSL has no string
//! literals, so a `//` always starts a comment.)

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=shaders");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shaders");
    fs::create_dir_all(&out).expect("OUT_DIR/shaders can be made");
    for entry in fs::read_dir("shaders").expect("shaders/ is readable") {
        let path = entry.expect("shaders/ lists").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let source = fs::read_to_string(&path).expect("a WGSL file is text");
        let code: Vec<&str> = source.lines().map(|line| line.split("//").next().unwrap_or_default().trim()).collect();
        fs::write(out.join(path.file_name().expect("a file name")), code.join("\n") + "\n")
            .expect("OUT_DIR is writable");
    }
}
