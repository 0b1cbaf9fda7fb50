use alloc::string::{String, ToString};
use core::fmt;

/// What is wrong with a config, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key (`node[1].mac`), or the key as written
    /// in the file for syntax errors.
    pub key: String,
    /// 1-based line of the problem, when the parser knows it.
    pub line: Option<usize>,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { key: key.into(), line: None, problem: problem.into() }
    }

    pub(crate) fn from_toml(text: &str, err: &toml::de::Error) -> Self {
        let (line, key) = match err.span() {
            Some(span) => {
                let start = span.start.min(text.len());
                let line = text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1;
                let end = span.end.clamp(start, text.len());
                let key = text.get(start..end).unwrap_or("").trim();
                // A span over a whole table or value is not a key name.
                let key = if key.is_empty() || key.contains('\n') || key.len() > 64 {
                    String::new()
                } else {
                    key.to_string()
                };
                (Some(line), key)
            }
            None => (None, String::new()),
        };
        let problem = err.message().trim().to_string();
        Self { key, line, problem }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.problem)
    }
}

/// A [`ConfigError`] with the name of the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub error: ConfigError,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.error.key.is_empty() {
            write!(f, "`{}`: ", self.error.key)?;
        }
        f.write_str(&self.error.problem)
    }
}
