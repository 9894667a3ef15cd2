//! `switchboard-bench`: a load generator for any server speaking
//! PROTOCOL.md (Switchboard or the native baseline). Every figure comes
//! with the wall time and the generator's own CPU time, so a saturated
//! generator shows next to the number it limited.

pub mod churn;
pub mod client;
pub mod idle;
pub mod plot;
pub mod relay;
pub mod stampede;
pub mod stats;
pub mod sys;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One result: a JSON object for scripts and a line for people.
pub struct Report {
    pub json: Value,
    pub human: String,
}

/// Wall and CPU clocks read at the start of a measured window.
pub struct Meter {
    wall: Instant,
    own_cpu: Duration,
    /// The servers' pids and their CPU time at the start.
    servers: Vec<(u32, Duration)>,
}

/// What a window cost: wall time, generator CPU, server CPU (with `--pid`;
/// summed over every server with several).
pub struct Measured {
    pub wall: Duration,
    pub own_cpu: Duration,
    pub server_cpu: Option<Duration>,
}

impl Meter {
    pub fn start(server_pids: &[u32]) -> anyhow::Result<Self> {
        let servers = server_pids
            .iter()
            .map(|&pid| Ok((pid, sys::process_cpu(pid)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Meter {
            wall: Instant::now(),
            own_cpu: sys::own_cpu(),
            servers,
        })
    }

    pub fn read(&self) -> anyhow::Result<Measured> {
        let mut server_cpu = None;
        for (pid, before) in &self.servers {
            let used = sys::process_cpu(*pid)?.saturating_sub(*before);
            server_cpu = Some(server_cpu.unwrap_or_default() + used);
        }
        Ok(Measured {
            wall: self.wall.elapsed(),
            own_cpu: sys::own_cpu().saturating_sub(self.own_cpu),
            server_cpu,
        })
    }
}

impl Measured {
    /// Adds the clocks to `json`, and the server's CPU per unit of work.
    pub fn add_to(&self, json: &mut Value, units: u64) {
        json["wall_s"] = json!(round3(self.wall.as_secs_f64()));
        json["gen_cpu_s"] = json!(round3(self.own_cpu.as_secs_f64()));
        json["gen_cpu_cores"] = json!(round3(self.own_cores()));
        json["gen_cpu_us_per_unit"] = json!(round3(per_unit_us(self.own_cpu, units)));
        if let Some(cpu) = self.server_cpu {
            json["server_cpu_s"] = json!(round3(cpu.as_secs_f64()));
            json["server_cpu_cores"] = json!(round3(cores(cpu, self.wall)));
            json["server_cpu_us_per_unit"] = json!(round3(per_unit_us(cpu, units)));
        }
    }

    pub fn human(&self, unit: &str, units: u64) -> String {
        let mut line = format!(
            "wall {:.2} s, generator CPU {:.2} s ({:.2} cores)",
            self.wall.as_secs_f64(),
            self.own_cpu.as_secs_f64(),
            self.own_cores()
        );
        if let Some(cpu) = self.server_cpu {
            line += &format!(
                ", server CPU {:.2} s ({:.2} us/{unit})",
                cpu.as_secs_f64(),
                per_unit_us(cpu, units)
            );
        }
        line
    }

    fn own_cores(&self) -> f64 {
        cores(self.own_cpu, self.wall)
    }
}

/// CPU time as a number of cores kept busy over `wall`.
fn cores(cpu: Duration, wall: Duration) -> f64 {
    cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
}

fn per_unit_us(cpu: Duration, units: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / units.max(1) as f64
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
