//! The console's plotters charts, drawn into SVG strings on the server (the browser only inserts
//! them): the overview's requests per minute and tokens by feature, plus the frame every chart
//! shares ([`svg`], [`frame`], [`empty_note`]: white background, grid, axes, labels in one
//! style), which the SOC charts (`crate::soc::chart`) use too.
//!
//! Minutes without requests are drawn as zeros; the x axis is labelled in UTC wall-clock time at
//! round steps (3 min, 10 min or 3 h, by range length), the y axis in requests per minute.

use plotters::coord::Shift;
use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use gateway::audit::MinuteCount;

/// Rendered size in SVG user units; the page scales it to its container (the SVG has a viewBox).
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 340;

pub(crate) const REQUESTS: RGBColor = RGBColor(79, 70, 229);
pub(crate) const INTERVENTIONS: RGBColor = RGBColor(217, 119, 6);
/// Output tokens, next to [`REQUESTS`]' indigo for input tokens.
const OUTPUT_TOKENS: RGBColor = RGBColor(5, 150, 105);
const GRID: RGBColor = RGBColor(229, 231, 235);
const AXIS: RGBColor = RGBColor(156, 163, 175);
const LABEL: RGBColor = RGBColor(75, 85, 99);
pub(crate) const FONT: &str = "sans-serif";

/// Subdivisions of a minute on the x axis (and of a row in the bar chart).
const SUB: i64 = 20;
/// Ranges up to this many minutes are drawn as one bar per minute; longer ones as an area.
const MAX_BAR_MINUTES: i64 = 60;

/// The drawing area of one chart.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draw a `width` × `height` chart with `draw` on a white background and return the SVG.
pub(crate) fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// A chart drawn on an [`Area`], with its x and y coordinates.
pub(crate) type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// How a chart's axes are labelled.
pub(crate) struct Axes<'f, X, Y> {
    pub x_desc: Option<&'f str>,
    pub y_desc: Option<&'f str>,
    pub y_labels: usize,
    pub x_label: &'f dyn Fn(&X) -> String,
    pub y_label: &'f dyn Fn(&Y) -> String,
    /// Space for the x labels (and description) below the plot.
    pub x_area: u32,
    /// Space for the y labels (and description) left of the plot.
    pub y_area: u32,
    /// Horizontal grid lines (value axis y); `false` draws vertical ones (value axis x).
    pub grid_y: bool,
}

/// The cartesian frame every console chart uses: margins, light grid along the value axis, grey
/// axes, labels in one font and colour.
pub(crate) fn frame<'a, 'b, X, Y>(
    root: &'a Area<'b>,
    x: X,
    y: Y,
    axes: &Axes<
        '_,
        <X::CoordDescType as Ranged>::ValueType,
        <Y::CoordDescType as Ranged>::ValueType,
    >,
) -> Result<Chart<'a, 'b, X::CoordDescType, Y::CoordDescType>, String>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
    X::CoordDescType: ValueFormatter<<X::CoordDescType as Ranged>::ValueType>,
    Y::CoordDescType: ValueFormatter<<Y::CoordDescType as Ranged>::ValueType>,
{
    let mut chart = ChartBuilder::on(root)
        .margin_top(16)
        .margin_right(24)
        .margin_left(8)
        .margin_bottom(8)
        .x_label_area_size(axes.x_area)
        .y_label_area_size(axes.y_area)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    let label_style = (FONT, 13).into_font().color(&LABEL);
    {
        let mut mesh = chart.configure_mesh();
        if axes.grid_y {
            mesh.disable_x_mesh();
        } else {
            mesh.disable_y_mesh();
        }
        mesh.bold_line_style(GRID.stroke_width(1))
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS.stroke_width(1))
            .y_labels(axes.y_labels)
            .x_label_formatter(axes.x_label)
            .y_label_formatter(axes.y_label)
            .x_label_style(label_style.clone())
            .y_label_style(label_style.clone())
            .axis_desc_style(label_style);
        if let Some(d) = axes.x_desc {
            mesh.x_desc(d);
        }
        if let Some(d) = axes.y_desc {
            mesh.y_desc(d);
        }
        mesh.draw().map_err(|e| e.to_string())?;
    }
    Ok(chart)
}

/// A grey note in the middle of the plot (an empty chart says why it is empty).
pub(crate) fn empty_note(root: &Area<'_>, text: &str) -> Result<(), String> {
    let (w, h) = root.dim_in_pixel();
    let style = TextStyle::from((FONT, 15).into_font())
        .color(&AXIS)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        text,
        (w as i32 / 2 + 28, h as i32 / 2 - 16),
        style,
    ))
    .map_err(|e| e.to_string())
}

