//! The Base and Refine pipelines (MODEL.md §5, §6, §8). So far: resolution binning.

pub mod binning;
