//! The report's three charts as inline SVG: PSI per feature, ROC AUC over 30 days, and the
//! calibration (reliability) diagram. Plain strings, no library; every text is escaped.

use crate::html::escape;

/// Width of the wide charts, in CSS pixels (the page is 1200 px at most).
const WIDE: f64 = 1160.0;
pub const DRIFTED: &str = "#c62828";
const BAR: &str = "#4a78a8";
const LIVE: &str = "#1f5fa8";
const VALIDATION: &str = "#6d6d6d";
const FLOOR: &str = "#c62828";
const GRID: &str = "#e3e3e3";

/// A coordinate, to a tenth of a pixel.
fn c(v: f64) -> String {
    format!("{v:.1}")
}

fn open(width: f64, height: f64, label: &str) -> String {
    format!(
        "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\" \
         font-family=\"system-ui, sans-serif\" font-size=\"12\">",
        c(width),
        c(height),
        c(width),
        c(height),
        escape(label)
    )
}

fn text(x: f64, y: f64, anchor: &str, extra: &str, content: &str) -> String {
    format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\"{extra}>{}</text>",
        c(x),
        c(y),
        escape(content)
    )
}

fn line(x1: f64, y1: f64, x2: f64, y2: f64, style: &str) -> String {
    format!(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {style}/>",
        c(x1),
        c(y1),
        c(x2),
        c(y2)
    )
}

