//! Configuration errors for people: each names the file, the line and column where TOML
//! gives them, the service (or external) and the field, says what is wrong and what to do.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One problem found in a services file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when the problem has a place.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending key or value.
    pub column: Option<usize>,
    /// The service or external concerned (its short_name, else its name), if any.
    pub service: Option<String>,
    /// True when `service` names an `[[externals]]` entry.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// The key path inside the entry or file, e.g. `health_check.endpoint` or `russell.listen`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        let kind = if self.external { "external" } else { "service" };
        match (&self.service, &self.field) {
            (Some(service), Some(field)) => write!(f, "{kind} '{service}', field '{field}': ")?,
            (Some(service), None) => write!(f, "{kind} '{service}': ")?,
            (None, Some(field)) => write!(f, "field '{field}': ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, " — {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one pass over a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none (never the case for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// 1-based (line, column) of a byte offset in `text`; the column counts characters.
/// `line_starts` holds the byte offset of each line's start (see [`line_starts`]).
pub(crate) fn line_col(text: &str, line_starts: &[usize], offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line = line_starts.partition_point(|&start| start <= offset).max(1);
    let start = line_starts.get(line - 1).copied().unwrap_or(0);
    let column = text[start..offset].chars().count() + 1;
    (line, column)
}

/// Byte offset of the start of every line of `text`.
pub(crate) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Who a problem belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// The file as a whole, or a top-level table.
    File,
    /// A `[[services]]` entry, by its short_name (else name, else position).
    Service(String),
    /// An `[[externals]]` entry.
    External(String),
}

/// Collects errors during one pass over a file.
#[derive(Debug)]
pub(crate) struct Collector<'a> {
    pub text: &'a str,
    line_starts: Vec<usize>,
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl<'a> Collector<'a> {
    pub fn new(text: &'a str, file: PathBuf) -> Self {
        Self {
            text,
            line_starts: line_starts(text),
            file,
            errors: Vec::new(),
        }
    }

    /// 1-based (line, column) of a byte offset in the text.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.text, &self.line_starts, offset)
    }

    /// Records a problem at byte `span` (if known) of the text.
    pub fn push(
        &mut self,
        span: Option<std::ops::Range<usize>>,
        subject: &Subject,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.line_col(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        let (service, external) = match subject {
            Subject::File => (None, false),
            Subject::Service(s) => (Some(s.clone()), false),
            Subject::External(s) => (Some(s.clone()), true),
        };
        let field: String = field.into();
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            column,
            service,
            external,
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Like [`Self::push`] for a missing value, unless the same subject and field already
    /// have an error (a value of the wrong type is dropped, then found missing).
    pub fn push_missing(
        &mut self,
        span: Option<std::ops::Range<usize>>,
        subject: &Subject,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let field: String = field.into();
        let service = match subject {
            Subject::File => None,
            Subject::Service(s) | Subject::External(s) => Some(s.as_str()),
        };
        let seen = self
            .errors
            .iter()
            .any(|e| e.service.as_deref() == service && e.field.as_deref() == Some(field.as_str()));
        if !seen {
            self.push(span, subject, field, message, hint);
        }
    }

    /// The collected errors in file order, or `Ok` when there are none.
    pub fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        // Stable: errors without a place keep their order after the placed ones.
        self.errors
            .sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
        Err(ConfigErrors(self.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        let starts = line_starts(text);
        let at = |offset| line_col(text, &starts, offset);
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(6), (2, 1));
        assert_eq!(at(9), (2, 3));
        assert_eq!(at(8), (2, 2), "inside a character: rounds down");
        assert_eq!(at(1000), (3, 1));
    }

    #[test]
    fn display_names_place_subject_field_and_hint() {
        let err = ConfigError {
            file: PathBuf::from("configs/services.toml"),
            line: Some(12),
            column: Some(1),
            service: Some("kant".into()),
            external: false,
            field: Some("health_check.endpoint".into()),
            message: "an http check needs an endpoint".into(),
            hint: "add endpoint = \"/health\"".into(),
        };
        assert_eq!(
            err.to_string(),
            "configs/services.toml:12:1: service 'kant', field 'health_check.endpoint': \
             an http check needs an endpoint — add endpoint = \"/health\""
        );
    }
}
