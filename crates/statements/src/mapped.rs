//! The generic delimited parser driven by a [`Mapping`].

use std::collections::VecDeque;
use std::io::BufRead;

use money::{Currency, Money};
use time::format_description::OwnedFormatItem;
use time::{Date, PrimitiveDateTime, Time};

use crate::error::{ErrorKind, StatementError};
use crate::header::Header;
use crate::input::{DelimitedReader, Dialect, Item, OwnedRow, Row};
use crate::mapping::{ColumnRef, Mapping, RefundSign};
use crate::record::{RecordKind, RecordStatus, StatementRecord};
use crate::values::{magnitude, parse_amount, parse_currency, parse_fee};

/// Column indexes (0-based) resolved against the header or positions.
struct Columns {
    merchant_order_id: usize,
    channel_transaction_id: usize,
    merchant_refund_id: Option<usize>,
    channel_refund_id: Option<usize>,
    kind: Option<usize>,
    status: Option<usize>,
    amount: usize,
    requested_amount: Option<usize>,
    fee: Option<usize>,
    currency: Option<usize>,
    occurred_at: Vec<usize>,
    business_date: Option<usize>,
}

struct Schema {
    file: String,
    mapping: Mapping,
    header: Option<Header>,
    columns: Columns,
    /// Fields a row must have.
    field_count_min: usize,
    business_date: Option<Date>,
}

/// A streaming parser of one statement file described by a [`Mapping`].
pub struct MappedStatement<R> {
    schema: Schema,
    reader: DelimitedReader<R>,
    /// Rows held back so that the last `trailer_lines` can be dropped.
    held: VecDeque<OwnedRow>,
    finished: bool,
}

