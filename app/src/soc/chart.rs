//! SOC charts, drawn with plotters into SVG strings on the server: the Insights chart of a
//! `stats … by bin()` result (one line per group and value column) and a user's activity
//! (requests and interventions per time bucket). Axes are labelled in UTC with round steps;
//! the frame (background, grid, axes, label style) is the console's one, [`crate::chart::frame`].

use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::prelude::*;

use super::server::parse_result_time;
use crate::chart::{Axes, INTERVENTIONS, REQUESTS, empty_note, frame, svg};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 320;
/// Line colours of the Insights chart, in order (the page's `swatch-s0` … `swatch-s7`).
const PALETTE: [RGBColor; 8] = [
    RGBColor(79, 70, 229),
    RGBColor(217, 119, 6),
    RGBColor(5, 150, 105),
    RGBColor(220, 38, 38),
    RGBColor(14, 116, 144),
    RGBColor(147, 51, 234),
    RGBColor(100, 116, 139),
    RGBColor(202, 138, 4),
];
/// Series drawn at most (the biggest by total).
const MAX_SERIES: usize = 8;

/// Round tick steps, in ms.
const STEPS: [i64; 12] = [
    60_000,
    5 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    2 * 86_400_000,
    7 * 86_400_000,
    30 * 86_400_000,
];

fn ticks(start: i64, end: i64) -> Vec<i64> {
    let span = (end - start).max(1);
    let step = STEPS
        .into_iter()
        .find(|s| span / s <= 8)
        .unwrap_or(365 * 86_400_000);
    let first = start.div_euclid(step) * step + if start.rem_euclid(step) == 0 { 0 } else { step };
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= end)
        .take(20)
        .collect()
}

fn time_label(ms: i64, span: i64) -> String {
    let full = gateway::insights::value::format_time(ms);
    if span > 2 * 86_400_000 {
        // MM-DD HH:MM
        full.get(5..16).unwrap_or(&full).to_string()
    } else {
        full.get(11..16).unwrap_or(&full).to_string()
    }
}

fn nice_top(peak: f64) -> f64 {
    if peak <= 0.0 || !peak.is_finite() {
        return 5.0;
    }
    let target = peak * 1.1;
    let magnitude = 10f64.powf(target.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if magnitude * m >= target {
            return magnitude * m;
        }
    }
    target
}

