//! Diagnostics: the errors `load` reports, each with a 1-based position, one
//! sentence saying what is wrong and a hint saying how to fix it. Also the
//! "did you mean" helper every stage uses for names and keys.

use std::fmt;

/// A position in the file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

impl Pos {
    /// The start of the file: where errors about the file as a whole point.
    pub const START: Pos = Pos { line: 1, col: 1 };

    pub(crate) fn new(line: usize, col: usize) -> Pos {
        // The parser never reports line or column 0, but a diagnostic must
        // never point before the file whatever it is handed.
        Pos {
            line: line.max(1),
            col: col.max(1),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One error in a desired-state file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: error: {message}")]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Where in the document the error is, e.g.
    /// `securityGroups[1].ingress[0].sourceGroup`; `None` for errors about
    /// the YAML text itself.
    pub path: Option<String>,
    /// One sentence: what is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    pub(crate) fn new(
        pos: Pos,
        path: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            line: pos.line,
            col: pos.col,
            path: path.filter(|p| !p.is_empty()).map(str::to_owned),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The error's line and column as one [`Pos`].
    pub fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    /// `FILE:LINE:COL: error: MESSAGE` and an indented `hint:` line, with
    /// no final newline (print it with `eprintln!`).
    pub fn render(&self, file: &str) -> String {
        format!("{file}:{}", self.render_plain())
    }

    /// As [`Diagnostic::render`] without the file name.
    fn render_plain(&self) -> String {
        format!(
            "{}:{}: error: {}\n  hint: {}",
            self.line, self.col, self.message, self.hint
        )
    }
}

/// Errors reported for one file at most (plus a line counting the rest).
pub const MAX_REPORTED: usize = 100;

/// Every error found in a desired-state file, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.errors, None))]
pub struct Diagnostics {
    errors: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Sorts into document order (stable, so errors at one position keep the
    /// order they were found in).
    /// At most [`MAX_REPORTED`] are kept (the first in document order) plus
    /// one saying how many more there were: a generated file with the same
    /// mistake in every resource reads better, and costs bounded memory.
    pub(crate) fn new(mut errors: Vec<Diagnostic>) -> Diagnostics {
        errors.sort_by_key(Diagnostic::pos);
        if errors.len() > MAX_REPORTED {
            let more = errors.len() - MAX_REPORTED;
            errors.truncate(MAX_REPORTED);
            let last = errors[MAX_REPORTED - 1].pos();
            errors.push(Diagnostic::new(
                last,
                None,
                format!("and {more} more errors not shown"),
                "fix the errors above first; the rest are often the same mistake repeated",
            ));
        }
        Diagnostics { errors }
    }

    /// The errors in document order: at most 100, plus one counting the
    /// rest when there were more.
    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    /// How many errors [`Diagnostics::errors`] holds (the "and N more"
    /// entry counts as one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are no errors; never true of the `Diagnostics` that
    /// `load` returns.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the errors in document order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.errors.iter()
    }

    /// Every error as `FILE:LINE:COL: error: MESSAGE` plus an indented
    /// `hint:` line, in document order, with no final newline (print it
    /// with `eprintln!`).
    pub fn render(&self, file: &str) -> String {
        render_all(&self.errors, Some(file))
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

fn render_all(errors: &[Diagnostic], file: Option<&str>) -> String {
    let rendered: Vec<String> = errors
        .iter()
        .map(|error| match file {
            Some(file) => error.render(file),
            None => error.render_plain(),
        })
        .collect();
    rendered.join("\n")
}

/// The candidate nearest to `word`, if it is near enough to be a plausible
/// typo. Case, `_` and `-` are ignored first, so `vpc_id` finds `vpcId` and
/// `TCP` finds `tcp`.
pub(crate) fn nearest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // Typos are short; a huge value is not worth a quadratic comparison.
    const LONGEST: usize = 100;
    if word.len() > LONGEST {
        return None;
    }
    let word = fold(word);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate.len() > LONGEST {
            continue;
        }
        let folded = fold(candidate);
        let distance = levenshtein(&word, &folded);
        // A third of the length is the usual typo budget; short words get
        // at least one edit.
        let budget = (folded.chars().count() / 3).max(1);
        if distance <= budget && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `a, b, c` with backticks, without repeats, capped so a hint stays one
/// line.
pub(crate) fn list_names<'a, I>(names: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    const MAX: usize = 8;
    let mut names: Vec<&str> = names.into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    let mut out: Vec<String> = names.iter().take(MAX).map(|n| format!("`{n}`")).collect();
    if names.len() > MAX {
        out.push(format!("and {} more", names.len() - MAX));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_ignores_case_and_separators() {
        let keys = ["name", "ingress", "vpcId", "id"];
        assert_eq!(nearest("igress", keys), Some("ingress"));
        assert_eq!(nearest("vpc_id", keys), Some("vpcId"));
        assert_eq!(nearest("NAME", keys), Some("name"));
        assert_eq!(nearest("colour", keys), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
