//! DM's expression filter: a SQL boolean expression evaluated on row values; a row change for
//! which it is true is left out.
//!
//! ```text
//! expression-filter:
//!   even:  { schema: shop, table: items, insert-value-expr: "qty % 2 = 0" }
//!   jumps: { schema: shop, table: items, update-old-value-expr: "price < 100", update-new-value-expr: "price >= 1000" }
//! ```
//!
//! An expression is parsed once with sqlparser (MySQL dialect) and compiled into a small tree;
//! anything it cannot evaluate is refused when the task is read, naming the rule and the part.
//! Supported: column names; numbers, strings, `b'0101'`, `0x1F`, `NULL`, `TRUE`/`FALSE`;
//! `+ - * / % DIV MOD`; `= <> != < <= > >= <=>`; `AND OR XOR NOT`; `IS [NOT] NULL|TRUE|FALSE`;
//! `[NOT] IN (...)`, `[NOT] BETWEEN`, `[NOT] LIKE`; JSON `->` and `->>` with `$.key`, `$[n]`
//! paths; and the functions `NOW()`/`CURRENT_TIMESTAMP`/`SYSDATE()`/`UTC_TIMESTAMP()`,
//! `CURDATE()`/`CURRENT_DATE`/`UTC_DATE()`, `LENGTH`, `CHAR_LENGTH`, `LOWER`, `UPPER`, `ABS`,
//! `CONCAT`, `COALESCE`, `IFNULL`, `JSON_EXTRACT`, `JSON_UNQUOTE`.
//!
//! Semantics are MySQL's where it matters for a filter: three-valued logic (a comparison with
//! NULL is unknown, and only a true result filters); numbers compare by value (as doubles);
//! strings by bytes (`_bin`); a string against a number by its leading number; ENUM and SET by
//! member name against strings and by index or bits against numbers; DATE, DATETIME and
//! TIMESTAMP against a date-time string by value (a literal may carry an offset such as
//! `+08:00`); TIME against a time string by value. TIMESTAMP values and `NOW()` are in UTC.
//!
//! A rule whose columns a table no longer has (after a DROP COLUMN) does not apply to that
//! table until they are back, as in DM; the syncer reports it in its status warnings.

use std::cmp::Ordering;

use dm_core::{ColumnType, Row, TableSchema, Value};
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget, UnaryOperator,
    Value as SqlValue,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::filter::RuleError;

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Number(f64),
    Text(String),
    /// ENUM and SET: the member text against strings, the index or bits against numbers.
    Member(f64, String),
    /// DATE, DATETIME, TIMESTAMP: `YYYYMMDDhhmmss * 10^6 + microseconds`, and the text form.
    Temporal(u128, String),
    /// TIME: signed microseconds, and the text form.
    Duration(i64, String),
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn pack(date_time: &dm_core::DateTime) -> u128 {
    let date = &date_time.date;
    let whole = ((u128::from(date.year) * 100 + u128::from(date.month)) * 100
        + u128::from(date.day))
        * 1_000_000
        + (u128::from(date_time.hour) * 100 + u128::from(date_time.minute)) * 100
        + u128::from(date_time.second);
    whole * 1_000_000 + u128::from(date_time.microsecond)
}

/// Up to six fraction digits as microseconds.
fn microseconds(fraction: &str) -> Option<u32> {
    if fraction.is_empty() {
        return Some(0);
    }
    if !fraction.chars().all(|character| character.is_ascii_digit()) {
        return None;
    }
    let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
    digits.parse().ok()
}

/// `YYYY-MM-DD[ hh:mm:ss[.ffffff]][+hh:mm|Z]` (any separators) as a packed temporal; an offset
/// converts the value to UTC.
fn parse_temporal(text: &str) -> Option<u128> {
    let text = text.trim();
    let (text, offset_minutes) = split_offset(text);
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let parts: Vec<i64> = whole
        .split(|character: char| !character.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [year, month, day, hour, minute, second] = match parts.as_slice() {
        [year, month, day] => [*year, *month, *day, 0, 0, 0],
        [year, month, day, hour, minute, second] => [*year, *month, *day, *hour, *minute, *second],
        _ => return None,
    };
    if year > 9999 || month > 12 || day > 31 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let microsecond = microseconds(fraction)?;
    let date_time = if offset_minutes == 0 {
        dm_core::DateTime {
            date: dm_core::Date {
                year: year as u16,
                month: month as u8,
                day: day as u8,
            },
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            microsecond,
        }
    } else {
        let seconds =
            days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
                - offset_minutes * 60;
        dm_core::Timestamp {
            seconds: u64::try_from(seconds).ok()?,
            microsecond,
        }
        .to_utc()
    };
    Some(pack(&date_time))
}

/// Splits a trailing `+hh:mm`, `-hh:mm` or `Z` off a date-time literal.
fn split_offset(text: &str) -> (&str, i64) {
    if let Some(rest) = text.strip_suffix('Z') {
        return (rest, 0);
    }
    let Some(split) = text.len().checked_sub(6) else {
        return (text, 0);
    };
    let (Some(rest), Some(offset)) = (text.get(..split), text.get(split..)) else {
        return (text, 0);
    };
    let sign = match offset.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return (text, 0),
    };
    let hours = offset.get(1..3).and_then(|hours| hours.parse::<i64>().ok());
    let minutes = offset
        .get(4..)
        .and_then(|minutes| minutes.parse::<i64>().ok());
    match (hours, minutes, offset.as_bytes().get(3)) {
        (Some(hours), Some(minutes), Some(b':')) if !rest.is_empty() => {
            (rest, sign * (hours * 60 + minutes))
        }
        _ => (text, 0),
    }
}

/// `[-]h:mm:ss[.ffffff]` as signed microseconds.
fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let parts: Vec<i64> = whole
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let seconds = match parts.as_slice() {
        [hours, minutes, seconds] => hours * 3_600 + minutes * 60 + seconds,
        [hours, minutes] => hours * 3_600 + minutes * 60,
        _ => return None,
    };
    let total = seconds * 1_000_000 + i64::from(microseconds(fraction)?);
    Some(if negative { -total } else { total })
}

