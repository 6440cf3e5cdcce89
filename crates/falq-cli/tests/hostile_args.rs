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
        ("batch", ["batch", REDUX, &lines, "--sim", "--dry-run"].map(String::from).to_vec()),
    ];
    let mut wrong = Vec::new();
    for (command, base) in &commands {
        // The command as given runs: what goes wrong below is the option's doing.
        let (code, _, err) = run(falq(&home).args(base));
        assert_eq!(code, 0, "{base:?}: {err}");
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

/// Edits of one line of a JSON-lines batch file (cut, of another type, a field unknown or
/// of the wrong type, huge, not ASCII, a BOM, a CR, blank), and whether the line must then
/// be refused (a BOM, a CR and a blank line may be read past).
type LineEdit = (&'static str, fn(&str) -> String, bool);

/// A line's object with one member more, last (where a key given twice takes its value).
fn with(line: &str, member: &str) -> String {
    format!("{}, {member}}}", line.trim_end().trim_end_matches('}'))
}

const LINE_EDITS: &[LineEdit] = &[
    ("cut at half", |l| l[..l.len() / 2].to_string(), true),
    ("its last byte lost", |l| l[..l.len() - 1].to_string(), true),
    ("null", |_| "null".into(), true),
    ("an array", |_| "[1, 2]".into(), true),
    ("an empty object", |_| "{}".into(), true),
    ("text after it", |l| format!("{l} trailing"), true),
    ("an unknown field", |l| with(l, "\"colour\": \"red\""), true),
    ("a key given twice", |l| with(l, "\"image_url\": \"https://example.test/other.png\""), true),
    ("a number out of range", |l| with(l, "\"seed\": 1e999"), true),
    ("a count of the wrong type", |l| with(l, "\"num_images\": \"two\""), true),
    ("a file that is not there", |_| "{\"image_url\": \"../no/such/🙂.png\"}".into(), true),
    ("10,000 characters", |l| with(l, &format!("\"output_format\": \"{}\"", "x".repeat(10_000))), true),
    ("a byte-order mark", |l| format!("\u{feff}{l}"), false),
    ("a carriage return", |l| format!("{l}\r"), false),
    ("blank", |_| "   ".into(), false),
];

#[test]
fn every_line_of_a_batch_file_edited_is_taken_or_reported_by_its_number() {
    let home = Scratch::new("hostile-lines");
    let png = fixture_png();
    let lines: Vec<String> = [
        serde_json::json!({"image_url": png}),
        serde_json::json!({"image_url": png, "num_images": 2, "seed": 7}),
        serde_json::json!({"image_url": png, "output_format": "png"}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    let file = home.path("lines.jsonl");
    let mut wrong = Vec::new();
    for n in 0..lines.len() {
        for (what, edit, must_refuse) in LINE_EDITS {
            let mut edited = lines.clone();
            edited[n] = edit(&lines[n]);
            std::fs::write(&file, edited.join("\n") + "\n").unwrap();
            let args = ["batch", REDUX, &file.display().to_string(), "--format", "jsonl", "--sim", "--dry-run"].map(String::from);
            let child = falq(&home).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("falq starts");
            let (code, out, err) = finish(child, Duration::from_secs(60));
            let label = format!("line {} {what}", n + 1);
            if err.contains("panicked") || code != Some(0) {
                wrong.push(format!("{label}: exit {code:?}:\n{}", err.chars().take(400).collect::<String>()));
                continue;
            }
            // Only the edited line may be blamed, by its number.
            let blamed: Vec<&str> = err.lines().filter(|l| l.starts_with("line ")).collect();
            if blamed.iter().any(|l| !l.starts_with(&format!("line {}:", n + 1))) {
                wrong.push(format!("{label}: another line blamed: {blamed:?}"));
            }
            if *must_refuse && (blamed.is_empty() || !out.contains(&format!("{} line(s): 1 invalid", lines.len()))) {
                wrong.push(format!("{label}: not refused by its number:\n{out}{err}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} edits went wrong:\n{}", wrong.len(), wrong.join("\n\n"));
}
