//! The regen pipeline: `specs/` → load → normalize → merge → generate → write.
//!
//! `cargo xtask regen` runs it; `cargo xtask regen --check` and the `regen_is_fresh`
//! test run it without writing.

pub mod diag;
pub mod generate;
pub mod lint;
pub mod load;
pub mod merge;
pub mod normalize;
pub mod walk;
pub mod write;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use diag::{Diagnostic, Errors};
use load::DocKind;
use write::Output;

/// Where the generated crate lives, relative to the project root.
pub const CRATE_DIR: &str = "generated/falq-api";

/// What a regen run produces.
pub struct Regen {
    /// The files of the generated crate.
    pub outputs: Vec<Output>,
    /// Warnings: skipped operations and guesses, each with file and line.
    pub warnings: Vec<Diagnostic>,
    /// The merged, normalized spec.
    pub spec: Value,
}

/// Runs load, normalize, merge and generate on `specs_dir`; file names in messages
/// are shown relative to `root`.
pub fn regen(specs_dir: &Path, root: &Path) -> Result<Regen, Errors> {
    let docs = load::load_dir(specs_dir, root)?;
    let authored: Vec<_> = docs.iter().filter(|d| d.kind == DocKind::Authored).cloned().collect();
    let overlays: Vec<_> = docs.iter().filter(|d| d.kind == DocKind::Overlay).cloned().collect();
    let queue_status_fields: BTreeSet<String> = authored
        .iter()
        .filter_map(|d| d.value.pointer("/components/schemas/QueueStatus/properties").and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut pages = Vec::new();
    for mut page in docs.into_iter().filter(|d| d.kind == DocKind::Page) {
        let source = page.source.clone();
        let mut ctx = normalize::Ctx { source: &source, warnings: Vec::new(), queue_status_fields: queue_status_fields.clone() };
        match normalize::normalize_page(&mut page.value, &mut ctx) {
            Ok(()) => pages.push(page),
            Err(e) => errors.push(e),
        }
        warnings.append(&mut ctx.warnings);
    }
    if !errors.is_empty() {
        return Err(Errors(errors));
    }
    if pages.is_empty() {
        return Err(Diagnostic::new(specs_dir, 0, "no Apifox page found").help("put the relay's exported pages (.md) under specs/").into());
    }
    let mut spec = merge::merge(&authored, &pages, &overlays, env!("CARGO_PKG_VERSION"))?;
    let sources: Vec<_> = authored.iter().chain(&pages).cloned().collect();
    let (mut lint_warnings, lint_errors) = lint::stray_keywords(&mut spec, &sources);
    warnings.append(&mut lint_warnings);
    if !lint_errors.is_empty() {
        return Err(Errors(lint_errors));
    }
    let generated = generate::generate(&spec)?;
    let json = serde_json::to_string_pretty(&spec).map_err(|e| Diagnostic::new(Path::new(CRATE_DIR), 0, e.to_string()))? + "\n";
    let outputs = vec![
        Output { path: format!("{CRATE_DIR}/openapi.json").into(), content: json },
        Output { path: format!("{CRATE_DIR}/src/generated.rs").into(), content: generated.client },
        Output { path: format!("{CRATE_DIR}/src/catalog.rs").into(), content: generated.catalog },
    ];
    Ok(Regen { outputs, warnings, spec })
}

/// The project root: the parent of this crate's directory.
pub fn project_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Regenerates into the project at `root` (writing, or with `check` only comparing).
/// Returns the report; an `Err` is a message ready to print.
pub fn run(root: &Path, check: bool) -> Result<(write::WriteReport, Vec<Diagnostic>), String> {
    let regen = regen(&root.join("specs"), root).map_err(|e| e.to_string())?;
    let report = write::ensure_files(root, &regen.outputs, check).map_err(|e| format!("error: cannot write the generated crate: {e}"))?;
    Ok((report, regen.warnings))
}
