//! Reports as tables: one header and rows of text, written as CSV (to a
//! file or standard output) or as an Excel sheet.

use anyhow::{Context, Result};
use std::path::Path;

pub fn write_csv<W: std::io::Write>(
    output: W,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let mut writer = csv::Writer::from_writer(output);
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    writer.flush()?;
    Ok(())
}

pub fn write_xlsx(
    path: &Path,
    sheet_name: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name)?;
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (column, name) in header.iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, *name, &bold)?;
    }
    for (index, row) in rows.iter().enumerate() {
        let line = index as u32 + 1;
        for (column, value) in row.iter().enumerate() {
            sheet.write_string(line, column as u16, value)?;
        }
    }
    workbook
        .save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes `rows` to each path given, or as CSV to standard output when
/// neither is; says what it wrote.
pub fn write_report(
    csv_path: Option<&Path>,
    xlsx_path: Option<&Path>,
    sheet_name: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    if let Some(path) = csv_path {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        write_csv(file, header, rows)?;
        println!("wrote {} ({} {sheet_name})", path.display(), rows.len());
    }
    if let Some(path) = xlsx_path {
        write_xlsx(path, sheet_name, header, rows)?;
        println!("wrote {} ({} {sheet_name})", path.display(), rows.len());
    }
    if csv_path.is_none() && xlsx_path.is_none() {
        write_csv(std::io::stdout(), header, rows)?;
    }
    Ok(())
}
