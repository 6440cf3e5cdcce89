//! Every option of `run`, `batch` and `sim` that takes a value, given values a user or a
//! script gets wrong (empty, negative, huge, not a number, not ASCII, a path that is not
//! there, 10,000 characters): the command takes the value or refuses it with a usage error
//! that names the option. It never panics, hangs or sends anything. The options are read
//! from each command's `--help`, so one added later is swept too.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

const REDUX: &str = "fal-ai/flux-1/dev/redux";

/// The options of `args --help` that take a value (`--name <VALUE>`).
fn value_options(home: &Scratch, args: &[&str]) -> Vec<String> {
    let (code, out, err) = run(falq(home).args(args).arg("--help"));
    assert_eq!(code, 0, "{args:?} --help: {err}");
    let options: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-").and_then(|r| r.split_once(", ")).map_or(l, |(_, rest)| rest);
            let (name, rest) = l.strip_prefix("--")?.split_once(' ')?;
            rest.starts_with('<').then(|| format!("--{name}"))
        })
        .collect();
    assert!(!options.is_empty(), "{args:?} --help lists no option with a value:\n{out}");
    options
}

/// Values that are wrong for most options and right for some.
fn hostile_values() -> Vec<String> {
    [
        "",
        " ",
        "-1",
        "0",
        "nan",
        "1e999",
        "18446744073709551616",
        "🙂 图像",
        "../../no/such/dir/x",
        "@no/such/file",
        "=",
        "a=b=c",
        "\t",
        "http://",
        "%00",
    ]
    .into_iter()
    .map(String::from)
    .chain([String::from("x").repeat(10_000)])
    .collect()
}

/// Runs the child to its end (killed after `limit`): its exit code (`None` when killed),
/// stdout and stderr.
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("the child is waited for") {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut out, mut err) = (String::new(), String::new());
    let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    (code, out, err)
}

/// What is wrong with one run of `args`, if anything.
fn verdict(args: &[String], option: &str, code: Option<i32>, out: &str, err: &str) -> Option<String> {
    let shown = |s: &str| s.chars().take(300).collect::<String>();
    let label = format!("{option} in {:?}", args.iter().map(|a| shown(a)).collect::<Vec<_>>());
    match code {
        _ if err.contains("panicked") => Some(format!("{label}: panicked:\n{}", shown(err))),
        None => Some(format!("{label}: still running after its limit")),
        Some(2) if !err.contains(option) => Some(format!("{label}: a usage error that does not name {option}:\n{}", shown(err))),
        Some(2) if !out.is_empty() => Some(format!("{label}: a usage error with output on stdout: {}", shown(out))),
        Some(0 | 2) => None,
        Some(c) => Some(format!("{label}: exit {c}:\n{}", shown(err))),
    }
}

#[test]
fn every_option_given_a_hostile_value_is_taken_or_refused_by_name() {
    let home = Scratch::new("hostile-args");
    let img = format!("image_url={}", fixture_png());
    let lines = home.path("lines.jsonl");
    std::fs::write(&lines, format!("{{\"image_url\": \"{}\"}}\n", fixture_png())).unwrap();
    let lines = lines.display().to_string();
    // Each command with what makes it run offline and send nothing (`--dry-run`).
    let commands: [(&str, Vec<String>); 2] = [
        ("run", ["run", REDUX, "--sim", "--set", &img, "--dry-run"].map(String::from).to_vec()),
        ("batch", ["batch", &lines, "--sim", "--dry-run"].map(String::from).to_vec()),
    ];
    let mut wrong = Vec::new();
    for (command, base) in &commands {
        for option in value_options(&home, &[command]) {
            for value in hostile_values() {
                // `--option=VALUE`: a value that starts with `-` is the option's too.
                let args: Vec<String> = base.iter().cloned().chain([format!("{option}={value}")]).collect();
                let child = falq(&home).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("falq starts");
                let (code, out, err) = finish(child, Duration::from_secs(60));
                wrong.extend(verdict(&args, &option, code, &out, &err));
            }
        }
    }
    // The simulator serves until stopped: a value it takes shows as its first line.
    for option in value_options(&home, &["sim"]) {
        for value in hostile_values() {
            let mut args: Vec<String> = vec!["sim".into(), format!("{option}={value}")];
            if option != "--addr" {
                args.extend(["--addr".into(), "127.0.0.1:0".into()]);
            }
            let mut child = falq(&home).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("falq sim starts");
            let mut first = String::new();
            let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first);
            if first.starts_with("listening on ") {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let (code, out, err) = finish(child, Duration::from_secs(60));
            wrong.extend(verdict(&args, &option, code, &(first + &out), &err));
        }
    }
    assert!(wrong.is_empty(), "{} runs went wrong:\n{}", wrong.len(), wrong.join("\n\n"));
}