fn polyline(points: &[(f64, f64)], style: &str) -> String {
    let coords: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{},{}", c(x), c(y)))
        .collect();
    format!(
        "<polyline points=\"{}\" fill=\"none\" {style}/>",
        coords.join(" ")
    )
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `rough` (a tick
/// step a reader can add up).
fn nice_step(rough: f64) -> f64 {
    if !(rough > 0.0 && rough.is_finite()) {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= rough)
        .unwrap_or(10.0 * power)
}

/// `v` without the noise of `step * i` (0.30000000000000004 as 0.3).
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// One bar of [`psi_bars`].
pub struct Bar<'a> {
    pub name: &'a str,
    pub psi: f64,
    pub drifted: bool,
}

/// Horizontal bars of PSI per feature, the threshold as a dashed vertical line, drifted
/// features in red.
pub fn psi_bars(bars: &[Bar<'_>], threshold: f64) -> String {
    let (left, right, top, row) = (110.0, 70.0, 28.0, 24.0);
    let height = top + row * bars.len() as f64 + 34.0;
    let plot = WIDE - left - right;
    let largest = bars.iter().map(|b| b.psi).fold(threshold, f64::max) * 1.1;
    let step = nice_step(largest / 4.0);
    let max = (largest / step).ceil() * step;
    let x = |v: f64| left + plot * (v / max).clamp(0.0, 1.0);
    let mut out = open(WIDE, height, "PSI per feature");
    let bottom = top + row * bars.len() as f64;
    for i in 0..=((max / step).round() as usize) {
        let v = step * i as f64;
        out += &line(x(v), top, x(v), bottom, &format!("stroke=\"{GRID}\""));
        out += &text(x(v), bottom + 16.0, "middle", "", &format!("{}", round(v)));
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let colour = if b.drifted { DRIFTED } else { BAR };
        out += &text(left - 8.0, y + row * 0.65, "end", "", b.name);
        out += &format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"><title>{}</title></rect>",
            c(left),
            c(y + 4.0),
            c((x(b.psi) - left).max(1.0)),
            c(row - 8.0),
            escape(&format!("{}: PSI {:.4}", b.name, b.psi))
        );
        out += &text(
            x(b.psi) + 6.0,
            y + row * 0.65,
            "start",
            "",
            &format!("{:.3}", b.psi),
        );
    }
    out += &line(
        x(threshold),
        top - 8.0,
        x(threshold),
        bottom,
        &format!("stroke=\"{DRIFTED}\" stroke-width=\"2\" stroke-dasharray=\"6 4\""),
    );
    out += &text(
        x(threshold),
        top - 12.0,
        "middle",
        &format!(" fill=\"{DRIFTED}\""),
        &format!("threshold {threshold}"),
    );
    out += &text(left + plot / 2.0, height - 2.0, "middle", "", "PSI");
    out + "</svg>"
}

/// One day of [`auc_history`]: its position (0 = the first of the 30 days) and values.
pub struct Day {
    pub index: usize,
    pub roc_auc: f64,
    pub validation_roc_auc: f64,
    /// Shown on hover.
    pub title: String,
}

/// ROC AUC over `days` days: live as a solid line with points, the validation ROC AUC of each
/// day's model dashed, the floor dotted; a day without a report is a gap in both lines.
/// `ticks` are `(index, label)` pairs for the x axis.
pub fn auc_history(points: &[Day], days: usize, ticks: &[(usize, String)], floor: f64) -> String {
    let (left, right, top, bottom) = (50.0, 120.0, 30.0, 40.0);
    let height = 320.0;
    let (plot_w, plot_h) = (WIDE - left - right, height - top - bottom);
    let lowest = points
        .iter()
        .flat_map(|p| [p.roc_auc, p.validation_roc_auc])
        .fold(floor, f64::min);
    // Grid lines every 0.05, or every 0.1 over a range wider than 0.5.
    let per_unit = if lowest - 0.05 < 0.5 { 10.0 } else { 20.0 };
    let lo = ((lowest - 0.05) * per_unit)
        .floor()
        .clamp(0.0, per_unit - 2.0)
        / per_unit;
    let hi = 1.0;
    let x = |i: usize| left + plot_w * i as f64 / (days.max(2) - 1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0));
    let mut out = open(WIDE, height, "ROC AUC over the last 30 days");
    let steps = ((hi - lo) * per_unit).round() as usize;
    for s in 0..=steps {
        let v = lo + s as f64 / per_unit;
        out += &line(
            left,
            y(v),
            left + plot_w,
            y(v),
            &format!("stroke=\"{GRID}\""),
        );
        out += &text(left - 6.0, y(v) + 4.0, "end", "", &format!("{v:.2}"));
    }
    for (i, label) in ticks {
        out += &line(
            x(*i),
            top + plot_h,
            x(*i),
            top + plot_h + 5.0,
            "stroke=\"#999\"",
        );
        out += &text(x(*i), top + plot_h + 18.0, "middle", "", label);
    }
    out += &line(
        left,
        y(floor),
        left + plot_w,
        y(floor),
        &format!("stroke=\"{FLOOR}\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\""),
    );
    out += &text(
        left + plot_w + 6.0,
        y(floor) + 4.0,
        "start",
        &format!(" fill=\"{FLOOR}\""),
        &format!("floor {floor}"),
    );
    // Runs of consecutive days, so that a missing day breaks the lines.
    let mut runs: Vec<Vec<&Day>> = Vec::new();
    for p in points {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|q| q.index + 1 == p.index) => run.push(p),
            _ => runs.push(vec![p]),
        }
    }
    for run in &runs {
        let val: Vec<(f64, f64)> = run
            .iter()
            .map(|p| (x(p.index), y(p.validation_roc_auc)))
            .collect();
        let live: Vec<(f64, f64)> = run.iter().map(|p| (x(p.index), y(p.roc_auc))).collect();
        out += &polyline(
            &val,
            &format!("stroke=\"{VALIDATION}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\""),
        );
        out += &polyline(&live, &format!("stroke=\"{LIVE}\" stroke-width=\"2.5\""));
    }
    for p in points {
        out += &format!(
            "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"#fff\" stroke=\"{VALIDATION}\"/>",
            c(x(p.index)),
            c(y(p.validation_roc_auc))
        );
        out += &format!(
            "<circle cx=\"{}\" cy=\"{}\" r=\"4.5\" fill=\"{LIVE}\"><title>{}</title></circle>",
            c(x(p.index)),
            c(y(p.roc_auc)),
            escape(&p.title)
        );
    }
    // Legend, top right.
    let lx = left + plot_w + 6.0;
    out += &line(
        lx,
        top + 6.0,
        lx + 24.0,
        top + 6.0,
        &format!("stroke=\"{LIVE}\" stroke-width=\"2.5\""),
    );
    out += &text(lx + 30.0, top + 10.0, "start", "", "live");
    out += &line(
        lx,
        top + 26.0,
        lx + 24.0,
        top + 26.0,
        &format!("stroke=\"{VALIDATION}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\""),
    );
    out += &text(lx + 30.0, top + 30.0, "start", "", "validation");
    out + "</svg>"
}

