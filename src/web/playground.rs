//! The playground panel's JavaScript API: a thin shell over `playground`,
//! optimizer trajectories on a 2-D surface.
//!
//! Not here: the lab (`lab`); nothing in it touches a GPU.

use wasm_bindgen::prelude::*;

use super::{js_err, js_tree};
use crate::playground::{Method, Playground, PlaygroundSettings, Surface};

/// Optimizer trajectories on a 2-D surface, for the playground panel.
#[wasm_bindgen]
pub struct WebPlayground {
    inner: Playground,
}

#[wasm_bindgen]
impl WebPlayground {
    /// `settings`: {lr, momentum, beta1, beta2, noise}, missing fields
    /// default; any other key is refused by name.
    #[wasm_bindgen(constructor)]
    pub fn new(surface: &str, settings: JsValue, x: f64, y: f64, seed: u32) -> Result<WebPlayground, JsError> {
        let surface: Surface = surface.parse().map_err(js_err)?;
        let settings: PlaygroundSettings = if settings.is_undefined() || settings.is_null() {
            PlaygroundSettings::default()
        } else {
            let tree = js_tree(&settings).map_err(|e| js_err(format!("playground settings: {e}")))?;
            crate::strict::read(tree, "playground setting").map_err(|e| js_err(format!("playground settings: {e}")))?
        };
        Ok(WebPlayground { inner: Playground::new(surface, settings, [x, y], seed as u64).map_err(js_err)? })
    }

    pub fn step(&mut self, n: u32) {
        for _ in 0..n.min(10_000) {
            self.inner.step();
        }
    }

    /// Optimizer names, in trajectory order.
    pub fn names() -> Vec<String> {
        Method::ALL.iter().map(|m| m.name().to_string()).collect()
    }

    /// The path of trajectory `i` as [x0, y0, x1, y1, ...].
    pub fn path(&self, i: usize) -> Vec<f64> {
        self.inner.trajectories.get(i).map(|t| t.path.iter().flatten().copied().collect()).unwrap_or_default()
    }

    /// 1 for each trajectory that left the plot for good (learning rate too high).
    pub fn diverged(&self) -> Vec<u8> {
        self.inner.trajectories.iter().map(|t| u8::from(t.diverged)).collect()
    }

    /// Loss at each trajectory's current point.
    pub fn losses(&self) -> Vec<f64> {
        self.inner.trajectories.iter().map(|t| self.inner.surface.value(t.position[0], t.position[1])).collect()
    }

    /// f on an nx × ny grid over the surface's bounds, row-major from the bottom-left.
    pub fn grid(surface: &str, nx: usize, ny: usize) -> Result<Vec<f64>, JsError> {
        let s: Surface = surface.parse().map_err(js_err)?;
        Ok(s.grid(nx.clamp(2, 400), ny.clamp(2, 400)))
    }

    /// [x_min, x_max, y_min, y_max]
    pub fn bounds(surface: &str) -> Result<Vec<f64>, JsError> {
        let s: Surface = surface.parse().map_err(js_err)?;
        Ok(s.bounds().to_vec())
    }

    #[wasm_bindgen(js_name = defaultStart)]
    pub fn default_start(surface: &str) -> Result<Vec<f64>, JsError> {
        let s: Surface = surface.parse().map_err(js_err)?;
        Ok(s.default_start().to_vec())
    }
}
