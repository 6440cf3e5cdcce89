//! Progress on stderr: a spinner with queue position, elapsed time and the latest log
//! line on a terminal; plain lines otherwise. stdout carries only the result.

use std::sync::Mutex;

use falq::Update;
use falq::types::QueueStatusKind;
use indicatif::{ProgressBar, ProgressStyle};

/// Where progress goes.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Mutex<String>,
}

impl Progress {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Self { bar, last_line: Mutex::new(String::new()) }
    }

    /// A line of its own.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A wait update.
    pub fn update(&self, u: &Update) {
        let state = match u.status {
            QueueStatusKind::InQueue => match u.queue_position {
                Some(p) => format!("queued, position {p}"),
                None => "queued".into(),
            },
            QueueStatusKind::InProgress => "running".into(),
            QueueStatusKind::Completed => "completed".into(),
        };
        let log = u.new_logs.last().map(|l| l.message.clone());
        match &self.bar {
            Some(b) => b.set_message(match &log {
                Some(l) => format!("{state} | {l}"),
                None => state,
            }),
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
                let line = format!("{state} ({:.1}s)", u.elapsed.as_secs_f64());
                if !state.is_empty() && *last != state {
                    eprintln!("{line}");
                    *last = state;
                }
                for l in &u.new_logs {
                    eprintln!("  {}", l.message);
                }
            }
        }
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