/// One non-empty calibration bin of [`reliability`].
pub struct Bin {
    pub mean_predicted: f64,
    pub observed_rate: f64,
    pub count: usize,
}

/// The reliability diagram: observed rate against mean predicted probability per bin, dot
/// area by row count, the diagonal of perfect calibration dashed.
pub fn reliability(bins: &[Bin]) -> String {
    let (size, margin) = (380.0, 44.0);
    let plot = size - 2.0 * margin;
    let x = |v: f64| margin + plot * v.clamp(0.0, 1.0);
    let y = |v: f64| size - margin - plot * v.clamp(0.0, 1.0);
    let mut out = open(
        size,
        size,
        "Calibration: observed rate against mean predicted probability",
    );
    for i in 0..=4 {
        let v = f64::from(i) / 4.0;
        out += &line(x(v), y(0.0), x(v), y(1.0), &format!("stroke=\"{GRID}\""));
        out += &line(x(0.0), y(v), x(1.0), y(v), &format!("stroke=\"{GRID}\""));
        out += &text(x(v), y(0.0) + 16.0, "middle", "", &format!("{v:.2}"));
        out += &text(x(0.0) - 6.0, y(v) + 4.0, "end", "", &format!("{v:.2}"));
    }
    out += &line(
        x(0.0),
        y(0.0),
        x(1.0),
        y(1.0),
        &format!("stroke=\"{VALIDATION}\" stroke-dasharray=\"6 4\""),
    );
    let points: Vec<(f64, f64)> = bins
        .iter()
        .map(|b| (x(b.mean_predicted), y(b.observed_rate)))
        .collect();
    out += &polyline(&points, &format!("stroke=\"{LIVE}\" stroke-width=\"1.5\""));
    let most = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    for (b, &(px, py)) in bins.iter().zip(&points) {
        out += &format!(
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{LIVE}\" fill-opacity=\"0.75\"><title>{}</title></circle>",
            c(px),
            c(py),
            c(3.0 + 8.0 * (b.count as f64 / most).sqrt()),
            escape(&format!(
                "{} rows: mean predicted {:.3}, observed {:.3}",
                b.count, b.mean_predicted, b.observed_rate
            ))
        );
    }
    out += &text(
        size / 2.0,
        size - 8.0,
        "middle",
        "",
        "mean predicted probability",
    );
    out += &format!(
        "<text x=\"12\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">observed rate</text>",
        c(size / 2.0),
        c(size / 2.0)
    );
    out + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_closed_svg_with_escaped_text() {
        let bars = [
            Bar {
                name: "a<b",
                psi: 0.5,
                drifted: true,
            },
            Bar {
                name: "age",
                psi: 0.01,
                drifted: false,
            },
        ];
        let svg = psi_bars(&bars, 0.2);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
        assert!(svg.matches(DRIFTED).count() >= 2);
        let days = [
            Day {
                index: 0,
                roc_auc: 0.8,
                validation_roc_auc: 0.85,
                title: "x".into(),
            },
            Day {
                index: 2,
                roc_auc: 0.7,
                validation_roc_auc: 0.85,
                title: "y".into(),
            },
        ];
        let svg = auc_history(&days, 30, &[(0, "01-01".into())], 0.75);
        // The gap on day 1: two runs of one day, so two polylines per series.
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.ends_with("</svg>"));
        let svg = reliability(&[Bin {
            mean_predicted: 0.2,
            observed_rate: 0.3,
            count: 5,
        }]);
        assert!(svg.contains("5 rows: mean predicted 0.200, observed 0.300"));
    }

    #[test]
    fn tick_steps_are_round_numbers() {
        assert_eq!(nice_step(0.47), 0.5);
        assert_eq!(nice_step(0.05), 0.05);
        assert_eq!(nice_step(0.051), 0.1);
        assert_eq!(nice_step(0.22), 0.25);
        assert_eq!(nice_step(3.1), 5.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
