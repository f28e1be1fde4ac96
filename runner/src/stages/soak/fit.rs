//! Least-squares line through the samples: the growth rate is its slope.

/// `value ≈ intercept + slope × seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Units per second.
    pub slope: f64,
    pub intercept: f64,
}

impl Line {
    pub fn per_hour(&self) -> f64 {
        self.slope * 3600.0
    }

    pub fn at(&self, seconds: f64) -> f64 {
        self.intercept + self.slope * seconds
    }
}

/// Fits `(seconds, value)` points; `None` with fewer than two distinct times.
pub fn fit(points: &[(f64, f64)]) -> Option<Line> {
    if points.len() < 2 {
        return None;
    }
    #[allow(clippy::cast_precision_loss, reason = "sample counts are small")]
    let n = points.len() as f64;
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    let sxy: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let slope = sxy / sxx;
    Some(Line {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_rate_through_noise() {
        // 4 units a second, with a repeating wobble of ±1.
        let points: Vec<(f64, f64)> = (0..100u32)
            .map(|i| {
                let t = f64::from(i) * 0.1;
                (t, 10.0 + 4.0 * t + [1.0, -1.0, 0.5, -0.5][i as usize % 4])
            })
            .collect();
        let line = fit(&points).unwrap();
        assert!((line.slope - 4.0).abs() < 0.05, "{line:?}");
        assert!((line.per_hour() - 14_400.0).abs() < 180.0);
        assert!((line.at(0.0) - 10.0).abs() < 0.5);
    }

    #[test]
    fn flat_and_degenerate_inputs() {
        let flat: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 7.0)).collect();
        assert!(fit(&flat).unwrap().slope.abs() < f64::EPSILON);
        assert_eq!(fit(&[(1.0, 2.0)]), None);
        assert_eq!(fit(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }
}
