//! The verdict on each benchmark against its baseline, and the Performance table's rows.
//! Wall time: a regression is slower than the threshold AND outside the noise band (the
//! whole confidence interval of the change lies above +noise). Instruction counts are exact,
//! so the threshold alone decides.

use super::criterion::{Estimate, Measured};
use super::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Regressed,
    Improved,
    Unchanged,
    /// No baseline value yet: this run's becomes it.
    New,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "faster",
            Verdict::Unchanged => "no significant change",
            Verdict::New => "new: baseline recorded",
        }
    }
}

/// One benchmark against its baseline, with preformatted values for the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub baseline: Option<String>,
    pub current: String,
    /// Fraction: 0.1 is 10 % slower (more time or more instructions).
    pub change: Option<f64>,
    pub confidence: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn cells(&self) -> Vec<String> {
        vec![
            format!("`{}`", self.id),
            self.baseline.clone().unwrap_or_else(|| "—".to_owned()),
            self.current.clone(),
            self.change.map_or_else(|| "—".to_owned(), percent),
            self.confidence.clone(),
            self.verdict.as_str().to_owned(),
        ]
    }
}

pub const COLUMNS: [&str; 6] = [
    "Benchmark",
    "Baseline",
    "Current",
    "Change",
    "Confidence",
    "Verdict",
];

