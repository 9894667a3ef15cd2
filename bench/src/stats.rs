//! Exact percentiles over every recorded sample (a run records at most a
//! few million, so sorting them is cheaper than getting a histogram right).

use serde::Serialize;

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: u32,
    pub p90: u32,
    pub p99: u32,
    pub max: u32,
}

impl Percentiles {
    /// `p50 _ p99 _ max _`, for a report's line.
    pub fn human(&self) -> String {
        format!("p50 {} p99 {} max {}", self.p50, self.p99, self.max)
    }
}

/// Nearest-rank percentiles; all zero when there are no samples.
pub fn percentiles(mut samples: Vec<u32>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let rank =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Percentiles {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: rank(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let p = percentiles((1..=100).rev().collect());
        assert_eq!(
            p,
            Percentiles {
                p50: 50,
                p90: 90,
                p99: 99,
                max: 100
            }
        );
        assert_eq!(percentiles(vec![7]).p50, 7);
        assert_eq!(percentiles(Vec::new()), Percentiles::default());
    }
}
