//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external
//! address) that a person reads to see how the model is doing: the verdict and why, the
//! live metrics beside the validation ones, ROC AUC over 30 days, drift per feature and
//! calibration.

use ml_data::Date;

use crate::history::{self, Point, HISTORY_DAYS};
use crate::report::Report;
use crate::svg;
use crate::verdict::Verdict;

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const STYLE: &str = "\
body{margin:0;background:#f5f6f8;color:#1d1f23;font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px 20px 40px}
header{display:flex;gap:24px;align-items:center;background:#fff;border-radius:10px;padding:20px 24px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 12px}
.model{margin:0;color:#555;word-break:break-all}
.badge{min-width:150px;text-align:center;font-size:32px;font-weight:700;letter-spacing:.06em;color:#fff;border-radius:10px;padding:18px 20px}
.ok{background:#2e7d32}.drift{background:#ef8f00}.decay{background:#c62828}
section{background:#fff;border-radius:10px;padding:18px 24px;margin-top:18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.reasons li{margin:2px 0}
.cols{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
table{border-collapse:collapse}
th,td{padding:5px 12px;border-bottom:1px solid #e6e6e6;text-align:right;font-variant-numeric:tabular-nums}
th:first-child,td:first-child{text-align:left}
th{font-weight:600;color:#444}
tr.drifted td{color:#c62828;font-weight:600}
svg{max-width:100%;height:auto;display:block}
footer{margin-top:18px;color:#666;font-size:13px}
code{font-size:12px;word-break:break-all}
";

fn fixed(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn or_dash(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| fixed(v, digits))
}

/// The page for `report`, with the earlier days of `history` (oldest first) in the chart.
pub fn render(report: &Report, date: Date, history: &[Point]) -> String {
    let verdict = report.verdict.as_str();
    let model = &report.model;
    let q = &report.quality;
    let label = history::model_label(
        &model.uri,
        model.registered_model.as_deref(),
        model.version.as_deref(),
    );
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&format!("Model monitoring {}: {verdict}", report.date))
    );

    // Header: date, model, verdict.
    page += &format!(
        "<header>\n<div class=\"badge {verdict}\">{}</div>\n<div>\n<h1>Model monitoring, {}</h1>\n\
         <p class=\"model\">{} · {} · validation ROC AUC {} · run {}{}</p>\n</div>\n</header>\n",
        escape(&verdict.to_uppercase()),
        escape(&report.date),
        escape(&label),
        escape(&model.kind),
        fixed(model.validation_roc_auc, 4),
        escape(model.run_id.as_deref().unwrap_or("unknown")),
        if label == model.uri {
            String::new()
        } else {
            format!("<br><code>{}</code>", escape(&model.uri))
        },
    );
    page += "<section class=\"reasons\">\n";
    if report.reasons.is_empty() {
        page += &format!(
            "<p>No rule fired: the live ROC AUC is within {} of the validation ROC AUC and at \
             least {}, and no feature has a PSI of {} or more.</p>\n",
            report.thresholds.auc_margin, report.thresholds.min_roc_auc, report.thresholds.psi
        );
    } else {
        let why = match report.verdict {
            Verdict::Decay => "The model's quality decayed",
            Verdict::Drift => "The features drifted",
            Verdict::Ok => "Notes",
        };
        page += &format!("<h2>{why}</h2>\n<ul>\n");
        for reason in &report.reasons {
            page += &format!("<li>{}</li>\n", escape(reason));
        }
        page += "</ul>\n";
    }
    page += "</section>\n";

    // Quality and rows.
    let row = |name: &str, live: String, validation: String| {
        format!("<tr><td>{name}</td><td>{live}</td><td>{validation}</td></tr>\n")
    };
    let rows = &report.rows;
    page += &format!(
        "<section>\n<div class=\"cols\">\n<div>\n<h2>Quality on {} labelled predictions</h2>\n\
         <table>\n<tr><th>metric</th><th>live</th><th>validation</th></tr>\n{}{}{}{}{}{}{}</table>\n</div>\n",
        ml_cli::thousands(rows.joined),
        row(
            "ROC AUC",
            fixed(q.roc_auc, 4),
            fixed(model.validation_roc_auc, 4)
        ),
        row(
            "ROC AUC difference",
            format!("{:+.4}", q.roc_auc - model.validation_roc_auc),
            format!("margin {}", report.thresholds.auc_margin)
        ),
        row("log loss", fixed(q.log_loss, 4), String::new()),
        row("accuracy (0.5 threshold)", percent(q.accuracy), String::new()),
        row(
            "predicted positive rate",
            percent(q.predicted_positive_rate),
            String::new()
        ),
        row(
            "observed positive rate",
            percent(q.observed_positive_rate),
            String::new()
        ),
        row("expected calibration error", fixed(q.ece, 4), String::new()),
    );
    page += &format!(
        "<div>\n<h2>Rows</h2>\n<table>\n<tr><th>rows</th><th>count</th></tr>\n\
         <tr><td>predictions</td><td>{}</td></tr>\n<tr><td>labels</td><td>{}</td></tr>\n\
         <tr><td>joined (keyed by {})</td><td>{}</td></tr>\n\
         <tr><td>predictions without a label yet</td><td>{}</td></tr>\n\
         <tr><td>labels without a prediction</td><td>{}</td></tr>\n</table>\n</div>\n</div>\n</section>\n",
        ml_cli::thousands(rows.predictions),
        ml_cli::thousands(rows.labels),
        escape(&report.keyed_by),
        ml_cli::thousands(rows.joined),
        ml_cli::thousands(rows.unlabeled),
        ml_cli::thousands(rows.unpredicted),
    );

    // ROC AUC over 30 days.
    let first = history::add_days(date, -HISTORY_DAYS).unwrap_or(date);
    let day_index = |d: Date| (d.days_since_epoch() - first.days_since_epoch()) as usize;
    let short = |d: Date| format!("{:02}-{:02}", d.month(), d.day());
    let mut days: Vec<svg::Day> = history
        .iter()
        .map(|p| svg::Day {
            index: day_index(p.date),
            roc_auc: p.roc_auc,
            validation_roc_auc: p.validation_roc_auc,
            title: format!(
                "{}: ROC AUC {:.4}, validation {:.4} ({}, {})",
                p.date, p.roc_auc, p.validation_roc_auc, p.model, p.verdict
            ),
        })
        .collect();
    days.push(svg::Day {
        index: day_index(date),
        roc_auc: q.roc_auc,
        validation_roc_auc: model.validation_roc_auc,
        title: format!(
            "{}: ROC AUC {:.4}, validation {:.4} ({label}, {verdict})",
            report.date, q.roc_auc, model.validation_roc_auc
        ),
    });
    let span = HISTORY_DAYS as usize + 1;
    let ticks: Vec<(usize, String)> = (0..span)
        .filter(|i| (span - 1 - i).is_multiple_of(5))
        .filter_map(|i| Some((i, short(history::add_days(first, i as i64)?))))
        .collect();
    page += &format!(
        "<section>\n<h2>ROC AUC, last 30 days</h2>\n<p>Live ROC AUC of each day's labelled \
         predictions (solid), the validation ROC AUC of the model that scored them (dashed), \
         and the floor (dotted). {} of the 30 days have a report; a missing day is a gap.</p>\n{}\n</section>\n",
        days.len(),
        svg::auc_history(&days, span, &ticks, report.thresholds.min_roc_auc)
    );

    // Drift.
    let bars: Vec<svg::Bar<'_>> = report
        .drift
        .features
        .iter()
        .map(|f| svg::Bar {
            name: &f.name,
            psi: f.psi,
            drifted: f.drifted,
        })
        .collect();
    page += &format!(
        "<section>\n<h2>Feature drift: PSI of the day's features against the training data</h2>\n\
         <p>Max PSI {}; drifted (PSI at least {}): {}.</p>\n{}\n\
         <table>\n<tr><th>feature</th><th>PSI</th><th>missing in training</th><th>missing today</th><th>drifted</th></tr>\n",
        fixed(report.drift.max_psi, 4),
        report.thresholds.psi,
        if report.drift.drifted.is_empty() {
            "none".to_string()
        } else {
            escape(&report.drift.drifted.join(", "))
        },
        svg::psi_bars(&bars, report.thresholds.psi)
    );
    for f in &report.drift.features {
        page += &format!(
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            if f.drifted { " class=\"drifted\"" } else { "" },
            escape(&f.name),
            fixed(f.psi, 4),
            percent(f.missing_share_reference),
            percent(f.missing_share_live),
            if f.drifted { "yes" } else { "no" }
        );
    }
    page += "</table>\n</section>\n";

    // Calibration.
    let points: Vec<svg::Bin> = q
        .calibration
        .iter()
        .filter_map(|b| {
            Some(svg::Bin {
                mean_predicted: b.mean_predicted?,
                observed_rate: b.observed_rate?,
                count: b.count,
            })
        })
        .collect();
    page += &format!(
        "<section>\n<h2>Calibration</h2>\n<div class=\"cols\">\n{}\n<table>\n\
         <tr><th>probability</th><th>rows</th><th>mean predicted</th><th>observed rate</th></tr>\n",
        svg::reliability(&points)
    );
    for b in &q.calibration {
        page += &format!(
            "<tr><td>{:.1} to {:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            b.lower,
            b.upper,
            ml_cli::thousands(b.count),
            or_dash(b.mean_predicted, 3),
            or_dash(b.observed_rate, 3)
        );
    }
    page += &format!(
        "</table>\n</div>\n<p>Expected calibration error {}.</p>\n</section>\n",
        fixed(q.ece, 4)
    );

    // Footer: what the report was computed from.
    let inputs = &report.inputs;
    page += &format!(
        "<footer>\n<p>Thresholds: PSI {}, ROC AUC margin {}, floor {}, at least {} labelled rows.</p>\n\
         <p>predictions.csv <code>{}</code><br>target.csv <code>{}</code><br>data.csv <code>{}</code></p>\n\
         </footer>\n</main>\n</body>\n</html>\n",
        report.thresholds.psi,
        report.thresholds.auc_margin,
        report.thresholds.min_roc_auc,
        report.thresholds.min_labeled_rows,
        escape(&inputs.predictions_sha256),
        escape(&inputs.labels_sha256),
        escape(&inputs.data_sha256),
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("age"), "age");
    }
}
