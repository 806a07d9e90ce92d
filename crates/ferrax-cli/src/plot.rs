//! The picture of a fit (`ferrax fit --plot fit.png|fit.svg`), drawn with `plotters`.
//!
//! Two panels sharing the horizontal axis: above, the data as points and the fitted model
//! as a curve; below, the residuals (observed − fitted) around a zero line, so a pattern
//! the model misses shows at a glance. With one predictor column the horizontal axis is
//! that column and the curve is the model on 400 points across its range (not only at the
//! data); with several, the panels show observed against fitted (points near the diagonal
//! are well fitted) and the residuals against the row. Text is set in DejaVu Sans, carried
//! in the binary (the `dejavu` crate), so PNGs need no fonts on the machine.

use std::path::Path;
use std::sync::Once;

use ferrax_solvers::{ModelFit, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// The formats `--plot` writes, by extension.
pub fn check_format(dest: &str) -> Result<(), String> {
    match extension(Path::new(dest)).as_deref() {
        Some("png" | "svg") => Ok(()),
        _ => Err(format!(
            "{dest}: --plot writes .png or .svg files (the extension picks the format)"
        )),
    }
}

fn extension(p: &Path) -> Option<String> {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn register_fonts() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // the font is valid by construction (shipped with the crate); were it not, text
        // would be missing from PNGs, and SVGs leave fonts to the viewer anyway
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// The range of `v` with a margin, never empty.
fn range(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * lo.abs().max(1.0)
    };
    (lo - pad, hi + pad)
}

/// The corner of the data panel with the fewest points, where the legend hides least.
fn emptiest_corner(
    points: &[(f64, f64)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let count = |left: bool, top: bool| {
        points
            .iter()
            .filter(|(x, y)| {
                let fx = (x - x0) / (x1 - x0);
                let fy = (y - y0) / (y1 - y0);
                (if left { fx < 0.35 } else { fx > 0.65 })
                    && (if top { fy > 0.7 } else { fy < 0.3 })
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperLeft, count(true, true)),
        (SeriesLabelPosition::UpperRight, count(false, true)),
        (SeriesLabelPosition::LowerRight, count(false, false)),
        (SeriesLabelPosition::LowerLeft, count(true, false)),
    ]
    .into_iter()
    .min_by_key(|c| c.1)
    .map_or(SeriesLabelPosition::UpperLeft, |c| c.0)
}

/// What the panels draw: points, a curve, residuals, against which horizontal values.
struct Panels {
    x_label: String,
    y_label: String,
    points: Vec<(f64, f64)>,
    curve: Vec<(f64, f64)>,
    residuals: Vec<(f64, f64)>,
    residual_x_label: String,
}

/// Refuses values a chart cannot lay out: a range whose width overflows would have
/// `plotters` place ticks without end.
fn check_ranges(p: &Panels) -> Result<(), String> {
    let all = p
        .points
        .iter()
        .chain(&p.curve)
        .chain(&p.residuals)
        .flat_map(|&(x, y)| [x, y]);
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if (hi - lo).is_finite() && hi - lo < 1e300 {
        Ok(())
    } else {
        Err("cannot plot values spanning more than 1e300".into())
    }
}

fn panels(fit: &ModelFit, table: &Table) -> Result<Panels, String> {
    let y = &table.columns[fit.model.response()];
    let y_name = table.names[fit.model.response()].clone();
    let m = table.rows();
    if let [c] = fit.model.predictors() {
        let x = &table.columns[*c];
        let (lo, hi) = x
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        const N: usize = 400;
        let grid: Vec<f64> = (0..N)
            .map(|i| lo + (hi - lo) * i as f64 / (N - 1) as f64)
            .collect();
        let columns: Vec<Vec<f64>> = (0..table.names.len())
            .map(|k| if k == *c { grid.clone() } else { vec![0.0; N] })
            .collect();
        let curve_y = fit.predict(&columns, N).map_err(|e| e.to_string())?;
        Ok(Panels {
            x_label: table.names[*c].clone(),
            y_label: y_name,
            points: x.iter().copied().zip(y.iter().copied()).collect(),
            curve: grid
                .into_iter()
                .zip(curve_y)
                .filter(|p| p.1.is_finite())
                .collect(),
            residuals: x
                .iter()
                .copied()
                .zip(fit.residuals.iter().copied())
                .collect(),
            residual_x_label: table.names[*c].clone(),
        })
    } else {
        let (lo, hi) = range(y.iter().copied().chain(fit.fitted.iter().copied()));
        Ok(Panels {
            x_label: format!("fitted {y_name}"),
            y_label: format!("observed {y_name}"),
            points: fit.fitted.iter().copied().zip(y.iter().copied()).collect(),
            curve: vec![(lo, lo), (hi, hi)],
            residuals: (0..m).map(|i| ((i + 1) as f64, fit.residuals[i])).collect(),
            residual_x_label: "row".into(),
        })
    }
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    p: &Panels,
    title: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (top, bottom) = root.split_vertically((68).percent());
    let xs = p
        .points
        .iter()
        .map(|q| q.0)
        .chain(p.curve.iter().map(|q| q.0));
    let (x0, x1) = range(xs);
    let (y0, y1) = range(
        p.points
            .iter()
            .map(|q| q.1)
            .chain(p.curve.iter().map(|q| q.1)),
    );
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(214, 39, 40);
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(
            p.points
                .iter()
                .map(|&q| Circle::new(q, 3, blue.mix(0.75).filled())),
        )
        .map_err(e)?
        .label("data")
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, blue.filled()));
    chart
        .draw_series(LineSeries::new(
            p.curve.iter().copied(),
            orange.stroke_width(2),
        ))
        .map_err(e)?
        .label("fitted model")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .position(emptiest_corner(&p.points, (x0, x1), (y0, y1)))
        .draw()
        .map_err(e)?;

    let (r0, r1) = range(p.residuals.iter().map(|q| q.0));
    let big = p.residuals.iter().fold(0.0f64, |a, q| a.max(q.1.abs()));
    let big = if big > 0.0 { 1.1 * big } else { 1.0 };
    let mut res = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(r0..r1, -big..big)
        .map_err(e)?;
    let tick = |v: &f64| {
        // a tick at zero prints `0`, not `-0.0` from the symmetric range's rounding
        let v = if v.abs() < 1e-9 * big { 0.0 } else { *v };
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    };
    res.configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .y_label_formatter(&tick)
        .x_desc(p.residual_x_label.as_str())
        .y_desc("residual")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    res.draw_series(LineSeries::new([(r0, 0.0), (r1, 0.0)], BLACK.mix(0.5)))
        .map_err(e)?;
    res.draw_series(
        p.residuals
            .iter()
            .map(|&(x, r)| PathElement::new(vec![(x, 0.0), (x, r)], blue.mix(0.35))),
    )
    .map_err(e)?;
    res.draw_series(
        p.residuals
            .iter()
            .map(|&q| Circle::new(q, 3, blue.mix(0.75).filled())),
    )
    .map_err(e)?;
    root.present().map_err(e)
}

/// Draws the fit into `path` (PNG or SVG by its extension), titled with the model.
pub fn draw(fit: &ModelFit, table: &Table, model: &str, path: &Path) -> Result<(), String> {
    register_fonts();
    let p = panels(fit, table)?;
    check_ranges(&p)?;
    let title: String = model.split_whitespace().collect::<Vec<_>>().join(" ");
    let title = if title.chars().count() > 90 {
        title.chars().take(87).collect::<String>() + "..."
    } else {
        title
    };
    let size = (960, 720);
    match extension(path).as_deref() {
        Some("svg") => draw_on(SVGBackend::new(path, size).into_drawing_area(), &p, &title),
        _ => draw_on(
            BitMapBackend::new(path, size).into_drawing_area(),
            &p,
            &title,
        ),
    }
}
