//! Aligned plain-text tables and `key  value` blocks for people.
//!
//! Columns are left-aligned and separated by two spaces; the last column is not padded, so a
//! long `DETAILS` sentence does not push trailing blanks into a terminal. Control characters
//! in cells (a newline in a description written through the raw API) are shown as spaces so a
//! value can never break a row in two.

/// A table with a header row.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty and extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| clean(&c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = width.saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key  value` lines with the values aligned, for one job, cluster or lock.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = width - key.chars().count();
        let line = format!("{key}:{}  {}", " ".repeat(pad), clean(value));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The cell text with every control character shown as a space.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_last_one_is_not_padded() {
        let mut t = Table::new(&["ID", "DESCRIPTION", "STATUS"]);
        t.row(vec!["a".into(), "Orders nightly".into(), "active".into()]);
        t.row(vec!["bbbb".into(), "é".into(), "deleted".into()]);
        assert_eq!(
            t.render(),
            "ID    DESCRIPTION     STATUS\n\
             a     Orders nightly  active\n\
             bbbb  é               deleted\n"
        );
    }

    #[test]
    fn a_newline_in_a_cell_cannot_break_the_row() {
        let mut t = Table::new(&["ID", "DESCRIPTION"]);
        t.row(vec!["x".into(), "two\nlines".into()]);
        assert_eq!(t.render().lines().count(), 2);
    }

    #[test]
    fn short_rows_are_filled() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["1".into()]);
        assert_eq!(t.render(), "A  B\n1\n");
    }

    #[test]
    fn key_values_align() {
        let text = key_values(&[("ID", "j1".into()), ("Schedule", "0 * * * *".into())]);
        assert_eq!(text, "ID:        j1\nSchedule:  0 * * * *\n");
    }
}
