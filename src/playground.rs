//! The gradient-descent playground: 2-D loss surfaces and optimizer
//! trajectories across them.
//!
//! Every update is made by the project's CPU optimizer code, applied to a
//! two-element parameter vector: `cpu::sgd_update` and `cpu::adamw_update`
//! are the twins of the GPU's update kernels; `cpu::rmsprop_update` exists
//! only here (training offers no RMSProp, so it has no GPU kernel). The page
//! animates the project's own optimizers, not a JavaScript copy.

use serde::{Deserialize, Serialize};

use crate::cpu;
use crate::model::config::{check_range, ConfigError};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// f = (x² + 25 y²)/2: a long narrow valley, condition number 25.
    Quadratic,
    /// f = (1 − x)² + 100 (y − x²)²: a curved valley, minimum at (1, 1).
    Rosenbrock,
    /// f = (x² − y²)/2 + y⁴/4: a saddle at the origin, minima at (0, ±1).
    Saddle,
    /// Himmelblau's function: four minima of equal depth.
    Himmelblau,
}

impl std::str::FromStr for Surface {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "quadratic" => Ok(Self::Quadratic),
            "rosenbrock" => Ok(Self::Rosenbrock),
            "saddle" => Ok(Self::Saddle),
            "himmelblau" => Ok(Self::Himmelblau),
            _ => Err(ConfigError::Invalid {
                field: "surface",
                reason: format!("unknown surface {s:?}; choose quadratic, rosenbrock, saddle or himmelblau"),
            }),
        }
    }
}

impl Surface {
    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            Surface::Quadratic => 0.5 * (x * x + 25.0 * y * y),
            Surface::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            Surface::Saddle => 0.5 * (x * x - y * y) + 0.25 * y.powi(4),
            Surface::Himmelblau => (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2),
        }
    }

    pub fn gradient(self, x: f64, y: f64) -> [f64; 2] {
        match self {
            Surface::Quadratic => [x, 25.0 * y],
            Surface::Rosenbrock => [-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)],
            Surface::Saddle => [x, -y + y.powi(3)],
            Surface::Himmelblau => {
                let (a, b) = (x * x + y - 11.0, x + y * y - 7.0);
                [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b]
            }
        }
    }

    /// The region drawn: (x_min, x_max, y_min, y_max).
    pub fn bounds(self) -> [f64; 4] {
        match self {
            Surface::Quadratic => [-5.0, 5.0, -2.0, 2.0],
            Surface::Rosenbrock => [-2.0, 2.0, -1.0, 3.0],
            Surface::Saddle => [-2.0, 2.0, -2.0, 2.0],
            Surface::Himmelblau => [-5.0, 5.0, -5.0, 5.0],
        }
    }

    pub fn default_start(self) -> [f64; 2] {
        match self {
            Surface::Quadratic => [-4.5, 1.5],
            Surface::Rosenbrock => [-1.5, 2.5],
            Surface::Saddle => [-1.5, 0.02],
            Surface::Himmelblau => [-0.5, -0.5],
        }
    }

    /// f on an nx × ny grid over `bounds`, row-major from (x_min, y_min).
    pub fn grid(self, nx: usize, ny: usize) -> Vec<f64> {
        let [x0, x1, y0, y1] = self.bounds();
        let mut out = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            let y = y0 + (y1 - y0) * j as f64 / (ny.max(2) - 1) as f64;
            for i in 0..nx {
                let x = x0 + (x1 - x0) * i as f64 / (nx.max(2) - 1) as f64;
                out.push(self.value(x, y));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Gd,
    Sgd,
    Momentum,
    RmsProp,
    Adam,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::Gd, Method::Sgd, Method::Momentum, Method::RmsProp, Method::Adam];
    pub fn name(self) -> &'static str {
        match self {
            Method::Gd => "GD",
            Method::Sgd => "SGD",
            Method::Momentum => "Momentum",
            Method::RmsProp => "RMSProp",
            Method::Adam => "Adam",
        }
    }
}

/// Settings shared by all trajectories; missing fields take the defaults,
/// unknown ones are refused (read through `strict`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaygroundSettings {
    pub lr: f64,
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// SGD's gradient noise, relative to the gradient's size.
    pub noise: f64,
}

impl Default for PlaygroundSettings {
    fn default() -> Self {
        Self { lr: 0.01, momentum: 0.9, beta1: 0.9, beta2: 0.999, noise: 0.5 }
    }
}

