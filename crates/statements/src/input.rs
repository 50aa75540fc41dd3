//! Bounded reading of physical lines and delimited records from a `BufRead`.
//!
//! Lines are read as bytes and decoded field by field, strictly: a byte
//! sequence that is not valid in the file's encoding is an error naming its
//! field, never a silent U+FFFD. GBK is ASCII-compatible and none of its
//! trail bytes (0x40–0xFE) is `\n`, `\r`, `,`, `"` or TAB, so splitting GBK
//! bytes on those before decoding is safe.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use csv_core::ReadRecordResult;

use crate::error::ErrorKind;

/// Longest physical line accepted. Real statement lines are well under 2 KiB.
pub const LINE_BYTES_MAX: usize = 64 * 1024;
/// Largest delimited record (all its field bytes) accepted.
pub const RECORD_BYTES_MAX: usize = 256 * 1024;
/// Most physical lines one quoted record may span.
pub const RECORD_LINES_MAX: usize = 64;
/// Most fields in one delimited record.
pub const RECORD_FIELDS_MAX: usize = 512;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// A statement file's text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    Utf8,
    /// GBK as WHATWG defines it (decodes the GB18030 superset too).
    Gbk,
}

impl TextEncoding {
    /// `utf-8` or `gbk` (also `utf8`, `gb18030`, `gb2312`), case-insensitive.
    pub fn parse(name: &str) -> Option<TextEncoding> {
        match name.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(TextEncoding::Utf8),
            "gbk" | "gb18030" | "gb2312" => Some(TextEncoding::Gbk),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Gbk => "GBK",
        }
    }

    /// Decodes strictly: malformed input is an error, not a replacement.
    pub(crate) fn decode(self, bytes: &[u8]) -> Result<Cow<'_, str>, ErrorKind> {
        let invalid = || ErrorKind::InvalidEncoding {
            encoding: self.name(),
        };
        match self {
            TextEncoding::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| invalid()),
            TextEncoding::Gbk if bytes.is_ascii() => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| invalid()),
            TextEncoding::Gbk => encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(invalid),
        }
    }

    /// The bytes of `text` in this encoding (for matching line prefixes
    /// before decoding). Characters GBK cannot hold are an error.
    pub(crate) fn encode(self, text: &str) -> Result<Vec<u8>, ErrorKind> {
        match self {
            TextEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
            TextEncoding::Gbk => {
                let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
                if unmappable {
                    Err(ErrorKind::InvalidEncoding {
                        encoding: self.name(),
                    })
                } else {
                    Ok(bytes.into_owned())
                }
            }
        }
    }
}

/// Physical lines of a file, each at most [`LINE_BYTES_MAX`] bytes, with
/// their 1-based numbers. A UTF-8 byte-order mark on line 1 is dropped.
pub(crate) struct LineReader<R> {
    input: R,
    buffer: Vec<u8>,
    line_number: u64,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(input: R) -> Self {
        LineReader {
            input,
            buffer: Vec::new(),
            line_number: 0,
        }
    }

    /// Reads the next line, terminator included. `false` at the end.
    pub(crate) fn advance(&mut self) -> Result<bool, ErrorKind> {
        self.buffer.clear();
        // Counted first, so that an error names the line being read.
        self.line_number += 1;
        // One byte more than the limit tells a long line from a full one.
        let limit = (LINE_BYTES_MAX + 1) as u64;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buffer)?;
        if read == 0 {
            self.line_number -= 1;
            return Ok(false);
        }
        if self.content().len() > LINE_BYTES_MAX {
            return Err(ErrorKind::LineTooLong {
                bytes_max: LINE_BYTES_MAX,
            });
        }
        if self.line_number == 1 && self.buffer.starts_with(UTF8_BOM) {
            self.buffer.drain(..UTF8_BOM.len());
        }
        Ok(true)
    }

    /// The current line with its terminator.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.buffer
    }

    /// The current line without `\n` or `\r\n`.
    pub(crate) fn content(&self) -> &[u8] {
        let line = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    /// 1-based number of the current line (0 before the first).
    pub(crate) fn line_number(&self) -> u64 {
        self.line_number
    }
}