impl Scalar {
    fn from_value(value: &Value, column_type: Option<&ColumnType>) -> Scalar {
        match value {
            Value::Null => Scalar::Null,
            Value::Int(number) => Scalar::Number(*number as f64),
            Value::UInt(number) => Scalar::Number(*number as f64),
            Value::Float(number) => Scalar::Number(f64::from(*number)),
            Value::Double(number) => Scalar::Number(*number),
            Value::Decimal(decimal) => decimal
                .as_str()
                .parse()
                .map_or(Scalar::Null, Scalar::Number),
            Value::Year(year) => Scalar::Number(f64::from(*year)),
            Value::Bit(bits) => Scalar::Number(*bits as f64),
            Value::Enum(index) => {
                let name = match column_type {
                    Some(ColumnType::Enum { members }) => usize::from(*index)
                        .checked_sub(1)
                        .and_then(|position| members.get(position))
                        .cloned()
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                Scalar::Member(f64::from(*index), name)
            }
            Value::Set(bits) => {
                let names = match column_type {
                    Some(ColumnType::Set { members }) => members
                        .iter()
                        .enumerate()
                        .filter(|(position, _)| *position < 64 && bits & (1 << position) != 0)
                        .map(|(_, member)| member.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                };
                Scalar::Member(*bits as f64, names)
            }
            Value::Text(text) | Value::Json(text) => Scalar::Text(text.clone()),
            Value::Bytes(bytes) | Value::Geometry(bytes) => {
                Scalar::Text(String::from_utf8_lossy(bytes).into_owned())
            }
            Value::Date(date) => {
                let date_time = dm_core::DateTime {
                    date: *date,
                    hour: 0,
                    minute: 0,
                    second: 0,
                    microsecond: 0,
                };
                Scalar::Temporal(pack(&date_time), date.to_string())
            }
            Value::DateTime(date_time) => Scalar::Temporal(pack(date_time), date_time.to_string()),
            Value::Timestamp(timestamp) => {
                let utc = timestamp.to_utc();
                Scalar::Temporal(pack(&utc), utc.to_string())
            }
            Value::Time(time) => {
                let magnitude = ((i64::from(time.hours) * 60 + i64::from(time.minutes)) * 60
                    + i64::from(time.seconds))
                    * 1_000_000
                    + i64::from(time.microsecond);
                let signed = if time.negative { -magnitude } else { magnitude };
                Scalar::Duration(signed, time.to_string())
            }
            Value::Uuid(bytes) | Value::Inet6(bytes) => {
                Scalar::Text(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
            }
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Scalar::Number(number) | Scalar::Member(number, _) => Some(*number),
            Scalar::Temporal(packed, _) => Some(*packed as f64 / 1e6),
            Scalar::Duration(microseconds, _) => {
                // TIME in a numeric context is hhmmss.ffffff.
                let magnitude = microseconds.unsigned_abs();
                let seconds = magnitude / 1_000_000;
                let hhmmss =
                    (seconds / 3_600) * 10_000 + (seconds % 3_600 / 60) * 100 + seconds % 60;
                let value = hhmmss as f64 + (magnitude % 1_000_000) as f64 / 1e6;
                Some(if *microseconds < 0 { -value } else { value })
            }
            Scalar::Text(text) => Some(leading_number(text)),
            Scalar::Null => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Scalar::Null => None,
            Scalar::Text(text)
            | Scalar::Member(_, text)
            | Scalar::Temporal(_, text)
            | Scalar::Duration(_, text) => Some(text.clone()),
            Scalar::Number(number) => Some(format_number(*number)),
        }
    }

    fn truth(&self) -> Option<bool> {
        self.number().map(|number| number != 0.0)
    }

    fn from_truth(truth: Option<bool>) -> Scalar {
        truth.map_or(Scalar::Null, |truth| {
            Scalar::Number(f64::from(u8::from(truth)))
        })
    }

    fn compare(&self, other: &Scalar) -> Option<Ordering> {
        match (self, other) {
            (Scalar::Null, _) | (_, Scalar::Null) => None,
            (Scalar::Text(left) | Scalar::Member(_, left), Scalar::Text(right))
            | (Scalar::Text(left), Scalar::Member(_, right))
            | (Scalar::Member(_, left), Scalar::Member(_, right)) => Some(left.cmp(right)),
            (Scalar::Temporal(left, _), Scalar::Temporal(right, _)) => Some(left.cmp(right)),
            (Scalar::Temporal(left, text), Scalar::Text(right)) => match parse_temporal(right) {
                Some(right) => Some(left.cmp(&right)),
                None => Some(text.as_str().cmp(right.as_str())),
            },
            (Scalar::Duration(left, _), Scalar::Duration(right, _)) => Some(left.cmp(right)),
            (Scalar::Duration(left, text), Scalar::Text(right)) => match parse_duration(right) {
                Some(right) => Some(left.cmp(&right)),
                None => Some(text.as_str().cmp(right.as_str())),
            },
            (Scalar::Text(_), Scalar::Temporal(..) | Scalar::Duration(..)) => {
                other.compare(self).map(Ordering::reverse)
            }
            (left, right) => left.number()?.partial_cmp(&right.number()?),
        }
    }
}

/// A number as MySQL prints it in a string context (integers without a fraction).
fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

/// MySQL's string-to-number rule: the longest numeric prefix, 0 when there is none.
fn leading_number(text: &str) -> f64 {
    let text = text.trim_start();
    let mut end = 0;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut seen_exponent = false;
    for (index, character) in text.char_indices() {
        let accepted = match character {
            '0'..='9' => {
                seen_digit = true;
                true
            }
            '+' | '-' => index == 0 || text[..index].ends_with(['e', 'E']),
            '.' if !seen_point && !seen_exponent => {
                seen_point = true;
                true
            }
            'e' | 'E' if seen_digit && !seen_exponent => {
                seen_exponent = true;
                true
            }
            _ => false,
        };
        if !accepted {
            break;
        }
        end = index + character.len_utf8();
    }
    let mut prefix = &text[..end];
    while !prefix.is_empty() && prefix.parse::<f64>().is_err() {
        prefix = &prefix[..prefix.len() - 1];
    }
    prefix.parse().unwrap_or(0.0)
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// `$`, `$.key`, `$."quoted key"`, `$[0]`, chained.
fn parse_json_path(path: &str) -> Option<Vec<PathStep>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                steps.push(PathStep::Key(quoted[..end].to_owned()));
                rest = &quoted[end + 1..];
            } else {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return None;
                }
                steps.push(PathStep::Key(after[..end].to_owned()));
                rest = &after[end..];
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(PathStep::Index(after[..end].trim().parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn json_extract(document: &str, path: &[PathStep], unquote: bool) -> Scalar {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(document) else {
        return Scalar::Null;
    };
    for step in path {
        let next = match (step, value) {
            (PathStep::Key(key), serde_json::Value::Object(mut object)) => object.remove(key),
            (PathStep::Index(index), serde_json::Value::Array(mut array)) => {
                (*index < array.len()).then(|| array.swap_remove(*index))
            }
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return Scalar::Null,
        }
    }
    match value {
        serde_json::Value::Number(number) => number.as_f64().map_or(Scalar::Null, Scalar::Number),
        serde_json::Value::String(text) if unquote => Scalar::Text(text),
        // A JSON string compares with an SQL string by its content.
        serde_json::Value::String(text) => Scalar::Text(text),
        serde_json::Value::Bool(truth) => Scalar::Text(truth.to_string()),
        other => Scalar::Text(other.to_string()),
    }
}

/// Functions an expression may call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Function {
    Now,
    CurrentDate,
    Length,
    CharLength,
    Lower,
    Upper,
    Absolute,
    Concat,
    Coalesce,
    JsonUnquote,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    Plus,
    Minus,
    Multiply,
    Divide,
    IntegerDivide,
    Modulo,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    NullSafeEqual,
    And,
    Or,
    Xor,
}

/// The compiled expression.
#[derive(Debug, Clone)]
enum Node {
    Column(String),
    Literal(Scalar),
    Not(Box<Node>),
    Negate(Box<Node>),
    Binary(Operator, Box<Node>, Box<Node>),
    IsNull(Box<Node>),
    /// `IS TRUE` (true) or `IS FALSE` (false).
    Is(Box<Node>, bool),
    In(Box<Node>, Vec<Node>),
    Between(Box<Node>, Box<Node>, Box<Node>),
    Like(Box<Node>, Box<Node>),
    JsonExtract(Box<Node>, Vec<PathStep>, bool),
    Call(Function, Vec<Node>),
}

fn not(node: Node, negated: bool) -> Node {
    if negated {
        Node::Not(Box::new(node))
    } else {
        node
    }
}

/// A parsed, checked expression.
#[derive(Debug, Clone)]
pub struct RowExpression {
    text: String,
    root: Node,
}

struct Compiler<'text> {
    text: &'text str,
}

impl Compiler<'_> {
    fn unsupported(&self, what: impl std::fmt::Display) -> String {
        format!(
            "`{}`: {what} is not supported in an expression filter",
            self.text
        )
    }

    fn boxed(&self, expression: &Expr) -> Result<Box<Node>, String> {
        self.compile(expression).map(Box::new)
    }

    fn literal(&self, value: &SqlValue) -> Result<Scalar, String> {
        Ok(match value {
            SqlValue::Number(number, _) => Scalar::Number(
                number
                    .parse()
                    .map_err(|_| self.unsupported(format!("the number {number}")))?,
            ),
            SqlValue::SingleQuotedString(text) | SqlValue::DoubleQuotedString(text) => {
                Scalar::Text(text.clone())
            }
            SqlValue::Boolean(truth) => Scalar::from_truth(Some(*truth)),
            SqlValue::Null => Scalar::Null,
            SqlValue::SingleQuotedByteStringLiteral(bits) => {
                let number = u64::from_str_radix(bits, 2)
                    .map_err(|_| self.unsupported(format!("the bit literal b'{bits}'")))?;
                Scalar::Number(number as f64)
            }
            SqlValue::HexStringLiteral(hex) => {
                let number = u64::from_str_radix(hex, 16)
                    .map_err(|_| self.unsupported(format!("the hex literal 0x{hex}")))?;
                Scalar::Number(number as f64)
            }
            other => return Err(self.unsupported(format!("the literal {other}"))),
        })
    }

    fn compile(&self, expression: &Expr) -> Result<Node, String> {
        Ok(match expression {
            Expr::Identifier(ident) => Node::Column(ident.value.clone()),
            Expr::CompoundIdentifier(parts) => match parts.last() {
                Some(last) => Node::Column(last.value.clone()),
                None => return Err(self.unsupported("an empty name")),
            },
            Expr::Value(value) => Node::Literal(self.literal(&value.value)?),
            Expr::Nested(inner) => self.compile(inner)?,
            Expr::IsNull(inner) => Node::IsNull(self.boxed(inner)?),
            Expr::IsNotNull(inner) => not(Node::IsNull(self.boxed(inner)?), true),
            Expr::IsTrue(inner) => Node::Is(self.boxed(inner)?, true),
            Expr::IsFalse(inner) => Node::Is(self.boxed(inner)?, false),
            Expr::IsNotTrue(inner) => not(Node::Is(self.boxed(inner)?, true), true),
            Expr::IsNotFalse(inner) => not(Node::Is(self.boxed(inner)?, false), true),
            Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Not => Node::Not(self.boxed(expr)?),
                UnaryOperator::Minus => Node::Negate(self.boxed(expr)?),
                UnaryOperator::Plus => self.compile(expr)?,
                other => return Err(self.unsupported(format!("the operator {other}"))),
            },
            Expr::BinaryOp { left, op, right } => {
                if matches!(op, BinaryOperator::Arrow | BinaryOperator::LongArrow) {
                    let path = match right.as_ref() {
                        Expr::Value(value) => match &value.value {
                            SqlValue::SingleQuotedString(path)
                            | SqlValue::DoubleQuotedString(path) => parse_json_path(path),
                            _ => None,
                        },
                        _ => None,
                    }
                    .ok_or_else(|| self.unsupported(format!("the JSON path {right}")))?;
                    return Ok(Node::JsonExtract(
                        self.boxed(left)?,
                        path,
                        *op == BinaryOperator::LongArrow,
                    ));
                }
                let operator = match op {
                    BinaryOperator::Plus => Operator::Plus,
                    BinaryOperator::Minus => Operator::Minus,
                    BinaryOperator::Multiply => Operator::Multiply,
                    BinaryOperator::Divide => Operator::Divide,
                    BinaryOperator::MyIntegerDivide => Operator::IntegerDivide,
                    BinaryOperator::Modulo => Operator::Modulo,
                    BinaryOperator::Eq => Operator::Equal,
                    BinaryOperator::NotEq => Operator::NotEqual,
                    BinaryOperator::Lt => Operator::Less,
                    BinaryOperator::LtEq => Operator::LessOrEqual,
                    BinaryOperator::Gt => Operator::Greater,
                    BinaryOperator::GtEq => Operator::GreaterOrEqual,
                    BinaryOperator::Spaceship => Operator::NullSafeEqual,
                    BinaryOperator::And => Operator::And,
                    BinaryOperator::Or => Operator::Or,
                    BinaryOperator::Xor => Operator::Xor,
                    other => return Err(self.unsupported(format!("the operator {other}"))),
                };
                Node::Binary(operator, self.boxed(left)?, self.boxed(right)?)
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                negated,
                ..
            } => not(
                Node::In(
                    self.boxed(expr)?,
                    list.iter()
                        .map(|item| self.compile(item))
                        .collect::<Result<_, _>>()?,
                ),
                *negated,
            ),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => not(
                Node::Between(self.boxed(expr)?, self.boxed(low)?, self.boxed(high)?),
                *negated,
            ),
            Expr::Like {
                expr,
                pattern,
                negated,
                escape_char: None,
                any: false,
            } => not(
                Node::Like(self.boxed(expr)?, self.boxed(pattern)?),
                *negated,
            ),
            Expr::Function(function) => self.function(function)?,
            other => return Err(self.unsupported(format!("`{other}`"))),
        })
    }

    fn function(&self, function: &sqlparser::ast::Function) -> Result<Node, String> {
        let name = function.name.to_string().to_ascii_uppercase();
        let arguments: Vec<&Expr> = match &function.args {
            FunctionArguments::None => Vec::new(),
            FunctionArguments::List(list) if list.clauses.is_empty() => list
                .args
                .iter()
                .map(|argument| match argument {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(expression)) => Ok(expression),
                    other => Err(self.unsupported(format!("the argument {other}"))),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(self.unsupported(format!("`{function}`"))),
        };
        if function.over.is_some() || function.filter.is_some() {
            return Err(self.unsupported(format!("`{function}`")));
        }
        let (resolved, arity) = match name.as_str() {
            "NOW" | "CURRENT_TIMESTAMP" | "SYSDATE" | "UTC_TIMESTAMP" | "LOCALTIME"
            | "LOCALTIMESTAMP" => (Function::Now, 0..=1),
            "CURDATE" | "CURRENT_DATE" | "UTC_DATE" => (Function::CurrentDate, 0..=0),
            "LENGTH" | "OCTET_LENGTH" => (Function::Length, 1..=1),
            "CHAR_LENGTH" | "CHARACTER_LENGTH" => (Function::CharLength, 1..=1),
            "LOWER" | "LCASE" => (Function::Lower, 1..=1),
            "UPPER" | "UCASE" => (Function::Upper, 1..=1),
            "ABS" => (Function::Absolute, 1..=1),
            "CONCAT" => (Function::Concat, 1..=usize::MAX),
            "COALESCE" => (Function::Coalesce, 1..=usize::MAX),
            "IFNULL" => (Function::Coalesce, 2..=2),
            "JSON_UNQUOTE" => (Function::JsonUnquote, 1..=1),
            "JSON_EXTRACT" => {
                let [document, path] = arguments.as_slice() else {
                    return Err(self.unsupported("JSON_EXTRACT with other than two arguments"));
                };
                let path = match path {
                    Expr::Value(value) => match &value.value {
                        SqlValue::SingleQuotedString(path) | SqlValue::DoubleQuotedString(path) => {
                            parse_json_path(path)
                        }
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| self.unsupported(format!("the JSON path {path}")))?;
                return Ok(Node::JsonExtract(self.boxed(document)?, path, false));
            }
            _ => return Err(self.unsupported(format!("the function {name}()"))),
        };
        if !arity.contains(&arguments.len()) {
            return Err(format!(
                "`{}`: {name}() does not take {} arguments",
                self.text,
                arguments.len()
            ));
        }
        // NOW(fsp): the precision changes nothing here.
        let arguments = if resolved == Function::Now {
            Vec::new()
        } else {
            arguments
                .into_iter()
                .map(|argument| self.compile(argument))
                .collect::<Result<_, _>>()?
        };
        Ok(Node::Call(resolved, arguments))
    }
}

fn visit_columns<'node>(node: &'node Node, visit: &mut dyn FnMut(&'node str)) {
    match node {
        Node::Column(name) => visit(name),
        Node::Literal(_) => {}
        Node::Not(inner)
        | Node::Negate(inner)
        | Node::IsNull(inner)
        | Node::Is(inner, _)
        | Node::JsonExtract(inner, _, _) => visit_columns(inner, visit),
        Node::Binary(_, left, right) | Node::Like(left, right) => {
            visit_columns(left, visit);
            visit_columns(right, visit);
        }
        Node::In(value, list) => {
            visit_columns(value, visit);
            for item in list {
                visit_columns(item, visit);
            }
        }
        Node::Between(value, low, high) => {
            visit_columns(value, visit);
            visit_columns(low, visit);
            visit_columns(high, visit);
        }
        Node::Call(_, arguments) => {
            for argument in arguments {
                visit_columns(argument, visit);
            }
        }
    }
}

impl RowExpression {
    /// Parses `text` (`rule` names the filter in errors).
    pub fn parse(text: &str, rule: &str) -> Result<Self, RuleError> {
        let error = |reason: String| RuleError {
            rule: rule.to_owned(),
            reason,
        };
        let dialect = MySqlDialect {};
        let expression = Parser::new(&dialect)
            .try_with_sql(text)
            .and_then(|mut parser| parser.parse_expr())
            .map_err(|failure| error(format!("`{text}` is not an expression: {failure}")))?;
        let root = Compiler { text }.compile(&expression).map_err(error)?;
        Ok(RowExpression {
            text: text.to_owned(),
            root,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first column the expression reads that `schema` does not have.
    pub fn missing_column(&self, schema: &TableSchema) -> Option<String> {
        let mut missing = None;
        visit_columns(&self.root, &mut |name| {
            if missing.is_none() && schema.column_index(name).is_none() {
                missing = Some(name.to_owned());
            }
        });
        missing
    }

    /// Whether the expression is true for `row` (laid out as `schema`).
    pub fn matches(&self, schema: &TableSchema, row: &Row) -> bool {
        evaluate(&self.root, schema, row).truth() == Some(true)
    }
}

fn column(name: &str, schema: &TableSchema, row: &Row) -> Scalar {
    schema
        .column_index(name)
        .and_then(|index| {
            let column_type = schema
                .columns()
                .get(index)
                .map(|column| &column.column_type);
            row.get(index)
                .map(|value| Scalar::from_value(value, column_type))
        })
        .unwrap_or(Scalar::Null)
}

fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut at_text, mut at_pattern) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while at_text < text.len() {
        match pattern.get(at_pattern) {
            Some('%') => {
                backtrack = Some((at_pattern, at_text));
                at_pattern += 1;
            }
            Some('_') => {
                at_text += 1;
                at_pattern += 1;
            }
            Some('\\') if pattern.get(at_pattern + 1) == text.get(at_text) => {
                at_text += 1;
                at_pattern += 2;
            }
            Some(character) if Some(character) == text.get(at_text) => {
                at_text += 1;
                at_pattern += 1;
            }
            _ => match backtrack {
                Some((star, position)) => {
                    at_pattern = star + 1;
                    at_text = position + 1;
                    backtrack = Some((star, position + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(at_pattern..)
        .unwrap_or_default()
        .iter()
        .all(|character| *character == '%')
}

fn now() -> Scalar {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let utc = dm_core::Timestamp {
        seconds: elapsed.as_secs(),
        microsecond: elapsed.subsec_micros(),
    }
    .to_utc();
    Scalar::Temporal(pack(&utc), utc.to_string())
}

fn call(function: Function, arguments: &[Node], schema: &TableSchema, row: &Row) -> Scalar {
    let mut values = arguments
        .iter()
        .map(|argument| evaluate(argument, schema, row));
    let mut first = || values.next().unwrap_or(Scalar::Null);
    match function {
        Function::Now => now(),
        Function::CurrentDate => match now() {
            Scalar::Temporal(packed, text) => Scalar::Temporal(
                packed / 1_000_000_000_000 * 1_000_000_000_000,
                text.chars().take(10).collect(),
            ),
            other => other,
        },
        Function::Length => first()
            .text()
            .map_or(Scalar::Null, |text| Scalar::Number(text.len() as f64)),
        Function::CharLength => first().text().map_or(Scalar::Null, |text| {
            Scalar::Number(text.chars().count() as f64)
        }),
        Function::Lower => first()
            .text()
            .map_or(Scalar::Null, |text| Scalar::Text(text.to_lowercase())),
        Function::Upper => first()
            .text()
            .map_or(Scalar::Null, |text| Scalar::Text(text.to_uppercase())),
        Function::Absolute => first()
            .number()
            .map_or(Scalar::Null, |number| Scalar::Number(number.abs())),
        Function::JsonUnquote => match first() {
            Scalar::Text(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::String(inner)) => Scalar::Text(inner),
                _ => Scalar::Text(text),
            },
            other => other,
        },
        Function::Concat => {
            let mut joined = String::new();
            for value in values {
                match value.text() {
                    Some(text) => joined.push_str(&text),
                    None => return Scalar::Null,
                }
            }
            Scalar::Text(joined)
        }
        Function::Coalesce => values
            .find(|value| *value != Scalar::Null)
            .unwrap_or(Scalar::Null),
    }
}

fn evaluate(node: &Node, schema: &TableSchema, row: &Row) -> Scalar {
    match node {
        Node::Column(name) => column(name, schema, row),
        Node::Literal(value) => value.clone(),
        Node::Not(inner) => {
            Scalar::from_truth(evaluate(inner, schema, row).truth().map(|truth| !truth))
        }
        Node::Negate(inner) => evaluate(inner, schema, row)
            .number()
            .map_or(Scalar::Null, |number| Scalar::Number(-number)),
        Node::IsNull(inner) => {
            Scalar::from_truth(Some(evaluate(inner, schema, row) == Scalar::Null))
        }
        Node::Is(inner, expected) => Scalar::from_truth(Some(
            evaluate(inner, schema, row).truth() == Some(*expected),
        )),
        Node::Binary(operator, left, right) => {
            let left = evaluate(left, schema, row);
            let right = evaluate(right, schema, row);
            binary(*operator, &left, &right)
        }
        Node::In(value, list) => {
            let value = evaluate(value, schema, row);
            if value == Scalar::Null {
                return Scalar::Null;
            }
            let mut unknown = false;
            for item in list {
                match value.compare(&evaluate(item, schema, row)) {
                    Some(Ordering::Equal) => return Scalar::from_truth(Some(true)),
                    None => unknown = true,
                    Some(_) => {}
                }
            }
            if unknown {
                Scalar::Null
            } else {
                Scalar::from_truth(Some(false))
            }
        }
        Node::Between(value, low, high) => {
            let value = evaluate(value, schema, row);
            let low = value.compare(&evaluate(low, schema, row));
            let high = value.compare(&evaluate(high, schema, row));
            Scalar::from_truth(match (low, high) {
                (Some(low), Some(high)) => Some(low.is_ge() && high.is_le()),
                (Some(Ordering::Less), None) | (None, Some(Ordering::Greater)) => Some(false),
                _ => None,
            })
        }
        Node::Like(text, pattern) => {
            match (
                evaluate(text, schema, row).text(),
                evaluate(pattern, schema, row).text(),
            ) {
                (Some(text), Some(pattern)) => Scalar::from_truth(Some(like(&text, &pattern))),
                _ => Scalar::Null,
            }
        }
        Node::JsonExtract(document, path, unquote) => {
            match evaluate(document, schema, row).text() {
                Some(document) => json_extract(&document, path, *unquote),
                None => Scalar::Null,
            }
        }
        Node::Call(function, arguments) => call(*function, arguments, schema, row),
    }
}

fn binary(operator: Operator, left: &Scalar, right: &Scalar) -> Scalar {
    let arithmetic = |apply: fn(f64, f64) -> Option<f64>| match (left.number(), right.number()) {
        (Some(a), Some(b)) => apply(a, b).map_or(Scalar::Null, Scalar::Number),
        _ => Scalar::Null,
    };
    let order = |test: fn(Ordering) -> bool| Scalar::from_truth(left.compare(right).map(test));
    match operator {
        Operator::Plus => arithmetic(|a, b| Some(a + b)),
        Operator::Minus => arithmetic(|a, b| Some(a - b)),
        Operator::Multiply => arithmetic(|a, b| Some(a * b)),
        Operator::Divide => arithmetic(|a, b| (b != 0.0).then(|| a / b)),
        Operator::IntegerDivide => arithmetic(|a, b| (b != 0.0).then(|| (a / b).trunc())),
        Operator::Modulo => arithmetic(|a, b| (b != 0.0).then(|| a % b)),
        Operator::Equal => order(Ordering::is_eq),
        Operator::NotEqual => order(Ordering::is_ne),
        Operator::Less => order(Ordering::is_lt),
        Operator::LessOrEqual => order(Ordering::is_le),
        Operator::Greater => order(Ordering::is_gt),
        Operator::GreaterOrEqual => order(Ordering::is_ge),
        Operator::NullSafeEqual => Scalar::from_truth(Some(match (left, right) {
            (Scalar::Null, Scalar::Null) => true,
            (Scalar::Null, _) | (_, Scalar::Null) => false,
            _ => left.compare(right) == Some(Ordering::Equal),
        })),
        Operator::And => Scalar::from_truth(match (left.truth(), right.truth()) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }),
        Operator::Or => Scalar::from_truth(match (left.truth(), right.truth()) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        }),
        Operator::Xor => Scalar::from_truth(match (left.truth(), right.truth()) {
            (Some(a), Some(b)) => Some(a != b),
            _ => None,
        }),
    }
}

/// One `expression-filter` entry.
#[derive(Debug, Clone)]
pub struct ExpressionFilter {
    /// The rule's name (`expression-filter.<name>`).
    pub rule: String,
    schema: String,
    table: String,
    case_sensitive: bool,
    insert: Option<RowExpression>,
    update_old: Option<RowExpression>,
    update_new: Option<RowExpression>,
    delete: Option<RowExpression>,
}

impl ExpressionFilter {
    /// Builds a filter from its expressions in the order insert, update-old, update-new, delete;
    /// exactly one kind (insert, update, delete) must be given, as DM requires.
    pub fn new(
        rule: &str,
        schema: &str,
        table: &str,
        [insert, update_old, update_new, delete]: [Option<&str>; 4],
        case_sensitive: bool,
    ) -> Result<Self, RuleError> {
        let given = |text: Option<&str>| text.is_some_and(|text| !text.trim().is_empty());
        let kinds = usize::from(given(insert))
            + usize::from(given(update_old) || given(update_new))
            + usize::from(given(delete));
        if kinds != 1 {
            return Err(RuleError {
                rule: rule.to_owned(),
                reason: "give exactly one of `insert-value-expr`, `update-old-value-expr`/`update-new-value-expr` and `delete-value-expr` (write one rule per kind)".into(),
            });
        }
        if schema.is_empty() || table.is_empty() {
            return Err(RuleError {
                rule: rule.to_owned(),
                reason: "`schema` and `table` name the upstream table the rule applies to".into(),
            });
        }
        let parse = |text: Option<&str>| {
            text.filter(|text| !text.trim().is_empty())
                .map(|text| RowExpression::parse(text, rule))
                .transpose()
        };
        let fold = |name: &str| {
            if case_sensitive {
                name.to_owned()
            } else {
                name.to_lowercase()
            }
        };
        Ok(ExpressionFilter {
            rule: rule.to_owned(),
            schema: fold(schema),
            table: fold(table),
            case_sensitive,
            insert: parse(insert)?,
            update_old: parse(update_old)?,
            update_new: parse(update_new)?,
            delete: parse(delete)?,
        })
    }

    /// Whether the rule is about `table` (an upstream name).
    pub fn applies_to(&self, table: &dm_core::TableRef) -> bool {
        if self.case_sensitive {
            table.schema == self.schema && table.table == self.table
        } else {
            table.schema.to_lowercase() == self.schema && table.table.to_lowercase() == self.table
        }
    }

    /// Whether this filter leaves out the change.
    pub fn drops(&self, change: &dm_core::RowChange, schema: &TableSchema) -> bool {
        use dm_core::RowChangeKind;
        match change.kind() {
            RowChangeKind::Insert { after } => self
                .insert
                .as_ref()
                .is_some_and(|expression| expression.matches(schema, after)),
            RowChangeKind::Update { before, after } => match (&self.update_old, &self.update_new) {
                (None, None) => false,
                (old, new) => {
                    old.as_ref()
                        .is_none_or(|expression| expression.matches(schema, before))
                        && new
                            .as_ref()
                            .is_none_or(|expression| expression.matches(schema, after))
                }
            },
            RowChangeKind::Delete { before } => self
                .delete
                .as_ref()
                .is_some_and(|expression| expression.matches(schema, before)),
        }
    }

    /// Why the rule cannot apply to a table laid out as `schema` (a column it reads is not
    /// there), or `None` when it can.
    pub fn unusable_with(&self, schema: &TableSchema) -> Option<String> {
        [&self.insert, &self.update_old, &self.update_new, &self.delete]
            .into_iter()
            .flatten()
            .find_map(|expression| {
                expression.missing_column(schema).map(|column| {
                    format!(
                        "{}: `{}` reads column `{column}`, which {} does not have: the rule does not apply until the column is back",
                        self.rule,
                        expression.text(),
                        schema.table()
                    )
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{ColumnDefinition, ColumnType, IntegerWidth, TableRef};

    fn schema() -> TableSchema {
        TableSchema::new(
            TableRef::new("s", "t"),
            vec![
                ColumnDefinition::new(
                    "qty",
                    ColumnType::Integer {
                        width: IntegerWidth::Int,
                        unsigned: false,
                    },
                    true,
                ),
                ColumnDefinition::new("name", ColumnType::VarChar { length: 20 }, true),
            ],
            Vec::new(),
        )
        .expect("schema")
    }

    fn row(qty: Option<i64>, name: &str) -> Row {
        Row(vec![
            qty.map_or(Value::Null, Value::Int),
            Value::Text(name.into()),
        ])
    }

    fn holds(text: &str, row: &Row) -> bool {
        RowExpression::parse(text, "test")
            .expect("expression")
            .matches(&schema(), row)
    }

    #[test]
    fn expressions_evaluate_with_sql_semantics() {
        let seven = row(Some(7), "tea cup");
        assert!(holds("qty % 2 = 1", &seven));
        assert!(holds("qty > 5 AND name LIKE 'tea%'", &seven));
        assert!(holds("qty IN (1, 7, 9)", &seven));
        assert!(!holds("qty NOT IN (1, 7)", &seven));
        assert!(holds("qty BETWEEN 7 AND 8", &seven));
        assert!(holds("NOT (qty < 3) OR name = 'x'", &seven));
        assert!(holds("name LIKE '_ea c%'", &seven));
        let unknown = row(None, "x");
        // NULL compares as unknown: neither the test nor its negation holds.
        assert!(!holds("qty > 1", &unknown));
        assert!(!holds("NOT (qty > 1)", &unknown));
        assert!(holds("qty IS NULL", &unknown));
        assert!(holds("qty <=> NULL", &unknown));
        assert!(holds("qty > 1 OR name = 'x'", &unknown));
        assert!(!holds("qty > 1 AND name = 'x'", &unknown));
    }

    #[test]
    fn enums_sets_and_dates_compare_as_mysql_compares_them() {
        use dm_core::{Date, DateTime, Timestamp};
        let schema = TableSchema::new(
            TableRef::new("s", "t"),
            vec![
                ColumnDefinition::new(
                    "status",
                    ColumnType::Enum {
                        members: vec!["new".into(), "sold".into()],
                    },
                    true,
                ),
                ColumnDefinition::new(
                    "tags",
                    ColumnType::Set {
                        members: vec!["a".into(), "b".into(), "c".into()],
                    },
                    true,
                ),
                ColumnDefinition::new("day", ColumnType::Date, true),
                ColumnDefinition::new(
                    "at",
                    ColumnType::DateTime {
                        fractional_digits: 0,
                    },
                    true,
                ),
                ColumnDefinition::new(
                    "stamp",
                    ColumnType::Timestamp {
                        fractional_digits: 0,
                    },
                    true,
                ),
                ColumnDefinition::new("note", ColumnType::VarChar { length: 20 }, true),
            ],
            Vec::new(),
        )
        .expect("schema");
        let date = Date {
            year: 2024,
            month: 2,
            day: 1,
        };
        let row = Row(vec![
            Value::Enum(2),
            Value::Set(0b101),
            Value::Date(date),
            Value::DateTime(DateTime {
                date,
                hour: 10,
                minute: 30,
                second: 0,
                microsecond: 0,
            }),
            // 2024-02-01 00:00:00 UTC.
            Value::Timestamp(Timestamp {
                seconds: 1_706_745_600,
                microsecond: 0,
            }),
            Value::Text("12abc".into()),
        ]);
        let holds = |text: &str| {
            RowExpression::parse(text, "test")
                .expect("expression")
                .matches(&schema, &row)
        };
        assert!(holds("status = 'sold'"));
        assert!(holds("status = 2"));
        assert!(!holds("status = 'new'"));
        assert!(holds("tags = 'a,c'"));
        assert!(holds("tags = 5"));
        assert!(holds("day = '2024-02-01'"));
        assert!(holds("day = '2024-2-1'"));
        assert!(holds("day < '2024-02-01 00:00:01'"));
        assert!(holds("at > '2024-02-01' AND at < '2024-02-02'"));
        assert!(holds("at = '2024-02-01 10:30:00'"));
        assert!(holds("stamp >= '2024-02-01 00:00:00'"));
        assert!(holds("day LIKE '2024-02-%'"));
        // A string in a numeric comparison counts by its leading number, as in MySQL.
        assert!(holds("note = 12"));
        assert!(holds("note + 1 = 13"));
    }

    #[test]
    fn a_rule_applies_to_its_table_by_name_and_needs_one_kind() {
        let rule = ExpressionFilter::new(
            "expression-filter.r",
            "Shop",
            "Items",
            [Some("qty > 1"), None, None, None],
            false,
        )
        .expect("rule");
        assert!(rule.applies_to(&TableRef::new("shop", "ITEMS")));
        assert!(!rule.applies_to(&TableRef::new("shop", "items_2")));
        let sensitive = ExpressionFilter::new(
            "expression-filter.r",
            "Shop",
            "Items",
            [None, None, Some("qty > 1"), None],
            true,
        )
        .expect("rule");
        assert!(!sensitive.applies_to(&TableRef::new("shop", "items")));
        let none = ExpressionFilter::new("expression-filter.r", "s", "t", [None; 4], true);
        assert!(none.expect_err("no kind").reason.contains("exactly one"));
        let both = ExpressionFilter::new(
            "expression-filter.r",
            "s",
            "t",
            [Some("qty > 1"), None, None, Some("qty < 1")],
            true,
        );
        assert!(both.is_err());
    }

    #[test]
    fn date_time_literals_parse_with_offsets_and_never_panic() {
        let utc = parse_temporal("2021-01-01 04:34:56.5678").expect("plain");
        assert_eq!(parse_temporal("2021-01-01 12:34:56.5678+08:00"), Some(utc));
        assert_eq!(parse_temporal("2020-12-31 23:34:56.5678-05:00"), Some(utc));
        assert_eq!(parse_temporal("2021-01-01 04:34:56.5678Z"), Some(utc));
        for text in ["ab…cdef", "…+08:00", "+08:00", "", "9999-99-99"] {
            assert_eq!(parse_temporal(text), None, "{text}");
        }
        assert_eq!(parse_duration("-838:58:50.12345"), Some(-3_020_330_123_450));
        assert_eq!(parse_duration("1:…"), None);
    }

    #[test]
    fn leading_numbers_follow_mysql() {
        assert_eq!(leading_number("12abc"), 12.0);
        assert_eq!(leading_number("  -3.5e2x"), -350.0);
        assert_eq!(leading_number("1e"), 1.0);
        assert_eq!(leading_number("abc"), 0.0);
        assert_eq!(leading_number(""), 0.0);
    }

    #[test]
    fn unsupported_expressions_and_columns_are_refused() {
        let refused = |text: &str| {
            RowExpression::parse(text, "expression-filter.r")
                .expect_err(text)
                .to_string()
        };
        assert!(refused("SLEEP(qty) = 0").contains("SLEEP"));
        assert!(refused("qty IN (SELECT 1)").contains("not supported"));
        assert!(refused("qty >").contains("not an expression"));
        assert!(refused("LOWER(name, qty) = 'x'").contains("arguments"));
        let expression = RowExpression::parse("price > 1 AND qty > 1", "r").expect("parses");
        assert_eq!(
            expression.missing_column(&schema()).as_deref(),
            Some("price")
        );
        let rule = ExpressionFilter::new(
            "expression-filter.r",
            "s",
            "t",
            [Some("price > 1"), None, None, None],
            true,
        )
        .expect("rule");
        let reason = rule.unusable_with(&schema()).expect("unusable");
        assert!(
            reason.contains("expression-filter.r") && reason.contains("`price`"),
            "{reason}"
        );
    }

    #[test]
    fn literals_json_times_and_functions_evaluate() {
        use dm_core::{Time, Timestamp};
        let schema = TableSchema::new(
            TableRef::new("s", "t"),
            vec![
                ColumnDefinition::new("bits", ColumnType::Bit { width: 8 }, true),
                ColumnDefinition::new("doc", ColumnType::Json, true),
                ColumnDefinition::new(
                    "span",
                    ColumnType::Time {
                        fractional_digits: 5,
                    },
                    true,
                ),
                ColumnDefinition::new(
                    "stamp",
                    ColumnType::Timestamp {
                        fractional_digits: 4,
                    },
                    true,
                ),
                ColumnDefinition::new("name", ColumnType::VarChar { length: 20 }, true),
            ],
            Vec::new(),
        )
        .expect("schema");
        let row = Row(vec![
            Value::Bit(0b1111),
            Value::Json(r#"{"id": 2, "tags": ["a", "b"], "who": {"name": "x"}}"#.into()),
            Value::Time(Time {
                negative: true,
                hours: 838,
                minutes: 58,
                seconds: 50,
                microsecond: 123_450,
            }),
            // 2021-01-01 04:34:56.5678 UTC, written as 12:34:56.5678 at +08:00.
            Value::Timestamp(Timestamp {
                seconds: 1_609_475_696,
                microsecond: 567_800,
            }),
            Value::Text("Müller…".into()),
        ]);
        let holds = |text: &str| {
            RowExpression::parse(text, "test")
                .unwrap_or_else(|error| panic!("{text}: {error}"))
                .matches(&schema, &row)
        };
        assert!(holds("bits = b'1111'"));
        assert!(holds("bits = 0x0f"));
        assert!(holds(r#"doc->"$.id" = 2"#));
        assert!(holds("doc->'$.tags[1]' = 'b'"));
        assert!(holds("doc->>'$.who.name' = 'x'"));
        assert!(holds("JSON_EXTRACT(doc, '$.id') = 2"));
        assert!(!holds("doc->'$.missing' = 2"));
        assert!(holds("doc->'$.missing' IS NULL"));
        assert!(holds("span = '-838:58:50.12345'"));
        assert!(holds("span < '-838:58:50'"));
        assert!(holds("stamp = '2021-01-01 12:34:56.5678+08:00'"));
        assert!(holds("stamp = '2021-01-01 04:34:56.5678'"));
        assert!(holds("stamp < NOW()"));
        assert!(holds("stamp < CURRENT_TIMESTAMP AND stamp < CURDATE()"));
        assert!(holds(
            "name != 'Mueller' AND CHAR_LENGTH(name) = 7 AND LENGTH(name) = 10"
        ));
        assert!(holds("UPPER(name) = 'MÜLLER…'"));
        assert!(holds("CONCAT(name, '!') LIKE '%…!'"));
        assert!(holds("COALESCE(NULL, bits) = 15 AND IFNULL(NULL, 3) = 3"));
        assert!(holds("7 DIV 2 = 3 AND 7 % 2 = 1 AND ABS(-2) = 2"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any text: parsed or refused, never a panic; a parsed expression evaluates on rows
        /// with any values, NULLs included, without panicking.
        #[test]
        fn any_expression_text_is_handled(
            tokens in proptest::collection::vec(proptest::sample::select(vec![
                "qty", "name", "doc", "(", ")", "+", "-", "*", "/", "%", "DIV", "=", "<>", "<",
                ">=", "<=>", "AND", "OR", "XOR", "NOT", "IS", "NULL", "TRUE", "IN", "BETWEEN",
                "LIKE", "'a%'", "'2024-01-01 +08:00'", "'-1:2:3'", "0", "-1", "1e308", "b'101'",
                "0xff", "->", "'$.a[0]'", "'$'", "NOW()", "LENGTH(name)", "CONCAT(name, qty)",
                "COALESCE(NULL)", ",", "JSON_EXTRACT(doc, '$.x')", "'\\'",
            ]), 0..12),
            quantity in proptest::option::of(proptest::num::i64::ANY),
            name in ".{0,8}",
        ) {
            let text = tokens.join(" ");
            if let Ok(expression) = RowExpression::parse(&text, "property") {
                let schema = TableSchema::new(
                    TableRef::new("s", "t"),
                    vec![
                        ColumnDefinition::new(
                            "qty",
                            ColumnType::Integer { width: IntegerWidth::Big, unsigned: false },
                            true,
                        ),
                        ColumnDefinition::new("name", ColumnType::VarChar { length: 8 }, true),
                        ColumnDefinition::new("doc", ColumnType::Json, true),
                    ],
                    Vec::new(),
                )
                .expect("schema");
                let row = Row(vec![
                    quantity.map_or(Value::Null, Value::Int),
                    Value::Text(name.clone()),
                    Value::Json(name),
                ]);
                let _ = expression.matches(&schema, &row);
            }
        }
    }
}
