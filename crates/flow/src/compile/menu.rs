//! `menu` and `capture` nodes: prompts, the digits they take, retry counters and their
//! targets.

use std::collections::HashMap;

use switchboard_protocol::DigitCount;

use super::Compiler;
use crate::model::{Capture, Menu, NodeId, Speech, Target};
use crate::template::is_var_name;
use crate::yaml::{self, Value};

impl Compiler<'_> {
    pub(super) fn menu(
        &mut self,
        body: &yaml::Node,
        index: &HashMap<String, NodeId>,
        defaults: &Speech,
    ) -> Option<Menu> {
        let entries = self.mapping(
            body,
            "menu",
            &[
                "prompt",
                "reprompt",
                "invalid",
                "no_input",
                "timeout_ms",
                "digit_timeout_ms",
                "max_invalid",
                "max_no_input",
                "on_fail",
                "options",
                "voice",
                "speed",
            ],
        )?;
        let get = |key: &str| super::entry(&entries, key);
        let prompt = match get("prompt") {
            Some(n) => self.text(n, "prompt"),
            None => {
                self.error(body.pos, "menu needs a 'prompt', what the caller hears");
                None
            }
        };
        let reprompt = self.optional_text(&entries, "reprompt");
        let invalid = self.optional_text(&entries, "invalid");
        let no_input = self.optional_text(&entries, "no_input");
        let timeouts = self.timeouts(body, &entries, 10_000);
        let max_invalid = match get("max_invalid") {
            Some(n) => self.uint(n, "max_invalid", 1, 20).map(|v| v as u8),
            None => Some(3),
        };
        let max_no_input = match get("max_no_input") {
            Some(n) => self.uint(n, "max_no_input", 1, 20).map(|v| v as u8),
            None => Some(2),
        };
        let on_fail = match get("on_fail") {
            Some(n) => self.target(n, "on_fail", index),
            None => Some(Target::Hangup),
        };
        let speech = self.speech_overrides(&entries, defaults);
        let mut options = Vec::new();
        let mut options_ok = true;
        match get("options") {
            None => {
                self.error(
                    body.pos,
                    "menu needs 'options', e.g. `options: { \"1\": bookings }`",
                );
                options_ok = false;
            }
            Some(node) => {
                match &node.value {
                    Value::Map(pairs) if !pairs.is_empty() => {
                        for (key, target) in pairs {
                            let Some(digits) = key.scalar_text() else {
                                self.error(key.pos, "option keys must be keys of the phone pad");
                                options_ok = false;
                                continue;
                            };
                            if digits.is_empty()
                                || digits.len() > usize::from(DigitCount::MAX)
                                || !digits
                                    .bytes()
                                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
                            {
                                self.error(key.pos, format!("option key {digits:?} is not DTMF; use the keys 0-9, * and #"));
                                options_ok = false;
                                continue;
                            }
                            if options.iter().any(|(d, _)| *d == digits) {
                                self.error(key.pos, format!("option {digits:?} is given twice"));
                                options_ok = false;
                                continue;
                            }
                            match self.target(target, &format!("option {digits:?}"), index) {
                                Some(t) => options.push((digits, t)),
                                None => options_ok = false,
                            }
                        }
                    }
                    _ => {
                        self.error(
                            node.pos,
                            "options must be a non-empty mapping of keys to nodes",
                        );
                        options_ok = false;
                    }
                }
            }
        }
        let (timeout_ms, digit_timeout_ms) = timeouts?;
        options_ok.then_some(())?;
        Some(Menu {
            prompt: prompt?,
            reprompt: reprompt.ok()?,
            invalid: invalid.ok()?,
            no_input: no_input.ok()?,
            timeout_ms,
            digit_timeout_ms,
            max_invalid: max_invalid?,
            max_no_input: max_no_input?,
            on_fail: on_fail?,
            options,
            speech: speech?,
        })
    }

    pub(super) fn capture(
        &mut self,
        body: &yaml::Node,
        index: &HashMap<String, NodeId>,
        defaults: &Speech,
        next: Option<Target>,
    ) -> Option<Capture> {
        let entries = self.mapping(
            body,
            "capture",
            &[
                "prompt",
                "reprompt",
                "invalid",
                "var",
                "min_digits",
                "max_digits",
                "finish_on_hash",
                "pattern",
                "max_attempts",
                "timeout_ms",
                "digit_timeout_ms",
                "on_fail",
                "voice",
                "speed",
            ],
        )?;
        let get = |key: &str| super::entry(&entries, key);
        let prompt = match get("prompt") {
            Some(n) => self.text(n, "prompt"),
            None => {
                self.error(body.pos, "capture needs a 'prompt', what the caller hears");
                None
            }
        };
        let reprompt = self.optional_text(&entries, "reprompt");
        let invalid = self.optional_text(&entries, "invalid");
        let var = match get("var") {
            Some(n) => self.string(n, "var").and_then(|v| {
                if is_var_name(v) {
                    Some(v.to_owned())
                } else {
                    self.error(n.pos, format!("var {v:?} must start with a letter and hold only letters, digits and '_'"));
                    None
                }
            }),
            None => {
                self.error(body.pos, "capture needs 'var', the variable that receives the digits");
                None
            }
        };
        let max_digits = match get("max_digits") {
            Some(n) => self.uint(
                n,
                "max_digits",
                DigitCount::MIN.into(),
                DigitCount::MAX.into(),
            ),
            None => Some(DigitCount::MAX.into()),
        };
        let min_digits = match get("min_digits") {
            Some(n) => self.uint(
                n,
                "min_digits",
                DigitCount::MIN.into(),
                DigitCount::MAX.into(),
            ),
            None => Some(DigitCount::MIN.into()),
        };
        let mut digits_ok = true;
        if let (Some(min), Some(max)) = (min_digits, max_digits)
            && min > max
        {
            let pos = get("min_digits").map_or(body.pos, |n| n.pos);
            self.error(
                pos,
                format!("min_digits ({min}) must not exceed max_digits ({max})"),
            );
            digits_ok = false;
        }
        let finish_on_hash = match get("finish_on_hash") {
            Some(n) => self.boolean(n, "finish_on_hash"),
            None => Some(true),
        };
        let pattern = get("pattern").map(|n| self.regex(n, "pattern"));
        let max_attempts = match get("max_attempts") {
            Some(n) => self.uint(n, "max_attempts", 1, 20).map(|v| v as u8),
            None => Some(3),
        };
        let timeouts = self.timeouts(body, &entries, 20_000);
        let on_fail = match get("on_fail") {
            Some(n) => self.target(n, "on_fail", index),
            None => Some(Target::Hangup),
        };
        let speech = self.speech_overrides(&entries, defaults);
        let (timeout_ms, digit_timeout_ms) = timeouts?;
        digits_ok.then_some(())?;
        Some(Capture {
            prompt: prompt?,
            reprompt: reprompt.ok()?,
            invalid: invalid.ok()?,
            var: var?,
            min_digits: DigitCount::new(min_digits?).ok()?,
            max_digits: DigitCount::new(max_digits?).ok()?,
            finish_on_hash: finish_on_hash?,
            pattern: pattern.map_or(Some(None), |p| p.map(Some))?,
            max_attempts: max_attempts?,
            timeout_ms,
            digit_timeout_ms,
            speech: speech?,
            next: next?,
            on_fail: on_fail?,
        })
    }
}
