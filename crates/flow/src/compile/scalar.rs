//! Scalars of a flow file: text, numbers, flags, templates, voices, speeds, repetitions,
//! patterns and time zones, each checked with a message naming the key.

use chrono_tz::Tz;
use regex::Regex;
use switchboard_protocol::{Msisdn, Repetition, Speed, Text, VoiceProfile};

use super::Compiler;
use crate::template::Template;
use crate::yaml::{self, Value};

impl Compiler<'_> {
    pub(super) fn string<'a>(&mut self, node: &'a yaml::Node, what: &str) -> Option<&'a str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, got {}", node.kind()),
                );
                None
            }
        }
    }

    pub(super) fn uint(
        &mut self,
        node: &yaml::Node,
        what: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= 0 && (min..=max).contains(&i.unsigned_abs()) => {
                Some(i.unsigned_abs())
            }
            Value::Int(i) => {
                self.error(node.pos, format!("{what} must be {min}..={max}, got {i}"));
                None
            }
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be an integer, got {}", node.kind()),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &yaml::Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be true or false, got {}", node.kind()),
                );
                None
            }
        }
    }

    /// Spoken text in one language: a template; literal text is checked against the protocol
    /// now.
    pub(super) fn template_text(&mut self, node: &yaml::Node, what: &str) -> Option<Template> {
        let raw = self.string(node, what)?;
        match Template::parse(raw) {
            Ok(template) => {
                if let Some(literal) = template.as_literal()
                    && let Err(err) = Text::new(literal)
                {
                    self.error(node.pos, format!("{what} {err}"));
                    return None;
                }
                Some(template)
            }
            Err(err) => {
                self.error(node.pos, format!("{what}: {err}"));
                None
            }
        }
    }

    /// A phone number: a template; a literal one must be E.164.
    pub(super) fn number(&mut self, node: &yaml::Node, what: &str) -> Option<Template> {
        let raw = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a phone number, got {}", node.kind()),
                );
                return None;
            }
        };
        match Template::parse(&raw) {
            Ok(template) => {
                if let Some(literal) = template.as_literal()
                    && let Err(err) = Msisdn::new(literal)
                {
                    self.error(node.pos, format!("{what}: {err}"));
                    return None;
                }
                Some(template)
            }
            Err(err) => {
                self.error(node.pos, format!("{what}: {err}"));
                None
            }
        }
    }

    pub(super) fn speed(&mut self, node: &yaml::Node) -> Option<Speed> {
        let value = match node.value {
            Value::Float(f) => f,
            Value::Int(i) => i as f64,
            _ => {
                self.error(
                    node.pos,
                    format!("speed must be a number, got {}", node.kind()),
                );
                return None;
            }
        };
        Speed::new(value)
            .map_err(|e| self.error(node.pos, format!("speed {e}")))
            .ok()
    }

    pub(super) fn voice(&mut self, node: &yaml::Node) -> Option<VoiceProfile> {
        let raw = self.string(node, "voice")?;
        VoiceProfile::new(raw)
            .map_err(|e| self.error(node.pos, format!("voice: {e}")))
            .ok()
    }

    pub(super) fn repeat(&mut self, node: &yaml::Node) -> Option<Repetition> {
        let n = self.uint(
            node,
            "repeat",
            Repetition::MIN.into(),
            Repetition::MAX.into(),
        )?;
        Repetition::new(n).ok()
    }

    pub(super) fn regex(&mut self, node: &yaml::Node, what: &str) -> Option<Regex> {
        let raw = self.string(node, what)?;
        Regex::new(&format!("^(?:{raw})$"))
            .map_err(|e| {
                let first = e.to_string().lines().last().unwrap_or_default().to_owned();
                self.error(
                    node.pos,
                    format!("{what} is not a valid regular expression: {first}"),
                );
            })
            .ok()
    }

    pub(super) fn timezone(&mut self, node: &yaml::Node) -> Option<Tz> {
        let raw = self.string(node, "timezone")?;
        raw.parse::<Tz>()
            .map_err(|_| {
                self.error(
                    node.pos,
                    format!("unknown time zone {raw:?}; use an IANA name such as Asia/Singapore or Europe/London"),
                );
            })
            .ok()
    }
}
