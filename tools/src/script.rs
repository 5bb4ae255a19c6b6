//! Operation scripts: the input language of `asm/trace.c` and of
//! `brk-pools trace`/`compare`.
//!
//! One operation a line:
//!
//! ```text
//! # a comment runs from `#` to the end of the line; blank lines are skipped
//! a POOL SIZE   allocate(POOL, SIZE); the result becomes handle h0, h1, …
//! d H           deallocate(handle H)   (also written `d hH`)
//! p POOL        deallocate_pool(POOL)
//! ```
//!
//! POOL and SIZE are C `int`s in decimal (an optional `-`), passed to the
//! allocator zero-extended, as gcc's callers pass them.
//!
//! ```
//! use brk_pools_tools::script::{Op, parse_strict};
//!
//! let ops = parse_strict("a 1 400 # h0\n# a comment\nd h0\n").unwrap();
//! assert_eq!(ops[0].op, Op::Allocate { pool: 1, size: 400 });
//! assert_eq!(ops[1].op, Op::Deallocate { handle: 0 });
//! assert_eq!(ops[1].line, 3);
//!
//! let error = parse_strict("a 1\n").unwrap_err();
//! assert_eq!(error.to_string(), "line 1: expected `a POOL SIZE`, `d H` or `p POOL`: a 1");
//! ```

use core::fmt;

/// One operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `a POOL SIZE`
    Allocate {
        /// The pool, as the C `int` written.
        pool: i32,
        /// The size, as the C `int` written.
        size: i32,
    },
    /// `d H`: deallocate the pointer that the `H`-th allocate returned.
    Deallocate {
        /// The handle number (saturating at `u64::MAX`).
        handle: u64,
    },
    /// `p POOL`
    DeallocatePool {
        /// The pool, as the C `int` written.
        pool: i32,
    },
}

/// An operation and the 1-based line it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the script.
    pub line: usize,
    /// The operation.
    pub op: Op,
}

/// A line that is not an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// Not one of the three forms.
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The line, trailing spaces removed.
        text: String,
    },
    /// A number that does not fit a C `int`.
    OutOfRange {
        /// 1-based line number.
        line: usize,
        /// The number as written.
        number: String,
    },
    /// `d H` before the `H`-th allocate.
    UnknownHandle {
        /// 1-based line number.
        line: usize,
        /// The handle number as written, without `h` and leading zeros.
        handle: String,
    },
}

impl ScriptError {
    /// The 1-based line the error is on.
    pub fn line(&self) -> usize {
        match self {
            ScriptError::Malformed { line, .. }
            | ScriptError::OutOfRange { line, .. }
            | ScriptError::UnknownHandle { line, .. } => *line,
        }
    }
}

impl fmt::Display for ScriptError {
    /// The text `asm/trace.c` prints after `!! `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Malformed { line, text } => write!(
                f,
                "line {line}: expected `a POOL SIZE`, `d H` or `p POOL`: {text}"
            ),
            ScriptError::OutOfRange { line, number } => {
                write!(f, "line {line}: number out of range for a C int: {number}")
            }
            ScriptError::UnknownHandle { line, handle } => {
                write!(f, "line {line}: unknown handle h{handle}")
            }
        }
    }
}

impl std::error::Error for ScriptError {}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r')
}

enum Number {
    Ok(i32),
    Bad,
    OutOfRange,
}

/// A decimal C `int` with an optional leading `-`.
fn parse_int(token: &str) -> Number {
    let (negative, digits) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Number::Bad;
    }
    let magnitude = digits.bytes().fold(0u64, |m, b| {
        if m <= 0x8000_0000 {
            m * 10 + u64::from(b - b'0')
        } else {
            m
        }
    });
    let value = if negative {
        -(magnitude as i64)
    } else {
        magnitude as i64
    };
    i32::try_from(value).map_or(Number::OutOfRange, Number::Ok)
}

/// A handle: decimal digits, optionally after `h`; saturates.
fn parse_handle(token: &str) -> Option<u64> {
    let digits = token.strip_prefix('h').unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |v, b| {
        v.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .unwrap_or(u64::MAX)
    }))
}

