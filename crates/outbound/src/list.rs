//! A campaign's call list: CSV with a header line, one callee per row.
//!
//! * `number` (required): the callee, E.164 (`+` and 8 to 15 digits; spaces, dashes, dots and
//!   parentheses are ignored).
//! * `timezone` (optional): the callee's IANA time zone (`Europe/London`), for the calling
//!   windows. Without it, the zone of the number's country when the country has one, else the
//!   campaign's default zone.
//! * every other column is a variable of the row's session (`{{vars.name}}` in the flow);
//!   names are letters, digits and `_`.
//!
//! The whole list is checked before any call is placed, and every problem is reported with its
//! line number (a missing column, a bad number, a number listed twice, a row with the wrong
//! number of fields, an unknown time zone), so a list is either dialled whole or not at all.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Most rows in one list.
pub const MAX_ROWS: usize = 100_000;

/// One callee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The line of the file it came from (1 is the header).
    pub line: usize,
    /// E.164 with the `+`.
    pub number: String,
    /// The callee's time zone.
    pub timezone: String,
    /// The row's variables, by column name.
    pub vars: BTreeMap<String, String>,
}

/// One problem of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The line (1 is the header).
    pub line: usize,
    /// The column, when one is at fault.
    pub column: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}: column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// A list that cannot be dialled: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ListError {
    /// Oldest line first.
    pub problems: Vec<Problem>,
}

