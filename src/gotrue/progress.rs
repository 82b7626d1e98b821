//! Progress bars on the terminal (stderr), for tables of 100 000 rows and more; nothing at
//! all when stderr is not a terminal (a pipe, a log file, CI), so that output stays clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress(ProgressBar);

impl Progress {
    /// A bar for `total` rows of `what`.
    pub fn new(what: &str, total: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(total);
        // The template is a constant, so this cannot fail; fall back to the default otherwise.
        if let Ok(style) = ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress(bar)
    }

    pub fn advance(&self, rows: usize) {
        self.0.inc(rows as u64);
    }

    pub fn finish(self) {
        self.0.finish_and_clear();
    }
}
