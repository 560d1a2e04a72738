//! A backend buffer with its shape: what model code passes around.

use super::{Backend, Buffer};
use crate::error::{Error, Result};

pub struct Tensor<B: Backend> {
    pub buf: B::Buf,
    shape: Vec<usize>,
}

impl<B: Backend> Tensor<B> {
    /// A tensor of `shape` with unspecified contents (every op fully writes its output).
    pub fn empty(be: &B, shape: &[usize]) -> Result<Self> {
        Ok(Tensor { buf: be.alloc(shape.iter().product())?, shape: shape.to_vec() })
    }

    pub fn from_host(be: &B, shape: &[usize], data: &[f32]) -> Result<Self> {
        check_len(shape, data.len())?;
        Ok(Tensor { buf: be.upload(data)?, shape: shape.to_vec() })
    }

    /// Like `from_host`, handing the vector over (no copy on the CPU).
    pub fn from_vec(be: &B, shape: &[usize], data: Vec<f32>) -> Result<Self> {
        check_len(shape, data.len())?;
        Ok(Tensor { buf: be.upload_vec(data)?, shape: shape.to_vec() })
    }

    /// A tensor of `shape` whose values `fill(offset, piece)` writes piece by piece, each piece
    /// a whole multiple of `align` values (`Backend::upload_pieces`).
    pub fn from_pieces(
        be: &B,
        shape: &[usize],
        align: usize,
        fill: &mut dyn FnMut(usize, &mut [f32]) -> Result<()>,
    ) -> Result<Self> {
        Ok(Tensor { buf: be.upload_pieces(shape.iter().product(), align, fill)?, shape: shape.to_vec() })
    }

    pub fn to_host(&self, be: &B) -> Result<Vec<f32>> {
        be.download(&self.buf)
    }

    /// The values in pieces of a whole multiple of `align` (`Backend::download_pieces`).
    pub fn to_host_pieces(
        &self,
        be: &B,
        align: usize,
        visit: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        be.download_pieces(&self.buf, align, visit)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reinterprets the same elements with another shape of equal size (row-major, no copy).
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != self.len() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {:?} ({} values) as {shape:?}", self.shape, self.len()),
            ));
        }
        self.shape = shape.to_vec();
        Ok(())
    }
}

fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != len {
        return Err(Error::shape("upload", format!("shape {shape:?} holds {n} values, got {len}")));
    }
    Ok(())
}