/// Render requests and interventions per minute for `[since_ms, until_ms)` (whole minutes).
///
/// The legend is left to the page (HTML next to the chart) so it never covers data.
pub fn requests_per_minute(
    counts: &[MinuteCount],
    since_ms: i64,
    until_ms: i64,
) -> Result<String, String> {
    let since_min = since_ms.div_euclid(60_000);
    let minutes = ((until_ms - since_ms) / 60_000).max(2);
    let mut requests = vec![0u64; minutes as usize];
    let mut interventions = vec![0u64; minutes as usize];
    for c in counts {
        let i = c.minute.div_euclid(60_000) - since_min;
        if (0..minutes).contains(&i) {
            requests[i as usize] += c.requests;
            interventions[i as usize] += c.interventions.min(c.requests);
        }
    }
    let peak = requests.iter().copied().max().unwrap_or(0);
    let y_top = nice_ceiling(peak);

    // x counts 1/SUB of a minute from `since` (plotters formats integer axes only when key
    // points are bound); minute i covers [i * SUB, (i + 1) * SUB).
    let step = if minutes <= 15 {
        3
    } else if minutes <= 60 {
        10
    } else {
        180
    };
    let key_points: Vec<i64> = (0..=minutes)
        .filter(|i| (since_min + i).rem_euclid(step) == 0)
        .map(|i| i * SUB)
        .collect();
    let x_axis: WithKeyPoints<_> = (0..minutes * SUB).with_key_points(key_points);

    svg(WIDTH, HEIGHT, |root| {
        let x_label = |x: &i64| clock_label(since_min + x.div_euclid(SUB));
        let y_label = |v: &u64| v.to_string();
        let mut chart = frame(
            root,
            x_axis,
            0u64..y_top,
            &Axes {
                x_desc: Some("time (UTC)"),
                y_desc: Some("requests / min"),
                y_labels: 6,
                x_label: &x_label,
                y_label: &y_label,
                x_area: 48,
                y_area: 64,
                grid_y: true,
            },
        )?;

        if minutes <= MAX_BAR_MINUTES {
            // One bar per minute; the interventions part of it in the accent colour.
            let bar = |i: usize, value: u64, color: RGBColor| {
                let x = i as i64 * SUB;
                Rectangle::new([(x + 3, 0), (x + SUB - 3, value)], color.filled())
            };
            let nonzero = |values: &[u64]| {
                values
                    .iter()
                    .copied()
                    .enumerate()
                    .filter(|(_, v)| *v > 0)
                    .collect::<Vec<_>>()
            };
            chart
                .draw_series(
                    nonzero(&requests)
                        .into_iter()
                        .map(|(i, v)| bar(i, v, REQUESTS)),
                )
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(
                    nonzero(&interventions)
                        .into_iter()
                        .map(|(i, v)| bar(i, v, INTERVENTIONS)),
                )
                .map_err(|e| e.to_string())?;
        } else {
            let at_centre = |values: &[u64]| -> Vec<(i64, u64)> {
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64 * SUB + SUB / 2, *v))
                    .collect()
            };
            chart
                .draw_series(
                    AreaSeries::new(at_centre(&requests), 0, REQUESTS.mix(0.16))
                        .border_style(REQUESTS.stroke_width(2)),
                )
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    at_centre(&interventions),
                    INTERVENTIONS.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
        }
        if peak == 0 {
            empty_note(root, "No requests in this range yet")?;
        }
        Ok(())
    })
}

/// One feature's tokens, for [`tokens_by_feature`].
pub struct FeatureTokens<'a> {
    pub feature: &'a str,
    pub input: u64,
    pub output: u64,
}

/// Most features drawn in the tokens chart (the rest are summed in the page's table).
pub const MAX_FEATURE_BARS: usize = 8;

/// Tokens by feature: one horizontal bar per feature (most tokens first), input tokens then
/// output tokens stacked, the x axis in tokens.
pub fn tokens_by_feature(features: &[FeatureTokens<'_>]) -> Result<String, String> {
    let shown = &features[..features.len().min(MAX_FEATURE_BARS)];
    let rows = shown.len().max(1);
    let height = 64 + 40 * rows as u32;
    let peak = shown
        .iter()
        .map(|f| f.input.saturating_add(f.output))
        .max()
        .unwrap_or(0);
    let x_top = nice_ceiling(peak);
    let names: Vec<String> = shown
        .iter()
        .map(|f| {
            let mut name: String = f.feature.chars().take(18).collect();
            if f.feature.chars().count() > 18 {
                name.push('…');
            }
            name
        })
        .collect();
    svg(WIDTH, height, |root| {
        // Row i is the band [i, i + 1) of the y axis, the first row at the top.
        let y_axis = (0..rows as u64 * SUB as u64).with_key_points(
            (0..rows as u64)
                .map(|i| i * SUB as u64 + SUB as u64 / 2)
                .collect(),
        );
        let x_label = |v: &u64| short_number(*v);
        let y_label = |v: &u64| {
            let row = rows as u64 - 1 - v / SUB as u64;
            names.get(row as usize).cloned().unwrap_or_default()
        };
        let mut chart = frame(
            root,
            0u64..x_top,
            y_axis,
            &Axes {
                x_desc: Some("tokens (input + output)"),
                y_desc: None,
                y_labels: rows,
                x_label: &x_label,
                y_label: &y_label,
                x_area: 44,
                y_area: 150,
                grid_y: false,
            },
        )?;
        let band = |i: usize| {
            let top = (rows - i) as u64 * SUB as u64;
            (top - SUB as u64 + 4, top - 4)
        };
        chart
            .draw_series(
                shown
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.input > 0)
                    .map(|(i, f)| {
                        let (lo, hi) = band(i);
                        Rectangle::new([(0, lo), (f.input, hi)], REQUESTS.filled())
                    }),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                shown
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.output > 0)
                    .map(|(i, f)| {
                        let (lo, hi) = band(i);
                        Rectangle::new(
                            [(f.input, lo), (f.input.saturating_add(f.output), hi)],
                            OUTPUT_TOKENS.filled(),
                        )
                    }),
            )
            .map_err(|e| e.to_string())?;
        if peak == 0 {
            empty_note(root, "No tokens in this range yet")?;
        }
        Ok(())
    })
}