/// Parses one line (`line` is its 1-based number), without its comment (from
/// `#` on). `Ok(None)` for blank and comment lines. Handles are not checked
/// here (see [`parse_strict`]).
pub fn parse_line(line: usize, text: &str) -> Result<Option<Op>, ScriptError> {
    // A comment runs from `#` to the end of the line.
    let text = text.split('#').next().unwrap_or_default();
    let text = text.trim_end_matches(is_space);
    let body = text.trim_start_matches(is_space);
    if body.is_empty() {
        return Ok(None);
    }
    let malformed = || ScriptError::Malformed {
        line,
        text: text.to_string(),
    };
    let tokens: Vec<&str> = body.split(is_space).filter(|t| !t.is_empty()).collect();
    let number = |token: &str| match parse_int(token) {
        Number::Ok(value) => Ok(value),
        Number::Bad => Err(malformed()),
        Number::OutOfRange => Err(ScriptError::OutOfRange {
            line,
            number: token.to_string(),
        }),
    };
    match tokens.as_slice() {
        ["a", pool, size] => {
            // Both numbers must be well formed before a range error is reported.
            let pool_number = parse_int(pool);
            let size_number = parse_int(size);
            if matches!(pool_number, Number::Bad) || matches!(size_number, Number::Bad) {
                return Err(malformed());
            }
            Ok(Some(Op::Allocate {
                pool: number(pool)?,
                size: number(size)?,
            }))
        }
        ["d", handle] => parse_handle(handle)
            .map(|handle| Some(Op::Deallocate { handle }))
            .ok_or_else(malformed),
        ["p", pool] => Ok(Some(Op::DeallocatePool {
            pool: number(pool)?,
        })),
        _ => Err(malformed()),
    }
}

/// Every line of a script, in order: operations and errors, as `trace.c`
/// meets them (blank and comment lines left out). Unknown handles are
/// reported as errors, knowing which `a` lines came before.
pub fn parse(script: &str) -> Vec<Result<Line, ScriptError>> {
    let mut handles: u64 = 0;
    let mut out = Vec::new();
    for (index, text) in script.split('\n').enumerate() {
        let line = index + 1;
        match parse_line(line, text) {
            Ok(None) => {}
            Ok(Some(op)) => {
                match op {
                    Op::Allocate { .. } => handles += 1,
                    Op::Deallocate { handle } if handle >= handles => {
                        let code = text.split('#').next().unwrap_or_default();
                        let written = code.split(is_space).rfind(|t| !t.is_empty());
                        let digits = written.unwrap_or("").trim_start_matches('h');
                        let trimmed = digits.trim_start_matches('0');
                        out.push(Err(ScriptError::UnknownHandle {
                            line,
                            handle: if trimmed.is_empty() { "0" } else { trimmed }.to_string(),
                        }));
                        continue;
                    }
                    _ => {}
                }
                out.push(Ok(Line { line, op }));
            }
            Err(error) => out.push(Err(error)),
        }
    }
    out
}

/// The operations of a script, or the first line that is not one.
pub fn parse_strict(script: &str) -> Result<Vec<Line>, ScriptError> {
    parse(script).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_c_int_range() {
        assert_eq!(
            parse_line(1, "a -2147483648 2147483647"),
            Ok(Some(Op::Allocate {
                pool: i32::MIN,
                size: i32::MAX
            }))
        );
        assert_eq!(
            parse_line(4, "p 2147483648").unwrap_err().to_string(),
            "line 4: number out of range for a C int: 2147483648"
        );
        assert_eq!(
            parse_line(2, "a 1 x").unwrap_err().to_string(),
            "line 2: expected `a POOL SIZE`, `d H` or `p POOL`: a 1 x"
        );
        assert_eq!(parse_line(3, "  # note"), Ok(None));
        assert_eq!(
            parse_line(3, "a 1 16 # note"),
            Ok(Some(Op::Allocate { pool: 1, size: 16 }))
        );
        assert_eq!(
            parse_line(5, " x 1\t# note").unwrap_err().to_string(),
            "line 5: expected `a POOL SIZE`, `d H` or `p POOL`:  x 1"
        );
        assert_eq!(parse_line(3, "\t\r"), Ok(None));
    }

    #[test]
    fn unknown_handles_are_errors_with_their_line() {
        let lines = parse("a 1 2\nd h007 # h7 0\nd 0\n");
        assert_eq!(
            lines[0],
            Ok(Line {
                line: 1,
                op: Op::Allocate { pool: 1, size: 2 }
            })
        );
        assert_eq!(
            lines[1].clone().unwrap_err().to_string(),
            "line 2: unknown handle h7"
        );
        assert_eq!(
            lines[2],
            Ok(Line {
                line: 3,
                op: Op::Deallocate { handle: 0 }
            })
        );
    }

    #[test]
    fn malformed_lines_keep_their_leading_spaces() {
        assert_eq!(
            parse_line(9, "  x 1 2  ").unwrap_err().to_string(),
            "line 9: expected `a POOL SIZE`, `d H` or `p POOL`:   x 1 2"
        );
        assert!(parse_line(1, "a +1 2").is_err());
        assert!(parse_line(1, "d -1").is_err());
        assert!(parse_line(1, "a 1 2 3").is_err());
    }
}
