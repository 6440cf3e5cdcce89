//! House rules no compiler checks: every Rust file of the project says what lives in it.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let root = xtask::project_root().expect("the checkout");
    let mut files = Vec::new();
    for dir in ["xtask", "crates", "tests", "generated"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 40, "found {} files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Generated files open with the do-not-edit header, then their `//!` lines.
        let text = text.strip_prefix(xtask::generate::HEADER).unwrap_or(&text);
        let generated = text.len() < std::fs::metadata(f).unwrap().len() as usize;
        if !text.starts_with("//!") && (!generated || !f.ends_with("generated.rs")) {
            bad.push(f.strip_prefix(&root).unwrap_or(f).display().to_string());
        }
    }
    assert!(bad.is_empty(), "these files do not open with a `//!` line saying what lives there:\n{}", bad.join("\n"));
}

/// What a file holds that the house rules count: functions longer than the limit, and
/// logic (a loop, a branch, an async function).
#[derive(Default)]
struct Shape {
    /// `name (lines)` of each function whose body runs over the limit.
    long: Vec<String>,
    /// `what at line N` of each loop, branch or async function.
    logic: Vec<String>,
}

/// A function's body over this many lines is one a reader cannot hold at once.
const MAX_FN_LINES: usize = 80;

impl<'ast> syn::visit::Visit<'ast> for Shape {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.body(&f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.body(&f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.body(&f.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
    fn visit_expr(&mut self, e: &'ast syn::Expr) {
        let what = match e {
            syn::Expr::Loop(_) | syn::Expr::While(_) | syn::Expr::ForLoop(_) => Some("a loop"),
            syn::Expr::Match(_) | syn::Expr::If(_) => Some("a branch"),
            syn::Expr::Async(_) => Some("an async block"),
            _ => None,
        };
        if let Some(what) = what {
            let line = syn::spanned::Spanned::span(e).start().line;
            self.logic.push(format!("{what} at line {line}"));
        }
        syn::visit::visit_expr(self, e);
    }
}

impl Shape {
    fn body(&mut self, sig: &syn::Signature, block: &syn::Block) {
        let span = block.brace_token.span;
        let lines = span.close().start().line.saturating_sub(span.open().start().line) + 1;
        if lines > MAX_FN_LINES {
            self.long.push(format!("{} ({lines} lines, line {})", sig.ident, span.open().start().line));
        }
        if sig.asyncness.is_some() {
            self.logic.push(format!("async fn {} at line {}", sig.ident, sig.ident.span().start().line));
        }
    }

    fn of(path: &Path) -> Shape {
        let text = std::fs::read_to_string(path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut shape = Shape::default();
        syn::visit::Visit::visit_file(&mut shape, &file);
        shape
    }
}

#[test]
fn the_generated_crate_s_lib_rs_holds_no_logic() {
    let root = xtask::project_root().expect("the checkout");
    let lib = root.join("generated/falq-api/src/lib.rs");
    let shape = Shape::of(&lib);
    assert!(
        shape.logic.is_empty(),
        "generated/falq-api/src/lib.rs is regen's glue, written from xtask/templates/lib.rs: its logic belongs in a compiled crate of crates/ (falq-runtime), not in a template:\n{}",
        shape.logic.join("\n")
    );
    // The check itself sees logic where there is some.
    let probe = root.join("crates/falq-runtime/src/lib.rs");
    assert!(!Shape::of(&probe).logic.is_empty(), "the runtime's retry loop is seen");
}
#[test]
fn no_function_of_the_product_crates_runs_over_eighty_lines() {
    let root = xtask::project_root().expect("the checkout");
    let mut files = Vec::new();
    for krate in ["falq", "falq-cli", "falq-sim", "falq-core", "falq-runtime"] {
        rust_files(&root.join("crates").join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 20, "found {} files", files.len());
    let mut long = Vec::new();
    for f in &files {
        for l in Shape::of(f).long {
            long.push(format!("{}: {l}", f.strip_prefix(&root).unwrap_or(f).display()));
        }
    }
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines (split them where they change subject):\n{}", long.join("\n"));
}