/// A benchmark timed by criterion, judged on the change criterion computed against the
/// restored baseline.
pub fn wall_row(measured: &Measured, settings: &Settings) -> Row {
    let current = time(measured.current.point_estimate);
    let (Some(baseline), Some(change)) = (measured.baseline, measured.change) else {
        return Row {
            id: measured.id.clone(),
            baseline: None,
            current,
            change: None,
            confidence: interval_of(&measured.current, time),
            verdict: Verdict::New,
        };
    };
    let bounds = change.confidence_interval;
    let verdict = if change.point_estimate > settings.threshold
        && bounds.lower_bound > settings.noise
    {
        Verdict::Regressed
    } else if change.point_estimate < -settings.threshold && bounds.upper_bound < -settings.noise {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    Row {
        id: measured.id.clone(),
        baseline: Some(time(baseline.point_estimate)),
        current,
        change: Some(change.point_estimate),
        confidence: interval_of(&change, percent),
        verdict,
    }
}

/// A benchmark counted under callgrind: the same code gives the same count, so there is no
/// interval; the threshold alone decides.
pub fn instructions_row(id: &str, baseline: Option<u64>, current: u64, settings: &Settings) -> Row {
    let Some(baseline) = baseline else {
        return Row {
            id: id.to_owned(),
            baseline: None,
            current: count(current),
            change: None,
            confidence: "exact (instruction count)".to_owned(),
            verdict: Verdict::New,
        };
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "a ratio of counts, shown to 0.01 %"
    )]
    let change = current as f64 / baseline.max(1) as f64 - 1.0;
    let verdict = if change > settings.threshold {
        Verdict::Regressed
    } else if change < -settings.threshold {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    Row {
        id: id.to_owned(),
        baseline: Some(count(baseline)),
        current: count(current),
        change: Some(change),
        confidence: "exact (instruction count)".to_owned(),
        verdict,
    }
}

fn interval_of(estimate: &Estimate, format: fn(f64) -> String) -> String {
    let bounds = estimate.confidence_interval;
    format!(
        "{:.0} % CI [{}, {}]",
        bounds.confidence_level * 100.0,
        format(bounds.lower_bound),
        format(bounds.upper_bound)
    )
}

/// `+12.34 %` from a fraction.
pub fn percent(fraction: f64) -> String {
    format!("{:+.2} %", fraction * 100.0)
}

/// A time in nanoseconds with the unit people read best.
pub fn time(nanos: f64) -> String {
    let (value, unit) = if nanos >= 1e9 {
        (nanos / 1e9, "s")
    } else if nanos >= 1e6 {
        (nanos / 1e6, "ms")
    } else if nanos >= 1e3 {
        (nanos / 1e3, "µs")
    } else {
        (nanos, "ns")
    };
    format!("{value:.3} {unit}")
}

/// `1,234,567 Ir`.
pub fn count(instructions: u64) -> String {
    let digits = instructions.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{grouped} Ir")
}

#[cfg(test)]
mod tests {
    use super::super::criterion::Interval;
    use super::super::settings::Metric;
    use super::*;

    fn settings(threshold: f64) -> Settings {
        Settings {
            metric: Metric::Wall,
            baseline: "main".into(),
            baseline_dir: "/w/.runner/bench/main".into(),
            baseline_display: ".runner/bench/main".into(),
            threshold,
            noise: 0.01,
            update_baseline: false,
            flamegraph: None,
            profile_time: std::time::Duration::from_secs(1),
            target_dir: "/t".into(),
            criterion_home: "/o/criterion".into(),
            callgrind_dir: "/o/callgrind".into(),
        }
    }

    fn estimate(point: f64, lower: f64, upper: f64) -> Estimate {
        Estimate {
            point_estimate: point,
            confidence_interval: Interval {
                confidence_level: 0.95,
                lower_bound: lower,
                upper_bound: upper,
            },
        }
    }

    fn measured(change: Option<Estimate>) -> Measured {
        Measured {
            id: "g/f".into(),
            directory: "g/f".into(),
            current: estimate(2000.0, 1900.0, 2100.0),
            baseline: change.map(|_| estimate(1000.0, 990.0, 1010.0)),
            change,
        }
    }

    #[test]
    fn wall_time_regresses_only_beyond_the_threshold_and_the_noise() {
        let s = settings(0.10);
        let slower = wall_row(&measured(Some(estimate(1.0, 0.8, 1.2))), &s);
        assert_eq!(slower.verdict, Verdict::Regressed);
        assert_eq!(
            slower.cells(),
            [
                "`g/f`",
                "1.000 µs",
                "2.000 µs",
                "+100.00 %",
                "95 % CI [+80.00 %, +120.00 %]",
                "REGRESSED"
            ]
        );
        // 15 % slower on average, but the interval reaches below the noise band.
        let noisy = wall_row(&measured(Some(estimate(0.15, -0.02, 0.30))), &s);
        assert_eq!(noisy.verdict, Verdict::Unchanged);
        let within = wall_row(&measured(Some(estimate(0.05, 0.03, 0.07))), &s);
        assert_eq!(within.verdict, Verdict::Unchanged);
        let faster = wall_row(&measured(Some(estimate(-0.5, -0.6, -0.4))), &s);
        assert_eq!(faster.verdict, Verdict::Improved);
        assert_eq!(wall_row(&measured(None), &s).verdict, Verdict::New);
    }

    #[test]
    fn instruction_counts_regress_past_the_threshold_alone() {
        let s = settings(0.02);
        let same = instructions_row("g/f", Some(25_000), 25_000, &s);
        assert_eq!(same.verdict, Verdict::Unchanged);
        assert_eq!(same.cells()[3], "+0.00 %");
        assert_eq!(
            instructions_row("g/f", Some(25_000), 25_600, &s).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            instructions_row("g/f", Some(25_000), 25_400, &s).verdict,
            Verdict::Unchanged
        );
        let new = instructions_row("g/f", None, 1_234_567, &s);
        assert_eq!(new.verdict, Verdict::New);
        assert_eq!(new.current, "1,234,567 Ir");
    }

    #[test]
    fn units_for_people() {
        assert_eq!(time(812.0), "812.000 ns");
        assert_eq!(time(3_712.6), "3.713 µs");
        assert_eq!(time(2.5e9), "2.500 s");
        assert_eq!(count(999), "999 Ir");
        assert_eq!(count(1_000), "1,000 Ir");
    }
}
