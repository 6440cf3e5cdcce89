//! `cargo xtask regen [--check]`: regenerate the falq-api crate from `specs/`.

use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask regen [--check]\n\n  regen          regenerate generated/falq-api from specs/\n  regen --check  write nothing; fail with a diff when the generated crate is stale";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["regen"] => false,
        ["regen", "--check"] | ["--check", "regen"] => true,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("error: unknown arguments {args:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let root = match xtask::project_root() {
        Ok(root) => root,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    match xtask::run(&root, check) {
        Ok((report, warnings)) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            let ms = started.elapsed().as_millis();
            if check && !report.changed.is_empty() {
                print!("{}", report.diff);
                eprintln!(
                    "error: the generated crate is stale ({}): run `cargo xtask regen`",
                    report.changed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                );
                return ExitCode::FAILURE;
            }
            if check {
                eprintln!("generated/falq-api is up to date ({ms} ms)");
            } else if report.changed.is_empty() {
                eprintln!("generated/falq-api unchanged ({ms} ms)");
            } else {
                for p in &report.changed {
                    eprintln!("wrote {}", p.display());
                }
                eprintln!("regenerated in {ms} ms");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