/// How a delimited file is cut into fields.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    pub(crate) delimiter: u8,
    /// Lines starting with one of these (in the file's encoding) are
    /// comments, returned whole instead of parsed.
    pub(crate) comment_prefixes: Vec<Vec<u8>>,
}

/// What [`DelimitedReader::next_item`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    Row,
    Comment,
}

/// Delimited records (RFC 4180 quoting, by `csv-core`) over physical lines,
/// skipping blank lines. Buffers are reused: memory stays constant.
pub(crate) struct DelimitedReader<R> {
    lines: LineReader<R>,
    parser: csv_core::Reader,
    comment_prefixes: Vec<Vec<u8>>,
    output: Vec<u8>,
    output_length: usize,
    ends: Vec<usize>,
    field_count: usize,
    item_line: u64,
}

impl<R: BufRead> DelimitedReader<R> {
    pub(crate) fn new(input: R, dialect: Dialect) -> Self {
        let parser = csv_core::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .build();
        DelimitedReader {
            lines: LineReader::new(input),
            parser,
            comment_prefixes: dialect.comment_prefixes,
            output: vec![0; 4096],
            output_length: 0,
            ends: vec![0; 64],
            field_count: 0,
            item_line: 0,
        }
    }

    /// Skips `count` physical lines whatever they hold (preambles).
    pub(crate) fn skip_lines(&mut self, count: usize) -> Result<(), ErrorKind> {
        for _ in 0..count {
            if !self.lines.advance()? {
                break;
            }
        }
        Ok(())
    }

    /// Moves to the next row or comment line; `None` at the end.
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>, ErrorKind> {
        loop {
            if !self.lines.advance()? {
                return Ok(None);
            }
            let content = self.lines.content();
            if content.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.item_line = self.lines.line_number();
            let is_comment = self
                .comment_prefixes
                .iter()
                .any(|prefix| content.starts_with(prefix));
            if is_comment {
                return Ok(Some(Item::Comment));
            }
            self.read_record()?;
            return Ok(Some(Item::Row));
        }
    }

    /// Parses one record starting at the current line; a quoted field may
    /// continue it onto the following lines.
    fn read_record(&mut self) -> Result<(), ErrorKind> {
        self.parser.reset();
        self.output_length = 0;
        self.field_count = 0;
        let mut position = 0;
        let mut lines_read = 1;
        let mut at_end = false;
        loop {
            let input = if at_end {
                &[][..]
            } else {
                &self.lines.raw()[position..]
            };
            let (result, read, written, ended) = self.parser.read_record(
                input,
                &mut self.output[self.output_length..],
                &mut self.ends[self.field_count..],
            );
            position += read;
            self.output_length += written;
            self.field_count += ended;
            match result {
                ReadRecordResult::Record | ReadRecordResult::End => return Ok(()),
                ReadRecordResult::OutputFull => grow(&mut self.output, RECORD_BYTES_MAX)?,
                ReadRecordResult::OutputEndsFull => grow(&mut self.ends, RECORD_FIELDS_MAX)?,
                ReadRecordResult::InputEmpty if at_end => return Ok(()),
                ReadRecordResult::InputEmpty => {
                    if lines_read == RECORD_LINES_MAX {
                        return Err(record_too_large());
                    }
                    lines_read += 1;
                    position = 0;
                    at_end = !self.lines.advance()?;
                }
            }
        }
    }

    /// The current row's fields.
    pub(crate) fn row(&self) -> Row<'_> {
        Row {
            output: &self.output[..self.output_length],
            ends: &self.ends[..self.field_count],
        }
    }

    /// The current comment line, without its terminator.
    pub(crate) fn comment(&self) -> &[u8] {
        self.lines.content()
    }

    /// The line where the current item starts.
    pub(crate) fn item_line(&self) -> u64 {
        self.item_line
    }

    /// The physical line reached: after an error, the line that failed; at
    /// the end, the last line.
    pub(crate) fn line_number(&self) -> u64 {
        self.lines.line_number()
    }
}

fn record_too_large() -> ErrorKind {
    ErrorKind::RecordTooLarge {
        bytes_max: RECORD_BYTES_MAX,
        lines_max: RECORD_LINES_MAX,
        fields_max: RECORD_FIELDS_MAX,
    }
}

