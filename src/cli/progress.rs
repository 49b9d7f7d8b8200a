//! Progress bars on stderr: the binary's [`Progress`] (the library only reports).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use redis_rescue::progress::{Progress, ProgressHandle, Task, Unit};

/// Bars on stderr (indicatif hides them when stderr is not a terminal).
struct Bars;

struct Bar(ProgressBar);

impl Task for Bar {
    fn advance(&mut self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, total: u64, unit: Unit) -> Box<dyn Task> {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let counts = match unit {
            Unit::Bytes => "{binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
            Unit::Keys => "{human_pos}/{human_len} {per_sec} {eta}",
        };
        bar.set_style(
            ProgressStyle::with_template(&format!("{what} {{wide_bar}} {counts}"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Box::new(Bar(bar))
    }
}

/// Bars when `show`, else nothing.
pub fn bars(show: bool) -> ProgressHandle {
    if show {
        ProgressHandle::new(Bars)
    } else {
        ProgressHandle::default()
    }
}
