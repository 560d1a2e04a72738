//! How long work reports progress and learns it should stop: the OFX layer implements this with
//! the host's progress suite and abort check, the CLI with a progress bar and Ctrl-C. The engine
//! checks `cancelled` between steps and never draws anything itself.

pub trait Progress: Sync {
    /// `fraction` of the whole job done, with a short label ("denoising 12/50").
    fn update(&self, fraction: f32, label: &str);
    /// Whether the caller asked to stop; the engine then returns `Error::Cancelled`.
    fn cancelled(&self) -> bool;

    /// Between two units of work: `Error::Cancelled` if the caller asked to stop, else reports
    /// `done` of `total` with `label`.
    fn step(&self, done: usize, total: usize, label: &str) -> crate::error::Result<()> {
        if self.cancelled() {
            return Err(crate::error::Error::Cancelled);
        }
        self.update(done as f32 / total.max(1) as f32, label);
        Ok(())
    }
}

/// For callers that neither show progress nor cancel.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: f32, _: &str) {}
    fn cancelled(&self) -> bool {
        false
    }
}