fn number_label(v: f64) -> String {
    if v.abs() >= 1000.0 && v.fract() == 0.0 {
        crate::pages::group_thousands(v as u64)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The chart of a `stats … by bin()` result and its series names (colour `i` of [`PALETTE`]
/// for name `i`; the page draws the legend), or `None` when the result has no time column and
/// numeric column to draw.
pub fn bin_chart(columns: &[String], rows: &[Vec<String>]) -> Option<(String, Vec<String>)> {
    if rows.is_empty() {
        return None;
    }
    let filled = |i: usize| {
        rows.iter()
            .filter_map(move |r| r.get(i))
            .filter(|v| !v.is_empty())
    };
    let time_col = (0..columns.len()).find(|&i| {
        filled(i).next().is_some() && filled(i).all(|v| parse_result_time(v).is_some())
    })?;
    let numeric: Vec<usize> = (0..columns.len())
        .filter(|&i| i != time_col)
        .filter(|&i| filled(i).next().is_some() && filled(i).all(|v| v.parse::<f64>().is_ok()))
        .collect();
    if numeric.is_empty() {
        return None;
    }
    let keys: Vec<usize> = (0..columns.len())
        .filter(|i| *i != time_col && !numeric.contains(i))
        .collect();
    let mut series: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
    for row in rows {
        let Some(t) = row.get(time_col).and_then(|v| parse_result_time(v)) else {
            continue;
        };
        let key: Vec<&str> = keys
            .iter()
            .map(|&k| row.get(k).map_or("", String::as_str))
            .collect();
        for &n in &numeric {
            let Some(v) = row.get(n).and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let mut name = key
                .iter()
                .filter(|k| !k.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" · ");
            if numeric.len() > 1 || name.is_empty() {
                if !name.is_empty() {
                    name.push_str(" · ");
                }
                name.push_str(&columns[n]);
            }
            match series.iter_mut().find(|(s, _)| *s == name) {
                Some((_, points)) => points.push((t, v)),
                None => series.push((name, vec![(t, v)])),
            }
        }
    }
    let total = |p: &[(i64, f64)]| p.iter().map(|(_, v)| v.abs()).sum::<f64>();
    series.sort_by(|a, b| total(&b.1).total_cmp(&total(&a.1)));
    series.truncate(MAX_SERIES);
    for (_, points) in &mut series {
        points.sort_by_key(|(t, _)| *t);
    }
    let svg = lines(&series).ok()?;
    Some((svg, series.into_iter().map(|(name, _)| name).collect()))
}

fn lines(series: &[(String, Vec<(i64, f64)>)]) -> Result<String, String> {
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let (mut start, mut end, mut peak) = (i64::MAX, i64::MIN, 0f64);
    for (t, v) in all {
        start = start.min(*t);
        end = end.max(*t);
        peak = peak.max(*v);
    }
    if start > end {
        return Err("no points".into());
    }
    if start == end {
        start -= 60_000;
        end += 60_000;
    }
    let span = end - start;
    let x_axis: WithKeyPoints<_> = (start..end).with_key_points(ticks(start, end));
    let top = nice_top(peak);
    svg(WIDTH, HEIGHT, |root| {
        let x_label = |x: &i64| time_label(*x, span);
        let y_label = |v: &f64| number_label(*v);
        let mut chart = frame(
            root,
            x_axis,
            0f64..top,
            &Axes {
                x_desc: Some("time (UTC)"),
                y_desc: None,
                y_labels: 6,
                x_label: &x_label,
                y_label: &y_label,
                x_area: 44,
                y_area: 64,
                grid_y: true,
            },
        )?;
        // The legend is the page's (HTML): plotters sizes its box for its own font metrics,
        // and the page's font overflowed it.
        for (i, (_, points)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// A user's requests (bars) and interventions (accent bars) per `bucket_ms` in
/// `[start_ms, end_ms]`; `buckets` are (bucket start, requests, interventions).
pub fn activity(
    buckets: &[(i64, u64, u64)],
    start_ms: i64,
    end_ms: i64,
    bucket_ms: i64,
) -> Result<String, String> {
    let bucket_ms = bucket_ms.max(1);
    let start = start_ms.div_euclid(bucket_ms) * bucket_ms;
    let end = end_ms.max(start + bucket_ms);
    let span = end - start;
    let peak = buckets.iter().map(|b| b.1).max().unwrap_or(0);
    let top = nice_top(peak as f64).max(5.0) as u64;
    let x_axis: WithKeyPoints<_> = (start..end).with_key_points(ticks(start, end));
    svg(WIDTH, 260, |root| {
        let x_label = |x: &i64| time_label(*x, span);
        let y_label = |v: &u64| v.to_string();
        let mut chart = frame(
            root,
            x_axis,
            0u64..top,
            &Axes {
                x_desc: Some("time (UTC)"),
                y_desc: Some("requests"),
                y_labels: 5,
                x_label: &x_label,
                y_label: &y_label,
                x_area: 44,
                y_area: 56,
                grid_y: true,
            },
        )?;
        let gap = (bucket_ms / 8).max(1);
        let bar = |t: i64, v: u64, color: RGBColor| {
            Rectangle::new(
                [(t + gap, 0), ((t + bucket_ms - gap).min(end), v)],
                color.filled(),
            )
        };
        let visible = |t: &i64| (start..end).contains(t);
        chart
            .draw_series(
                buckets
                    .iter()
                    .filter(|b| visible(&b.0) && b.1 > 0)
                    .map(|b| bar(b.0, b.1, REQUESTS)),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                buckets
                    .iter()
                    .filter(|b| visible(&b.0) && b.2 > 0)
                    .map(|b| bar(b.0, b.2.min(b.1), INTERVENTIONS)),
            )
            .map_err(|e| e.to_string())?;
        if peak == 0 {
            empty_note(root, "No requests by this user in this range")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::insights::value::format_time;

    #[test]
    fn ticks_are_round_and_few() {
        let t = ticks(0, 3_600_000);
        assert!(t.len() <= 9 && t.len() >= 2, "{t:?}");
        assert!(t.iter().all(|x| x % 60_000 == 0));
        assert!(ticks(5, 10).len() <= 1);
    }

    #[test]
    fn bin_results_become_one_line_per_group() {
        let base = 1_700_000_000_000 / 300_000 * 300_000;
        let cols = vec!["bin(5m)".to_string(), "feature".into(), "count(*)".into()];
        let rows: Vec<Vec<String>> = (0..6)
            .flat_map(|i| {
                let t = format_time(base + i * 300_000);
                [
                    vec![t.clone(), "chat".into(), (i * 3).to_string()],
                    vec![t, "search".into(), (i + 1).to_string()],
                ]
            })
            .collect();
        let (svg, names) = bin_chart(&cols, &rows).unwrap();
        assert_eq!(names, ["chat", "search"], "biggest total first");
        assert!(svg.starts_with("<svg"));
        assert_eq!(
            svg.matches("<circle").count(),
            12,
            "a point per bin and series"
        );
        assert!(svg.contains("time (UTC)"));
        assert!(!svg.contains("style="), "inline styles would break the CSP");
        // No time column: no chart.
        let cols = vec!["model".to_string(), "n".into()];
        assert!(bin_chart(&cols, &[vec!["m".into(), "1".into()]]).is_none());
    }

    #[test]
    fn activity_draws_bars_or_says_there_is_nothing() {
        let start = 1_700_000_000_000 / 3_600_000 * 3_600_000;
        let svg = activity(
            &[(start + 3_600_000, 4, 1)],
            start,
            start + 24 * 3_600_000,
            3_600_000,
        )
        .unwrap();
        assert!(svg.matches("<rect").count() >= 3, "{svg}");
        let empty = activity(&[], start, start + 3_600_000, 300_000).unwrap();
        assert!(empty.contains("No requests by this user"));
    }
}
