//! Per-op device time, for finding where a forward spends it (`SANA_PROFILE=1`): CUDA events
//! around every backend op, summed by label when the report is asked for. Off by default: the
//! events cost a little and the labels allocate.

use std::collections::BTreeMap;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::CudaEvent;
use parking_lot::Mutex;

use super::error::DriverContext;
use super::Cuda;
use crate::error::Result;

#[derive(Default)]
pub struct Profiler {
    pub enabled: bool,
    spans: Mutex<Vec<(String, CudaEvent, CudaEvent)>>,
}

impl Profiler {
    pub fn from_env() -> Self {
        Profiler { enabled: std::env::var("SANA_PROFILE").is_ok_and(|v| v == "1"), spans: Mutex::new(Vec::new()) }
    }
}

/// One row of the report: label, total milliseconds, calls.
pub type ProfileRow = (String, f64, usize);

impl Cuda {
    /// Runs `f`, timing it on the stream when profiling is on.
    pub(super) fn timed<T>(&self, label: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if !self.profiler.enabled {
            return f();
        }
        let event = || self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).during("creating a profiling event");
        let start = event().map_err(|e| self.err(e))?;
        start.record(&self.stream).during("recording a profiling event").map_err(|e| self.err(e))?;
        let out = f()?;
        let end = event().map_err(|e| self.err(e))?;
        end.record(&self.stream).during("recording a profiling event").map_err(|e| self.err(e))?;
        self.profiler.spans.lock().push((label(), start, end));
        Ok(out)
    }

    /// Device time per label since the last report, largest first (synchronises the stream).
    pub fn profile_report(&self) -> Result<Vec<ProfileRow>> {
        self.synchronize()?;
        let spans = std::mem::take(&mut *self.profiler.spans.lock());
        let mut by_label: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for (label, start, end) in spans {
            let ms = start.elapsed_ms(&end).during("reading a profiling event").map_err(|e| self.err(e))? as f64;
            let entry = by_label.entry(label).or_default();
            entry.0 += ms;
            entry.1 += 1;
        }
        let mut rows: Vec<ProfileRow> = by_label.into_iter().map(|(l, (ms, n))| (l, ms, n)).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(rows)
    }
}
