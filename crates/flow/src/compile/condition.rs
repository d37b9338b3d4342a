//! Branch conditions: variable tests, business hours (`time`, `days`) in a time zone, and
//! `all` / `any` / `not`.

use chrono_tz::Tz;

use super::Compiler;
use crate::model::{Condition, VarTest};
use crate::template::is_var_name;
use crate::yaml::{self, Value};

impl Compiler<'_> {
    pub(super) fn condition(&mut self, node: &yaml::Node, flow_tz: Tz) -> Option<Condition> {
        let entries = self.mapping(
            node,
            "a condition",
            &[
                "time",
                "days",
                "tz",
                "caller_prefix",
                "var",
                "equals",
                "not_equals",
                "in",
                "matches",
                "gt",
                "lt",
                "gte",
                "lte",
                "is_set",
                "all",
                "any",
                "not",
            ],
        )?;
        let get = |key: &str| super::entry(&entries, key);
        let tz = match get("tz") {
            Some(n) => self.timezone(n)?,
            None => flow_tz,
        };
        let mut all = Vec::new();
        let mut ok = true;
        let var_tests = [
            "equals",
            "not_equals",
            "in",
            "matches",
            "gt",
            "lt",
            "gte",
            "lte",
            "is_set",
        ];
        let tests: Vec<&str> = entries
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| var_tests.contains(k))
            .collect();
        match (get("var"), tests.as_slice()) {
            (Some(_), []) => {
                self.error(
                    node.pos,
                    format!("'var' needs a comparison: one of {}", var_tests.join(", ")),
                );
                ok = false;
            }
            (None, [first, ..]) => {
                self.error(
                    node.pos,
                    format!("'{first}' compares a variable; name it with `var: NAME`"),
                );
                ok = false;
            }
            (Some(_), [_, second, ..]) => {
                self.error(node.pos, format!("one comparison per condition ('{second}' is one too many); use `all:` to combine"));
                ok = false;
            }
            _ => {}
        }
        for (key, value) in &entries {
            let cond = match *key {
                "time" => self.time_range(value, tz),
                "days" => self.days(value, tz),
                "caller_prefix" => {
                    let prefixes: Vec<&yaml::Node> = match &value.value {
                        Value::Seq(items) => items.iter().collect(),
                        _ => vec![value],
                    };
                    let mut out = Vec::new();
                    for p in prefixes {
                        match p.scalar_text() {
                            Some(t)
                                if !t.is_empty()
                                    && t.trim_start_matches('+')
                                        .bytes()
                                        .all(|b| b.is_ascii_digit()) =>
                            {
                                out.push(t.trim_start_matches('+').to_owned());
                            }
                            _ => {
                                self.error(p.pos, "caller_prefix must be digits, optionally after '+', e.g. \"+65\"");
                                ok = false;
                            }
                        }
                    }
                    Some(Condition::CallerPrefix(out))
                }
                "var" => {
                    let name = self.string(value, "var");
                    let test = tests.first().and_then(|t| {
                        let n = get(t)?;
                        self.var_test(t, n)
                    });
                    match (name, test) {
                        (Some(name), Some(test)) if is_var_name(name) => Some(Condition::Var {
                            name: name.to_owned(),
                            test,
                        }),
                        (Some(name), _) if !is_var_name(name) => {
                            self.error(value.pos, format!("var {name:?} is not a variable name"));
                            None
                        }
                        _ => None,
                    }
                }
                "all" | "any" => {
                    let Value::Seq(items) = &value.value else {
                        self.error(value.pos, format!("'{key}' must be a list of conditions"));
                        ok = false;
                        continue;
                    };
                    let subs: Vec<Option<Condition>> =
                        items.iter().map(|i| self.condition(i, tz)).collect();
                    if subs.iter().any(Option::is_none) {
                        None
                    } else {
                        let subs = subs.into_iter().flatten().collect();
                        Some(if *key == "all" {
                            Condition::All(subs)
                        } else {
                            Condition::Any(subs)
                        })
                    }
                }
                "not" => self
                    .condition(value, tz)
                    .map(|c| Condition::Not(Box::new(c))),
                // tz and comparisons are consumed above.
                _ => continue,
            };
            match cond {
                Some(c) => all.push(c),
                None => ok = false,
            }
        }
        if all.is_empty() && ok {
            self.error(
                node.pos,
                "an empty condition; give time, days, caller_prefix, var, all, any or not",
            );
            return None;
        }
        ok.then_some(())?;
        Some(if all.len() == 1 {
            all.remove(0)
        } else {
            Condition::All(all)
        })
    }

    pub(super) fn var_test(&mut self, test: &str, node: &yaml::Node) -> Option<VarTest> {
        let number = |c: &mut Self| match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => {
                c.error(
                    node.pos,
                    format!(
                        "'{test}' compares numbers; give a number, got {}",
                        node.kind()
                    ),
                );
                None
            }
        };
        match test {
            "equals" | "not_equals" => {
                let Some(text) = node.scalar_text() else {
                    self.error(
                        node.pos,
                        format!("'{test}' needs a value, got {}", node.kind()),
                    );
                    return None;
                };
                Some(if test == "equals" {
                    VarTest::Equals(text)
                } else {
                    VarTest::NotEquals(text)
                })
            }
            "in" => {
                let Value::Seq(items) = &node.value else {
                    self.error(node.pos, "'in' needs a list of values");
                    return None;
                };
                Some(VarTest::In(
                    items.iter().filter_map(yaml::Node::scalar_text).collect(),
                ))
            }
            "matches" => self.regex(node, "matches").map(VarTest::Matches),
            "gt" => number(self).map(VarTest::Gt),
            "lt" => number(self).map(VarTest::Lt),
            "gte" => number(self).map(VarTest::Gte),
            "lte" => number(self).map(VarTest::Lte),
            _ => self.boolean(node, "is_set").map(VarTest::IsSet),
        }
    }

    pub(super) fn time_range(&mut self, node: &yaml::Node, tz: Tz) -> Option<Condition> {
        let raw = self.string(node, "time")?;
        let parse = |s: &str| -> Option<u16> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            // The minutes only once the hour is in range: an hour such as 9999 would overflow.
            if h > 24 || m >= 60 {
                return None;
            }
            let minutes = h * 60 + m;
            (minutes <= 1440).then_some(minutes)
        };
        match raw
            .split_once('-')
            .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
        {
            Some((from, to)) if from != to => Some(Condition::Time { from, to, tz }),
            _ => {
                self.error(node.pos, format!("time {raw:?} must be a range HH:MM-HH:MM such as \"09:00-17:30\" (it may wrap past midnight)"));
                None
            }
        }
    }

    pub(super) fn days(&mut self, node: &yaml::Node, tz: Tz) -> Option<Condition> {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        const FULL: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        // Exactly a short or a full English name: "monkey" is not Monday.
        let day = |s: &str| {
            let s = s.trim().to_ascii_lowercase();
            NAMES
                .iter()
                .position(|d| *d == s)
                .or_else(|| FULL.iter().position(|d| *d == s))
        };
        let parts: Vec<String> = match &node.value {
            Value::Str(s) => s.split(',').map(str::to_owned).collect(),
            // A non-scalar item becomes "", which names no day and is reported below.
            Value::Seq(items) => items
                .iter()
                .map(|item| item.scalar_text().unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        };
        let mut mask = 0u8;
        for part in &parts {
            let range = match part.split_once('-') {
                Some((a, b)) => day(a).zip(day(b)),
                None => day(part).map(|d| (d, d)),
            };
            let Some((a, b)) = range else {
                mask = 0;
                break;
            };
            let mut d = a;
            loop {
                mask |= 1 << d;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        if mask == 0 {
            self.error(
                node.pos,
                "days must name weekdays (mon..sun or monday..sunday), e.g. mon-fri, \"sat,sun\" or [mon, wed]",
            );
            return None;
        }
        Some(Condition::Days { mask, tz })
    }
}