impl<R: BufRead> MappedStatement<R> {
    /// Skips the preamble, reads the header if the mapping has one and
    /// resolves every column: a missing one is an error before any row.
    /// `business_date` is used when the mapping has no business-date column;
    /// without either, each record's own date is its business date.
    pub fn new(
        file: impl Into<String>,
        input: R,
        mapping: Mapping,
        business_date: Option<Date>,
    ) -> Result<Self, StatementError> {
        let file = file.into();
        let comment_prefixes = mapping
            .comment_prefixes
            .iter()
            .map(|prefix| mapping.encoding.encode(prefix))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|kind| StatementError::new(&file, kind))?;
        let dialect = Dialect {
            delimiter: mapping.delimiter,
            comment_prefixes,
        };
        let mut reader = DelimitedReader::new(input, dialect);
        reader
            .skip_lines(mapping.skip_lines)
            .map_err(|kind| StatementError::at(&file, reader.line_number(), None, kind))?;
        let header = match mapping.header {
            true => Some(read_header(&file, &mut reader, &mapping)?),
            false => None,
        };
        let columns = resolve_columns(&file, &mapping, header.as_ref())?;
        let field_count_min = match &header {
            Some(header) => header.len(),
            None => columns.max_index() + 1,
        };
        let schema = Schema {
            file,
            mapping,
            header,
            columns,
            field_count_min,
            business_date,
        };
        Ok(MappedStatement {
            schema,
            reader,
            held: VecDeque::new(),
            finished: false,
        })
    }

    fn next_record(&mut self) -> Result<Option<StatementRecord>, StatementError> {
        // Bounded: every pass either returns or holds one more row, and at
        // most `trailer_lines + 1` rows are held.
        loop {
            if self.held.len() > self.schema.mapping.trailer_lines {
                let Some(owned) = self.held.pop_front() else {
                    return Ok(None);
                };
                return self.schema.parse_row(owned.row(), owned.line).map(Some);
            }
            let item = self.reader.next_item().map_err(|kind| {
                StatementError::at(&self.schema.file, self.reader.line_number(), None, kind)
            })?;
            match item {
                // The rows still held are the trailer.
                None => return Ok(None),
                Some(Item::Comment) => continue,
                Some(Item::Row) => {
                    let line = self.reader.item_line();
                    let row = self.reader.row();
                    if self.schema.is_trailer(row, line)? {
                        continue;
                    }
                    if self.schema.mapping.trailer_lines == 0 {
                        return self.schema.parse_row(row, line).map(Some);
                    }
                    self.held.push_back(OwnedRow::copy_from(line, row));
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for MappedStatement<R> {
    type Item = Result<StatementRecord, StatementError>;

    /// Records in file order. After an error the iterator ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let result = self.next_record();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result.transpose()
    }
}

fn read_header<R: BufRead>(
    file: &str,
    reader: &mut DelimitedReader<R>,
    mapping: &Mapping,
) -> Result<Header, StatementError> {
    loop {
        let item = reader
            .next_item()
            .map_err(|kind| StatementError::at(file, reader.line_number(), None, kind))?;
        match item {
            Some(Item::Comment) => continue,
            Some(Item::Row) => {
                return Header::decode(file, reader.row(), mapping.encoding, reader.item_line());
            }
            None => {
                let line = reader.item_line().max(1);
                return Err(StatementError::at(
                    file,
                    line,
                    None,
                    ErrorKind::MissingHeader,
                ));
            }
        }
    }
}

fn resolve_columns(
    file: &str,
    mapping: &Mapping,
    header: Option<&Header>,
) -> Result<Columns, StatementError> {
    let resolve = |column: &ColumnRef| -> Result<usize, StatementError> {
        match (column, header) {
            (ColumnRef::Name(name), Some(header)) => {
                let found = header.exact(file, name)?;
                header.require(file, found, name)
            }
            (ColumnRef::Position(position), None) => Ok(position.saturating_sub(1)),
            _ => {
                let reason = format!("column {column:?} does not fit header = {}", mapping.header);
                Err(StatementError::new(
                    file,
                    ErrorKind::InvalidMapping { reason },
                ))
            }
        }
    };
    let optional = |column: &Option<ColumnRef>| column.as_ref().map(resolve).transpose();
    let config = &mapping.columns;
    Ok(Columns {
        merchant_order_id: resolve(&config.merchant_order_id)?,
        channel_transaction_id: resolve(&config.channel_transaction_id)?,
        merchant_refund_id: optional(&config.merchant_refund_id)?,
        channel_refund_id: optional(&config.channel_refund_id)?,
        kind: optional(&config.kind)?,
        status: optional(&config.status)?,
        amount: resolve(&config.amount)?,
        requested_amount: optional(&config.requested_amount)?,
        fee: optional(&config.fee)?,
        currency: optional(&config.currency)?,
        occurred_at: config
            .occurred_at
            .iter()
            .map(resolve)
            .collect::<Result<_, _>>()?,
        business_date: optional(&config.business_date)?,
    })
}

impl Columns {
    fn max_index(&self) -> usize {
        let optional = [
            self.merchant_refund_id,
            self.channel_refund_id,
            self.kind,
            self.status,
            self.requested_amount,
            self.fee,
            self.currency,
            self.business_date,
        ];
        let required = [
            self.merchant_order_id,
            self.channel_transaction_id,
            self.amount,
        ];
        optional
            .into_iter()
            .flatten()
            .chain(required)
            .chain(self.occurred_at.iter().copied())
            .max()
            .unwrap_or(0)
    }
}

fn required(text: String) -> Result<String, ErrorKind> {
    if text.is_empty() {
        Err(ErrorKind::EmptyField)
    } else {
        Ok(text)
    }
}

/// A date and time by `format`; a date-only format gives midnight.
fn parse_occurred_at(text: &str, format: &OwnedFormatItem) -> Result<PrimitiveDateTime, ErrorKind> {
    PrimitiveDateTime::parse(text, format)
        .or_else(|_| {
            Date::parse(text, format).map(|date| PrimitiveDateTime::new(date, Time::MIDNIGHT))
        })
        .map_err(|_| ErrorKind::InvalidDateTime {
            text: text.to_owned(),
        })
}

impl Schema {
    fn error(&self, line: u64, column: Option<usize>, kind: ErrorKind) -> StatementError {
        let field = column.map(|index| match &self.header {
            Some(header) => header.name(index),
            None => format!("column {}", index + 1),
        });
        StatementError::at(&self.file, line, field.as_deref(), kind)
    }

    /// A field decoded and trimmed of whitespace and `strip_characters`.
    fn text(&self, row: Row<'_>, line: u64, column: usize) -> Result<String, StatementError> {
        let bytes = row.get(column).unwrap_or_default();
        let text = self
            .mapping
            .encoding
            .decode(bytes)
            .map_err(|kind| self.error(line, Some(column), kind))?;
        let strip = &self.mapping.strip_characters;
        let trimmed = text.trim_matches(|character: char| {
            character.is_whitespace() || strip.contains(&character)
        });
        Ok(trimmed.to_owned())
    }

    fn is_trailer(&self, row: Row<'_>, line: u64) -> Result<bool, StatementError> {
        if self.mapping.trailer_prefixes.is_empty() {
            return Ok(false);
        }
        let first = self.text(row, line, 0)?;
        Ok(self
            .mapping
            .trailer_prefixes
            .iter()
            .any(|prefix| first.starts_with(prefix.as_str())))
    }

    fn parse_row(&self, row: Row<'_>, line: u64) -> Result<StatementRecord, StatementError> {
        let count_ok = match self.header {
            Some(_) => row.len() == self.field_count_min,
            None => row.len() >= self.field_count_min,
        };
        if !count_ok {
            let kind = ErrorKind::FieldCount {
                expected: self.field_count_min,
                found: row.len(),
            };
            return Err(self.error(line, None, kind));
        }
        row.check_encoding(self.mapping.encoding)
            .map_err(|(index, kind)| self.error(line, Some(index), kind))?;
        let columns = &self.columns;
        let text = |column: usize| self.text(row, line, column);
        let at = |column: usize| move |kind| self.error(line, Some(column), kind);
        let currency = match columns.currency {
            Some(column) => parse_currency(&text(column)?).map_err(at(column))?,
            None => self.mapping.currency,
        };
        let amount_text = text(columns.amount)?;
        let printed = parse_amount(&amount_text, currency, self.mapping.amount_unit)
            .map_err(at(columns.amount))?;
        let kind = self.kind(row, line, printed)?;
        let amount = self
            .magnitude_checked(printed, kind, &amount_text)
            .map_err(at(columns.amount))?;
        let requested_amount = match columns.requested_amount {
            Some(column) => {
                let requested_text = text(column)?;
                parse_amount(&requested_text, currency, self.mapping.amount_unit)
                    .and_then(|printed| self.magnitude_checked(printed, kind, &requested_text))
                    .map_err(at(column))?
            }
            None => amount,
        };
        let (status, channel_status) = self.status(row, line)?;
        let occurred_at = self.occurred_at(row, line)?;
        let (merchant_refund_id, channel_refund_id) = self.refund_ids(row, line, kind)?;
        Ok(StatementRecord {
            line,
            kind,
            merchant_order_id: required(text(columns.merchant_order_id)?)
                .map_err(at(columns.merchant_order_id))?,
            channel_transaction_id: required(text(columns.channel_transaction_id)?)
                .map_err(at(columns.channel_transaction_id))?,
            merchant_refund_id,
            channel_refund_id,
            amount,
            requested_amount,
            fee: self.fee(row, line, currency)?,
            status,
            channel_status,
            occurred_at,
            business_date: self.business_date(row, line, occurred_at)?,
        })
    }

    /// From the kind column through `[kinds]`, or else by sign (negative is
    /// a refund; validation made sure the mapping says so).
    fn kind(&self, row: Row<'_>, line: u64, printed: Money) -> Result<RecordKind, StatementError> {
        let Some(column) = self.columns.kind else {
            return Ok(match printed.is_negative() {
                true => RecordKind::Refund,
                false => RecordKind::Payment,
            });
        };
        let text = self.text(row, line, column)?;
        match self.mapping.kinds.get(&text) {
            Some(kind) => Ok(*kind),
            None => Err(self.error(line, Some(column), ErrorKind::UnknownValue { text })),
        }
    }

    /// The magnitude, after checking the sign fits the kind.
    fn magnitude_checked(
        &self,
        printed: Money,
        kind: RecordKind,
        text: &str,
    ) -> Result<Money, ErrorKind> {
        let expected_negative =
            kind == RecordKind::Refund && self.mapping.refund_sign == RefundSign::Negative;
        let wrong_sign = match expected_negative {
            true => printed.amount_minor() > 0,
            false => printed.is_negative(),
        };
        if wrong_sign {
            return Err(ErrorKind::InvalidAmount {
                text: text.to_owned(),
                reason: format!(
                    "sign does not fit a {kind:?} (refund_sign = {:?})",
                    self.mapping.refund_sign
                ),
            });
        }
        magnitude(printed)
    }

    fn status(
        &self,
        row: Row<'_>,
        line: u64,
    ) -> Result<(RecordStatus, Option<String>), StatementError> {
        let Some(column) = self.columns.status else {
            // Validation requires default_status when there is no column.
            let status = self.mapping.default_status.ok_or_else(|| {
                let reason = "no status column and no default_status".to_owned();
                self.error(line, None, ErrorKind::InvalidMapping { reason })
            })?;
            return Ok((status, None));
        };
        let text = self.text(row, line, column)?;
        match self.mapping.statuses.get(&text) {
            Some(status) => Ok((*status, Some(text))),
            None => Err(self.error(line, Some(column), ErrorKind::UnknownValue { text })),
        }
    }

    fn occurred_at(&self, row: Row<'_>, line: u64) -> Result<PrimitiveDateTime, StatementError> {
        let mut joined = String::new();
        for (position, column) in self.columns.occurred_at.iter().enumerate() {
            if position > 0 {
                joined.push(' ');
            }
            joined.push_str(&self.text(row, line, *column)?);
        }
        let first = self.columns.occurred_at.first().copied();
        parse_occurred_at(&joined, &self.mapping.date_time_format)
            .map_err(|kind| self.error(line, first, kind))
    }

    fn refund_ids(
        &self,
        row: Row<'_>,
        line: u64,
        kind: RecordKind,
    ) -> Result<(Option<String>, Option<String>), StatementError> {
        if kind == RecordKind::Payment {
            return Ok((None, None));
        }
        let merchant_refund_id = match self.columns.merchant_refund_id {
            Some(column) => Some(
                required(self.text(row, line, column)?)
                    .map_err(|kind| self.error(line, Some(column), kind))?,
            ),
            None => None,
        };
        let channel_refund_id = match self.columns.channel_refund_id {
            Some(column) => Some(self.text(row, line, column)?).filter(|id| !id.is_empty()),
            None => None,
        };
        Ok((merchant_refund_id, channel_refund_id))
    }

    fn fee(&self, row: Row<'_>, line: u64, currency: Currency) -> Result<Money, StatementError> {
        let Some(column) = self.columns.fee else {
            return Ok(Money::zero(currency));
        };
        let text = self.text(row, line, column)?;
        parse_fee(
            &text,
            currency,
            self.mapping.amount_unit,
            self.mapping.fee_rounding,
        )
        .and_then(|printed| self.mapping.fee_sign.normalize(printed))
        .map_err(|kind| self.error(line, Some(column), kind))
    }

    fn business_date(
        &self,
        row: Row<'_>,
        line: u64,
        occurred_at: PrimitiveDateTime,
    ) -> Result<Date, StatementError> {
        let (Some(column), Some(format)) = (
            self.columns.business_date,
            &self.mapping.business_date_format,
        ) else {
            return Ok(self.business_date.unwrap_or(occurred_at.date()));
        };
        let text = self.text(row, line, column)?;
        Date::parse(&text, format)
            .map_err(|_| self.error(line, Some(column), ErrorKind::InvalidDateTime { text }))
    }
}