/// `1.2k`, `3.4M`: axis labels that fit.
fn short_number(v: u64) -> String {
    match v {
        0..1_000 => v.to_string(),
        1_000..1_000_000 => trim_decimal(v as f64 / 1e3, "k"),
        1_000_000..1_000_000_000 => trim_decimal(v as f64 / 1e6, "M"),
        _ => trim_decimal(v as f64 / 1e9, "G"),
    }
}

fn trim_decimal(v: f64, unit: &str) -> String {
    let s = format!("{v:.1}");
    format!("{}{unit}", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The smallest "round" axis top at or above `peak` plus some headroom (at least 5).
fn nice_ceiling(peak: u64) -> u64 {
    let target = peak + peak / 10 + 1;
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= target {
        magnitude = magnitude.saturating_mul(10);
    }
    for m in [1u64, 2, 5, 10] {
        let top = magnitude.saturating_mul(m);
        if top >= target {
            return top.max(5);
        }
    }
    target.max(5)
}

/// `HH:MM` (UTC) of an absolute minute number.
fn clock_label(minute: i64) -> String {
    let of_day = minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_with_headroom() {
        assert_eq!(nice_ceiling(0), 5);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(9), 10);
        assert_eq!(nice_ceiling(42), 50);
        assert_eq!(nice_ceiling(95), 200);
        assert_eq!(nice_ceiling(1000), 2000);
    }

    #[test]
    fn clock_labels_are_utc_wall_clock() {
        assert_eq!(clock_label(0), "00:00");
        assert_eq!(clock_label(61), "01:01");
        assert_eq!(clock_label(24 * 60 + 5), "00:05");
    }

    #[test]
    fn renders_an_svg_with_labels_and_both_series() {
        let since = 1_700_000_040_000;
        let until = since + 60 * 60_000;
        let counts = [
            MinuteCount {
                minute: since + 5 * 60_000,
                requests: 12,
                interventions: 3,
            },
            MinuteCount {
                minute: since + 6 * 60_000,
                requests: 7,
                interventions: 0,
            },
        ];
        let svg = requests_per_minute(&counts, since, until).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("viewBox"));
        assert!(svg.contains("requests / min"));
        assert!(svg.contains("time (UTC)"));
        // Bars: one per non-empty minute and series (plus the background rect).
        assert!(svg.matches("<rect").count() >= 4, "{svg}");
        assert!(!svg.contains("No requests"));
        assert!(!svg.contains("style="), "inline styles would break the CSP");
    }

    #[test]
    fn long_ranges_draw_an_area() {
        let since = 1_700_000_040_000;
        let counts = [MinuteCount {
            minute: since + 600 * 60_000,
            requests: 4,
            interventions: 1,
        }];
        let svg = requests_per_minute(&counts, since, since + 24 * 60 * 60_000).unwrap();
        assert!(
            svg.contains("<polygon") || svg.contains("<path"),
            "{}",
            &svg[..200]
        );
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn tokens_chart_has_a_bar_per_part_and_feature_names() {
        let f = [
            FeatureTokens {
                feature: "support",
                input: 12_000,
                output: 30_000,
            },
            FeatureTokens {
                feature: "search",
                input: 500,
                output: 0,
            },
        ];
        let svg = tokens_by_feature(&f).unwrap();
        assert!(svg.contains("support") && svg.contains("search"), "{svg}");
        assert!(svg.contains("tokens (input + output)"));
        // Background + three bars.
        assert_eq!(svg.matches("<rect").count(), 4, "{svg}");
        assert!(!svg.contains("style="));
        assert!(tokens_by_feature(&[]).unwrap().contains("No tokens"));
        assert_eq!(short_number(1_500), "1.5k");
        assert_eq!(short_number(2_000_000), "2M");
    }

    #[test]
    fn empty_ranges_say_so() {
        let since = 1_700_000_040_000;
        let svg = requests_per_minute(&[], since, since + 15 * 60_000).unwrap();
        assert!(svg.contains("No requests in this range yet"));
    }
}
