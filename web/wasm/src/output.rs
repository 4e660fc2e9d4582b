//! A network's output as the page's workers receive it, shared by the CPU boundary (this crate,
//! and web/wasm-relaxed) and the GPU worker's (web/wasm-gpu includes this file).

use wasm_bindgen::prelude::*;

/// A network's output: its shape (NCHW) and its values, planar. `data` hands the values over
/// once (no copy is kept in the wasm heap); `free()` it after.
#[wasm_bindgen]
pub struct Output {
    pub(crate) shape: Vec<u32>,
    pub(crate) data: Vec<f32>,
}

#[wasm_bindgen]
impl Output {
    pub fn shape(&self) -> Vec<u32> {
        self.shape.clone()
    }

    pub fn data(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.data)
    }
}