impl PlaygroundSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("lr", self.lr, 1e-7, 10.0)?;
        check_range("momentum", self.momentum, 0.0, 0.999)?;
        check_range("beta1", self.beta1, 0.0, 0.999)?;
        check_range("beta2", self.beta2, 0.0, 0.99999)?;
        check_range("noise", self.noise, 0.0, 10.0)?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Trajectory {
    pub method: Method,
    pub position: [f64; 2],
    /// The optimizer's first and second moments: for (momentum) SGD moment1
    /// is the velocity, for RMSProp moment2 the mean square.
    moment1: [f64; 2],
    moment2: [f64; 2],
    steps: u32,
    pub path: Vec<[f64; 2]>,
    /// Set once the point leaves any sensible range (the learning rate is too high).
    pub diverged: bool,
}

/// All five optimizers started from one point on one surface.
#[derive(Debug, Clone)]
pub struct Playground {
    pub surface: Surface,
    pub settings: PlaygroundSettings,
    pub trajectories: Vec<Trajectory>,
    rng: Rng,
}

impl Playground {
    pub fn new(
        surface: Surface,
        settings: PlaygroundSettings,
        start: [f64; 2],
        seed: u64,
    ) -> Result<Self, ConfigError> {
        settings.validate()?;
        check_range("start x", start[0], -1e3, 1e3)?;
        check_range("start y", start[1], -1e3, 1e3)?;
        let trajectories = Method::ALL
            .iter()
            .map(|&method| Trajectory {
                method,
                position: start,
                moment1: [0.0; 2],
                moment2: [0.0; 2],
                steps: 0,
                path: vec![start],
                diverged: false,
            })
            .collect();
        Ok(Self { surface, settings, trajectories, rng: Rng::new(seed) })
    }

    /// Advances every trajectory by one optimizer step.
    pub fn step(&mut self) {
        let s = self.settings;
        for tr in &mut self.trajectories {
            if tr.diverged {
                continue;
            }
            let [x, y] = tr.position;
            let mut g = self.surface.gradient(x, y);
            if tr.method == Method::Sgd {
                // a minibatch gradient: the true one plus noise proportional to its size
                let scale = s.noise * (g[0].hypot(g[1]) + 1.0);
                g = [g[0] + scale * self.rng.normal(), g[1] + scale * self.rng.normal()];
            }
            let mut p = tr.position;
            tr.steps += 1;
            match tr.method {
                Method::Gd | Method::Sgd => cpu::sgd_update(&mut p, &g, &mut tr.moment1, s.lr, 0.0, 0.0, 0, 1.0),
                Method::Momentum => cpu::sgd_update(&mut p, &g, &mut tr.moment1, s.lr, s.momentum, 0.0, 0, 1.0),
                Method::RmsProp => cpu::rmsprop_update(&mut p, &g, &mut tr.moment2, s.lr, s.beta2, 1e-8, 1.0),
                Method::Adam => cpu::adamw_update(
                    &mut p,
                    &g,
                    &mut tr.moment1,
                    &mut tr.moment2,
                    s.lr,
                    s.beta1,
                    s.beta2,
                    1e-8,
                    0.0,
                    tr.steps,
                    0,
                    1.0,
                ),
            }
            if !p.iter().all(|v| v.is_finite() && v.abs() < 1e6) {
                tr.diverged = true;
                continue;
            }
            tr.position = p;
            tr.path.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        for surface in [Surface::Quadratic, Surface::Rosenbrock, Surface::Saddle, Surface::Himmelblau] {
            let (x, y, h) = (0.7, -0.3, 1e-6);
            let g = surface.gradient(x, y);
            let gx = (surface.value(x + h, y) - surface.value(x - h, y)) / (2.0 * h);
            let gy = (surface.value(x, y + h) - surface.value(x, y - h)) / (2.0 * h);
            assert!((g[0] - gx).abs() < 1e-5 && (g[1] - gy).abs() < 1e-5, "{surface:?}");
        }
    }

    #[test]
    fn optimizers_descend_and_divergence_is_caught() {
        let settings = PlaygroundSettings { lr: 0.02, ..Default::default() };
        let mut pg = Playground::new(Surface::Quadratic, settings, [-4.0, 1.5], 1).unwrap();
        for _ in 0..300 {
            pg.step();
        }
        for tr in &pg.trajectories {
            let f = Surface::Quadratic.value(tr.position[0], tr.position[1]);
            assert!(f < 1.0, "{:?} ended at f = {f}", tr.method);
        }
        let hot = PlaygroundSettings { lr: 5.0, ..Default::default() };
        let mut pg = Playground::new(Surface::Rosenbrock, hot, [-1.5, 2.5], 1).unwrap();
        for _ in 0..100 {
            pg.step();
        }
        assert!(pg.trajectories.iter().any(|t| t.diverged));
        assert!(Playground::new(
            Surface::Saddle,
            PlaygroundSettings { lr: f64::NAN, ..Default::default() },
            [0.0, 0.0],
            1
        )
        .is_err());
    }
}
