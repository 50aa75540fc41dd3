//! A header row: column names, looked up by name, never by position.

use crate::error::{ErrorKind, StatementError};
use crate::input::{Row, TextEncoding};

#[derive(Debug, Clone)]
pub(crate) struct Header {
    names: Vec<String>,
    line: u64,
}

impl Header {
    /// Decodes and trims every name. Full-width parentheses become ASCII
    /// ones so that `订单金额（元）` and `订单金额(元)` are the same column.
    pub(crate) fn decode(
        file: &str,
        row: Row<'_>,
        encoding: TextEncoding,
        line: u64,
    ) -> Result<Header, StatementError> {
        let mut names = Vec::with_capacity(row.len());
        for (index, bytes) in row.fields().enumerate() {
            let name = encoding.decode(bytes).map_err(|kind| {
                let column = format!("column {}", index + 1);
                StatementError::at(file, line, Some(&column), kind)
            })?;
            names.push(normalize_name(&name));
        }
        Ok(Header { names, line })
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The name of column `index` (for errors): `column N` past the end.
    pub(crate) fn name(&self, index: usize) -> String {
        self.names
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("column {}", index + 1))
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|candidate| candidate == name)
    }

    /// The column named exactly `name` (parentheses of either width), if
    /// any; more than one is an error.
    pub(crate) fn exact(&self, file: &str, name: &str) -> Result<Option<usize>, StatementError> {
        let name = normalize_name(name);
        self.unique(file, &name, |candidate| candidate == name)
    }

    /// The column whose name contains `fragment`; more than one is an error.
    pub(crate) fn containing(
        &self,
        file: &str,
        fragment: &str,
    ) -> Result<Option<usize>, StatementError> {
        let fragment = normalize_name(fragment);
        self.unique(file, &fragment, |candidate| candidate.contains(&fragment))
    }

    fn unique(
        &self,
        file: &str,
        wanted: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<Option<usize>, StatementError> {
        let mut found = None;
        for (index, candidate) in self.names.iter().enumerate() {
            if !matches(candidate) {
                continue;
            }
            if found.is_some() {
                return Err(self.error(file, wanted, ErrorKind::AmbiguousColumn));
            }
            found = Some(index);
        }
        Ok(found)
    }

    /// A required column: missing is an error naming it, before any row.
    pub(crate) fn require(
        &self,
        file: &str,
        found: Option<usize>,
        wanted: &str,
    ) -> Result<usize, StatementError> {
        found.ok_or_else(|| self.error(file, wanted, ErrorKind::MissingColumn))
    }

    pub(crate) fn error(&self, file: &str, field: &str, kind: ErrorKind) -> StatementError {
        StatementError::at(file, self.line, Some(field), kind)
    }
}

fn normalize_name(name: &str) -> String {
    name.trim().replace('（', "(").replace('）', ")")
}
