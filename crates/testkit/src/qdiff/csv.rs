//! CSV bodies (`Accept: application/csv`): splitting records and cells, and
//! comparing them cell by cell.

use super::compare::mixed;
use super::{floats_close, truncate};

/// Splits one CSV line (Go's encoding/csv quoting: `"` around cells holding
/// commas, quotes or line breaks, `""` for a quote).
pub fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if cur.is_empty() => quoted = true,
            ',' if !quoted => cells.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    cells.push(cur);
    cells
}

/// Records of a CSV body: lines, except that a quoted cell may hold line breaks.
fn csv_records(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in body.split('\n') {
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(line.strip_suffix('\r').unwrap_or(line));
        if cur.matches('"').count().is_multiple_of(2) {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn csv_number(cell: &str) -> Option<(bool, f64)> {
    let v: f64 = cell.parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    let int = !cell.contains(['.', 'e', 'E']);
    Some((int, v))
}

/// CSV equality, record by record and cell by cell.
pub fn compare_csv(a: &str, b: &str) -> Result<(), String> {
    let (ra, rb) = (csv_records(a), csv_records(b));
    if ra.len() != rb.len() {
        return Err(format!("{} CSV lines vs {}", ra.len(), rb.len()));
    }
    for (n, (x, y)) in ra.iter().zip(&rb).enumerate() {
        let (cx, cy) = (csv_cells(x), csv_cells(y));
        if cx.len() != cy.len() {
            return Err(format!(
                "CSV line {}: {} cells vs {}: {:?} vs {:?}",
                n + 1,
                cx.len(),
                cy.len(),
                truncate(x, 200),
                truncate(y, 200)
            ));
        }
        for (i, (u, v)) in cx.iter().zip(&cy).enumerate() {
            if u == v {
                continue;
            }
            let same = match (csv_number(u), csv_number(v)) {
                (Some((iu, fu)), Some((iv, fv))) if iu == iv => !iu && floats_close(fu, fv),
                (Some((_, fu)), Some((_, fv))) => mixed(fu, fv).is_ok(),
                _ => false,
            };
            if !same {
                return Err(format!(
                    "CSV line {}, cell {}: {u:?} vs {v:?}",
                    n + 1,
                    i + 1
                ));
            }
        }
    }
    Ok(())
}
