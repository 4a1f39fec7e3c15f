//! Printing query results: an aligned text table, GetQueryResults JSON, or CSV. Columns are
//! the fields in order of first appearance; `@ptr` is only in the JSON.

use super::{QueryResults, ResultRow};

/// How `gateway insights` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(format!("unknown format {other:?}: use table, json or csv")),
        }
    }
}

/// The columns of `rows`, in order of first appearance, without `@ptr`.
pub fn columns(rows: &[ResultRow]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for row in rows {
        for f in row {
            if f.field != "@ptr" && !cols.contains(&f.field) {
                cols.push(f.field.clone());
            }
        }
    }
    cols
}

fn cell<'a>(row: &'a ResultRow, col: &str) -> &'a str {
    row.iter()
        .find(|f| f.field == col)
        .map_or("", |f| f.value.as_str())
}

/// Render `results` in `format`.
pub fn render(results: &QueryResults, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(results).unwrap_or_default() + "\n",
        Format::Csv => {
            let cols = columns(&results.results);
            let mut out = String::new();
            out.push_str(
                &cols
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
            for row in &results.results {
                let line: Vec<String> = cols.iter().map(|c| csv_field(cell(row, c))).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table => table(results),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Widest a table cell is printed; longer values are cut with `…`.
const MAX_CELL: usize = 120;

fn table(results: &QueryResults) -> String {
    let cols = columns(&results.results);
    let clip = |s: &str| -> String {
        let one_line = s.replace(['\n', '\r'], " ");
        if one_line.chars().count() > MAX_CELL {
            let mut t: String = one_line.chars().take(MAX_CELL - 1).collect();
            t.push('…');
            t
        } else {
            one_line
        }
    };
    let cells: Vec<Vec<String>> = results
        .results
        .iter()
        .map(|row| cols.iter().map(|c| clip(cell(row, c))).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| -> String {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}", w = *w))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = String::new();
    if !cols.is_empty() {
        out.push_str(&line(&cols));
        out.push('\n');
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-"),
        );
        out.push('\n');
        for r in &cells {
            out.push_str(&line(r));
            out.push('\n');
        }
    }
    let s = &results.statistics;
    out.push_str(&format!(
        "{} rows; {} events matched, {} scanned, {} bytes read; {:?}\n",
        results.results.len(),
        s.records_matched,
        s.records_scanned,
        s.bytes_scanned,
        results.status
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::{QueryStatistics, QueryStatus, ResultField};

    fn results() -> QueryResults {
        let f = |field: &str, value: &str| ResultField {
            field: field.into(),
            value: value.into(),
        };
        QueryResults {
            results: vec![
                vec![f("a", "1"), f("b", "x,y"), f("@ptr", "a1")],
                vec![f("a", "22"), f("c", "q\"r")],
            ],
            statistics: QueryStatistics {
                records_matched: 2.0,
                records_scanned: 5.0,
                bytes_scanned: 100.0,
            },
            status: QueryStatus::Complete,
        }
    }

    #[test]
    fn csv_and_table() {
        assert_eq!(
            render(&results(), Format::Csv),
            "a,b,c\n1,\"x,y\",\n22,,\"q\"\"r\"\n"
        );
        let t = render(&results(), Format::Table);
        assert!(
            t.starts_with("a  | b   | c\n---+-----+----\n1  | x,y |\n22 |     | q\"r\n"),
            "{t}"
        );
        assert!(t.contains("2 rows; 2 events matched, 5 scanned"));
        let j: serde_json::Value = serde_json::from_str(&render(&results(), Format::Json)).unwrap();
        assert_eq!(j["results"][0][2]["field"], "@ptr");
        assert_eq!(j["statistics"]["recordsScanned"], 5.0);
        assert_eq!(j["status"], "Complete");
    }
}
