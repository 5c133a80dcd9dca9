//! The three backends by the names users see, one spelling each: `gpu`, the
//! WGSL kernels through wgpu (`GpuRun`); `cpu`, gradlab's f32 CPU backend
//! (`FastCpuRun`); `reference`, the f64 reference the other two are checked
//! against (`ReferenceRun`). The CLI's `--backend` and the settings' work budgets
//! speak of these; the wasm API keeps its JavaScript spellings (`web::lab`).
//! Not here: building a lab on one (that needs the backend's types).

use std::fmt;

use crate::model::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// WGSL kernels through wgpu, in f32.
    Gpu,
    /// gradlab's f32 CPU backend (`cpu::FastCpuRun`): any preset.
    Cpu,
    /// The f64 reference (`cpu::ReferenceRun`).
    Reference,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Gpu, Backend::Cpu, Backend::Reference];

    /// The name the CLI takes and prints.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
            Backend::Reference => "reference",
        }
    }

    /// A backend by name, with a note in words when the name was spelled as
    /// an older release spelled it: `cpu-f32` (now `cpu`), and `cpu` itself,
    /// which named the f64 reference until 2026-12-07 (a saved script that
    /// says `--backend cpu` now gets the f32 backend, and is told so).
    pub fn parse(name: &str) -> Result<(Backend, Option<String>), ConfigError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "gpu" => Ok((Backend::Gpu, None)),
            "cpu" => Ok((
                Backend::Cpu,
                Some("note: --backend cpu is gradlab's f32 CPU backend; before 2026-12-07 it named the f64 reference, which is now --backend reference".into()),
            )),
            "cpu-f32" => Ok((Backend::Cpu, Some("note: --backend cpu-f32 is now spelled --backend cpu".into()))),
            "reference" => Ok((Backend::Reference, None)),
            other => Err(ConfigError::Invalid {
                field: "backend",
                reason: format!(
                    "unknown backend {:?}; choose {}",
                    other.chars().take(40).collect::<String>(),
                    Backend::ALL.map(Backend::name).join(", ")
                ),
            }),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_old_spellings_are_named() {
        for b in Backend::ALL {
            assert_eq!(Backend::parse(b.name()).unwrap().0, b);
        }
        let (b, note) = Backend::parse("cpu-f32").unwrap();
        assert_eq!(b, Backend::Cpu);
        assert!(note.unwrap().contains("now spelled --backend cpu"));
        assert!(Backend::parse("cpu").unwrap().1.unwrap().contains("reference"));
        assert!(Backend::parse("reference").unwrap().1.is_none());
        let e = Backend::parse("tpu").unwrap_err().to_string();
        assert!(e.contains("backend") && e.contains("tpu") && e.contains("reference"), "{e}");
    }
}