fn grow<T: Default + Clone>(buffer: &mut Vec<T>, length_max: usize) -> Result<(), ErrorKind> {
    if buffer.len() >= length_max {
        return Err(record_too_large());
    }
    let length = (buffer.len() * 2).min(length_max);
    buffer.resize(length, T::default());
    Ok(())
}

/// The fields of one delimited record, as raw bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    output: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Row<'a> {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, index: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => *self.ends.get(index - 1)?,
        };
        self.output.get(start..end)
    }

    pub(crate) fn fields(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// Checks that every field decodes, also those no record field reads:
    /// bytes that are not the file's encoding mean a damaged file. On
    /// failure, the index of the first bad field.
    pub(crate) fn check_encoding(&self, encoding: TextEncoding) -> Result<(), (usize, ErrorKind)> {
        for (index, bytes) in self.fields().enumerate() {
            encoding.decode(bytes).map_err(|kind| (index, kind))?;
        }
        Ok(())
    }
}

/// An owned copy of a row, for readers that must look ahead.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedRow {
    pub(crate) line: u64,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl OwnedRow {
    pub(crate) fn copy_from(line: u64, row: Row<'_>) -> Self {
        OwnedRow {
            line,
            output: row.output.to_vec(),
            ends: row.ends.to_vec(),
        }
    }

    pub(crate) fn row(&self) -> Row<'_> {
        Row {
            output: &self.output,
            ends: &self.ends,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let dialect = Dialect {
            delimiter: b',',
            comment_prefixes: vec![b"#".to_vec()],
        };
        let mut reader = DelimitedReader::new(text, dialect);
        let mut found = Vec::new();
        while let Some(item) = reader.next_item().unwrap() {
            let fields = match item {
                Item::Row => reader
                    .row()
                    .fields()
                    .map(|field| String::from_utf8(field.to_vec()).unwrap())
                    .collect(),
                Item::Comment => vec![String::from_utf8(reader.comment().to_vec()).unwrap()],
            };
            found.push((reader.item_line(), fields));
        }
        found
    }

    #[test]
    fn lines_are_numbered_across_blank_lines_crlf_and_quotes() {
        let text = b"\xef\xbb\xbfa,b\r\n\r\n# note, here\n\"x\ny\",z\nlast,\"q\"\"q\"";
        let found = rows(text);
        assert_eq!(
            found,
            vec![
                (1, vec!["a".into(), "b".into()]),
                (3, vec!["# note, here".into()]),
                (4, vec!["x\ny".into(), "z".into()]),
                (6, vec!["last".into(), "q\"q".into()]),
            ]
        );
    }

    #[test]
    fn a_long_line_is_refused() {
        let mut text = vec![b'a'; LINE_BYTES_MAX + 1];
        text.push(b'\n');
        let mut lines = LineReader::new(&text[..]);
        assert!(matches!(
            lines.advance(),
            Err(ErrorKind::LineTooLong { .. })
        ));
        let mut exact = vec![b'a'; LINE_BYTES_MAX];
        exact.extend_from_slice(b"\r\n");
        let mut lines = LineReader::new(&exact[..]);
        assert!(lines.advance().unwrap());
        assert_eq!(lines.content().len(), LINE_BYTES_MAX);
    }

    #[test]
    fn an_unclosed_quote_is_bounded() {
        let mut text = b"\"open\n".to_vec();
        for _ in 0..RECORD_LINES_MAX + 1 {
            text.extend_from_slice(b"more\n");
        }
        let dialect = Dialect {
            delimiter: b',',
            comment_prefixes: Vec::new(),
        };
        let mut reader = DelimitedReader::new(&text[..], dialect);
        assert!(matches!(
            reader.next_item(),
            Err(ErrorKind::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn gbk_decoding_is_strict() {
        let (bytes, _, _) = encoding_rs::GBK.encode("商户订单号");
        assert_eq!(TextEncoding::Gbk.decode(&bytes).unwrap(), "商户订单号");
        assert!(TextEncoding::Gbk.decode(&[0x81, 0x20]).is_err());
        assert!(TextEncoding::Utf8.decode(&[0xff]).is_err());
    }
}
