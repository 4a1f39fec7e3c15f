//! The overview's requests-per-minute chart, drawn with plotters into an SVG string on the
//! server (the browser only inserts it).
//!
//! Minutes without requests are drawn as zeros; the x axis is labelled in UTC wall-clock time at
//! round steps (3 min, 10 min or 3 h, by range length), the y axis in requests per minute.

use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use gateway::audit::MinuteCount;

/// Rendered size in SVG user units; the page scales it to its container (the SVG has a viewBox).
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 340;

const REQUESTS: RGBColor = RGBColor(79, 70, 229);
const INTERVENTIONS: RGBColor = RGBColor(217, 119, 6);
const GRID: RGBColor = RGBColor(229, 231, 235);
const AXIS: RGBColor = RGBColor(156, 163, 175);
const LABEL: RGBColor = RGBColor(75, 85, 99);
const FONT: &str = "sans-serif";

/// Render requests and interventions per minute for `[since_ms, until_ms)` (whole minutes).
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
            interventions[i as usize] += c.interventions;
        }
    }
    let peak = requests.iter().copied().max().unwrap_or(0);
    let y_top = nice_ceiling(peak);
    let last = minutes - 1;

    let step = match minutes {
        ..=15 => 3,
        ..=60 => 10,
        _ => 180,
    };
    let key_points: Vec<i64> = (0..=last)
        .filter(|i| (since_min + i).rem_euclid(step) == 0)
        .collect();
    let x_axis: WithKeyPoints<_> = (0..last).with_key_points(key_points);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(16)
            .margin_right(24)
            .margin_left(8)
            .margin_bottom(8)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x_axis, 0u64..y_top)
            .map_err(|e| e.to_string())?;
        let label_style = (FONT, 13).into_font().color(&LABEL);
        let desc_style = (FONT, 13).into_font().color(&LABEL);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID.stroke_width(1))
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS.stroke_width(1))
            .y_labels(6)
            .x_label_formatter(&|i| clock_label(since_min + *i))
            .y_label_formatter(&|v| v.to_string())
            .x_label_style(label_style.clone())
            .y_label_style(label_style)
            .x_desc("time (UTC)")
            .y_desc("requests / min")
            .axis_desc_style(desc_style)
            .draw()
            .map_err(|e| e.to_string())?;

        chart
            .draw_series(
                AreaSeries::new(
                    requests.iter().enumerate().map(|(i, v)| (i as i64, *v)),
                    0,
                    REQUESTS.mix(0.14),
                )
                .border_style(REQUESTS.stroke_width(2)),
            )
            .map_err(|e| e.to_string())?
            .label("requests")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], REQUESTS.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(
                interventions
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64, *v)),
                INTERVENTIONS.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("guardrail interventions")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], INTERVENTIONS.stroke_width(3))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(12)
            .label_font((FONT, 13).into_font().color(&LABEL))
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .draw()
            .map_err(|e| e.to_string())?;

        if peak == 0 {
            let (w, h) = root.dim_in_pixel();
            let style = TextStyle::from((FONT, 15).into_font())
                .color(&AXIS)
                .pos(Pos::new(HPos::Center, VPos::Center));
            root.draw(&Text::new(
                "No requests in this range yet",
                (w as i32 / 2 + 28, h as i32 / 2 - 16),
                style,
            ))
            .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
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
        assert_eq!(nice_ceiling(9), 20);
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
        let since = 1_700_000_040_000 - 1_700_000_040_000 % 60_000;
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
        assert!(svg.contains("guardrail interventions"));
        assert!(!svg.contains("No requests"));
        assert!(!svg.contains("style="), "inline styles would break the CSP");
    }

    #[test]
    fn empty_ranges_say_so() {
        let since = 1_700_000_040_000 - 1_700_000_040_000 % 60_000;
        let svg = requests_per_minute(&[], since, since + 15 * 60_000).unwrap();
        assert!(svg.contains("No requests in this range yet"));
    }
}
