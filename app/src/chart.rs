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

/// Subdivisions of a minute on the x axis.
const SUB: i64 = 20;
/// Ranges up to this many minutes are drawn as one bar per minute; longer ones as an area.
const MAX_BAR_MINUTES: i64 = 60;

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
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID.stroke_width(1))
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS.stroke_width(1))
            .y_labels(6)
            .x_label_formatter(&|x| clock_label(since_min + x.div_euclid(SUB)))
            .y_label_formatter(&|v| v.to_string())
            .x_label_style(label_style.clone())
            .y_label_style(label_style.clone())
            .x_desc("time (UTC)")
            .y_desc("requests / min")
            .axis_desc_style(label_style)
            .draw()
            .map_err(|e| e.to_string())?;

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
    fn empty_ranges_say_so() {
        let since = 1_700_000_040_000;
        let svg = requests_per_minute(&[], since, since + 15 * 60_000).unwrap();
        assert!(svg.contains("No requests in this range yet"));
    }
}