/// Parses and checks a list; `default_zone` is used for rows whose zone cannot be told from
/// the number (and when `None`, such rows are problems).
pub fn parse(text: &str, default_zone: Option<Tz>) -> Result<Vec<Row>, ListError> {
    let mut problems = Vec::new();
    let mut records = records(text, &mut problems).into_iter();
    let Some((_, header)) = records.next() else {
        return Err(ListError {
            problems: vec![problem(
                1,
                None,
                "the file is empty; the first line must name the columns, e.g. number,name",
            )],
        });
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let Some(number_at) = header.iter().position(|h| h == "number") else {
        problems.push(problem(
            1,
            Some("number"),
            &format!(
                "missing column: the header {:?} has no `number` column (the callee, E.164)",
                header.join(",")
            ),
        ));
        return Err(ListError { problems });
    };
    let zone_at = header.iter().position(|h| h == "timezone");
    for (i, name) in header.iter().enumerate() {
        if Some(i) != zone_at && i != number_at && !valid_var(name) {
            problems.push(problem(
                1,
                Some(name),
                "a column name must be letters, digits and _ (it becomes a variable)",
            ));
        }
        if header[..i].contains(name) {
            problems.push(problem(1, Some(name), "the column is named twice"));
        }
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, fields) in records {
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        if fields.len() != header.len() {
            problems.push(problem(
                line,
                None,
                &format!(
                    "{} fields, but the header has {} columns",
                    fields.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let number = match normalize(&fields[number_at]) {
            Ok(number) => number,
            Err(why) => {
                problems.push(problem(line, Some("number"), &why));
                continue;
            }
        };
        if let Some(first) = seen.get(&number) {
            problems.push(problem(
                line,
                Some("number"),
                &format!("duplicate row: {number} is already on line {first}"),
            ));
            continue;
        }
        seen.insert(number.clone(), line);
        let zone = match zone_at
            .map(|at| fields[at].trim())
            .filter(|z| !z.is_empty())
        {
            Some(name) => match name.parse::<Tz>() {
                Ok(zone) => zone,
                Err(_) => {
                    problems.push(problem(
                        line,
                        Some("timezone"),
                        &format!("{name:?} is not an IANA time zone (e.g. Europe/London)"),
                    ));
                    continue;
                }
            },
            None => match zone_of(&number).or(default_zone) {
                Some(zone) => zone,
                None => {
                    problems.push(problem(
                        line,
                        Some("timezone"),
                        &format!(
                            "the time zone of {number} cannot be told from its country; add a \
                             timezone column or give the campaign a default time zone"
                        ),
                    ));
                    continue;
                }
            },
        };
        let vars = header
            .iter()
            .zip(&fields)
            .enumerate()
            .filter(|(i, _)| *i != number_at && Some(*i) != zone_at)
            .map(|(_, (name, value))| (name.clone(), value.trim().to_owned()))
            .collect();
        rows.push(Row {
            line,
            number,
            timezone: zone.name().to_owned(),
            vars,
        });
    }
    if rows.len() > MAX_ROWS {
        problems.push(problem(
            1,
            None,
            &format!(
                "{} rows; a campaign has at most {MAX_ROWS}: split the list",
                rows.len()
            ),
        ));
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(problem(2, None, "the list has no rows"));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(ListError { problems })
    }
}

fn problem(line: usize, column: Option<&str>, message: &str) -> Problem {
    Problem {
        line,
        column: column.map(str::to_owned),
        message: message.to_owned(),
    }
}

fn valid_var(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A number as E.164 with the `+`, or why it is not one.
pub fn normalize(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix('+') else {
        return Err(format!(
            "bad number {trimmed:?}: write it in E.164 with the country code, e.g. +6591234567"
        ));
    };
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !(8..=15).contains(&digits.len())
        || digits.starts_with('0')
    {
        return Err(format!(
            "bad number {trimmed:?}: E.164 is + and 8 to 15 digits, the country code first \
             (never 0), e.g. +6591234567"
        ));
    }
    Ok(format!("+{digits}"))
}

/// Countries with one time zone, by calling code (longest codes first where they overlap).
const COUNTRY_ZONES: [(&str, Tz); 22] = [
    ("+852", Tz::Asia__Hong_Kong),
    ("+353", Tz::Europe__Dublin),
    ("+351", Tz::Europe__Lisbon),
    ("+971", Tz::Asia__Dubai),
    ("+966", Tz::Asia__Riyadh),
    ("+65", Tz::Asia__Singapore),
    ("+60", Tz::Asia__Kuala_Lumpur),
    ("+63", Tz::Asia__Manila),
    ("+66", Tz::Asia__Bangkok),
    ("+81", Tz::Asia__Tokyo),
    ("+82", Tz::Asia__Seoul),
    ("+91", Tz::Asia__Kolkata),
    ("+44", Tz::Europe__London),
    ("+49", Tz::Europe__Berlin),
    ("+33", Tz::Europe__Paris),
    ("+34", Tz::Europe__Madrid),
    ("+39", Tz::Europe__Rome),
    ("+31", Tz::Europe__Amsterdam),
    ("+32", Tz::Europe__Brussels),
    ("+41", Tz::Europe__Zurich),
    ("+46", Tz::Europe__Stockholm),
    ("+64", Tz::Pacific__Auckland),
];

/// The time zone of a number's country, when the country has one (not +1, +7, +61, +55 ...).
pub fn zone_of(number: &str) -> Option<Tz> {
    COUNTRY_ZONES
        .iter()
        .find(|(code, _)| number.starts_with(code))
        .map(|(_, zone)| *zone)
}

/// Splits CSV text into records with the line each starts on: commas, `"` quoting (`""` is a
/// quote), LF or CRLF line ends, newlines inside quotes.
fn records(text: &str, problems: &mut Vec<Problem>) -> Vec<(usize, Vec<String>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                out.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        problems.push(problem(start, None, "a quoted field is not closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_list_gives_rows_with_zones_and_variables() {
        let text = "number,name,when,timezone\n\
                    +65 9123 4567,Ana,\"Tue, 10:00\",\n\
                    +447700900123,Ben,Wed 09:30,Europe/London\r\n\
                    +12125550100,Cy,Thu,America/New_York\n";
        let rows = parse(text, None).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].number, "+6591234567");
        assert_eq!(rows[0].timezone, "Asia/Singapore");
        assert_eq!(rows[0].vars["when"], "Tue, 10:00");
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[2].timezone, "America/New_York");
        assert!(!rows[1].vars.contains_key("timezone"));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "number,name\n+6591234567,Ana\n12ab,Ben\n+6591234567,Ana again\n+1212555,x,y\n+12125550100,Cy\n";
        let err = parse(text, None).unwrap_err();
        let lines: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("line 3: column number: bad number \"12ab\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1]
                .contains("line 4: column number: duplicate row: +6591234567 is already on line 2"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("line 5: 3 fields, but the header has 2 columns"));
        assert!(
            lines[3].starts_with("line 6: column timezone:"),
            "{}",
            lines[3]
        );
        // With a default zone, the +1 number is fine.
        let err = parse(text, Some(Tz::America__Chicago)).unwrap_err();
        assert_eq!(err.problems.len(), 3);
    }

    #[test]
    fn numbers_are_e164() {
        assert_eq!(normalize(" +65 (9123) 45-67 ").unwrap(), "+6591234567");
        for bad in [
            "6591234567",
            "+0123456789",
            "+65912",
            "+65912345678901234",
            "+65 91x3 4567",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_number_column_is_refused_on_line_1() {
        let err = parse("phone,name\n+6591234567,Ana\n", None).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].line, 1);
        assert!(err.to_string().contains("missing column"), "{err}");
        assert!(parse("", None).unwrap_err().to_string().contains("empty"));
        assert!(
            parse("number\n", None)
                .unwrap_err()
                .to_string()
                .contains("no rows")
        );
    }

    #[test]
    fn bad_column_names_and_zones_are_refused() {
        let err = parse(
            "number,first name,timezone\n+6591234567,Ana,Mars/Base\n",
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 1: column first name:"), "{text}");
        assert!(
            text.contains("line 2: column timezone: \"Mars/Base\""),
            "{text}"
        );
    }
}
