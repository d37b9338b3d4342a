//! Templates: `{{caller}}`, `{{called}}`, `{{digits}}` and `{{vars.NAME}}` in any spoken text or
//! number, parsed once at load into literal and placeholder parts.
//!
//! A placeholder may carry the `spell` filter, `{{digits|spell}}`, which separates the characters
//! with spaces so text-to-speech reads `4 8 1 5` instead of "four thousand eight hundred...".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use switchboard_protocol::Text;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// A template without placeholders, already checked as speakable: every answer that says
    /// it shares this one copy instead of rendering and checking its own.
    spoken: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder { source: Source, spell: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Caller,
    Called,
    Digits,
    Var(String),
}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The caller's number.
    pub caller: &'a str,
    /// The number called (our virtual number).
    pub called: &'a str,
    /// The digits entered last.
    pub digits: &'a str,
    /// The session's variables.
    pub vars: &'a BTreeMap<String, String>,
}

impl Template {
    /// Parses `text`; the error says what is wrong with which placeholder.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(format!(
                    "unclosed placeholder {:?}: add the closing }}}}",
                    &rest[start..]
                ));
            };
            let inner = after[..end].trim();
            let (name, filter) = match inner.split_once('|') {
                Some((name, filter)) => (name.trim(), Some(filter.trim())),
                None => (inner, None),
            };
            let spell = match filter {
                None => false,
                Some("spell") => true,
                Some(other) => {
                    return Err(format!(
                        "unknown filter {other:?} in {{{{{inner}}}}}; the only filter is spell"
                    ));
                }
            };
            let source = match name {
                "caller" => Source::Caller,
                "called" => Source::Called,
                "digits" => Source::Digits,
                var if var.starts_with("vars.") && is_var_name(&var[5..]) => {
                    Source::Var(var[5..].to_owned())
                }
                other => {
                    return Err(format!(
                        "unknown placeholder {{{{{other}}}}}; use caller, called, digits or vars.NAME"
                    ));
                }
            };
            parts.push(Part::Placeholder { source, spell });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self::of(parts))
    }

    /// A template without placeholders.
    pub fn literal(text: &str) -> Self {
        Self::of(vec![Part::Literal(text.to_owned())])
    }

    fn of(parts: Vec<Part>) -> Self {
        let mut template = Self {
            parts,
            spoken: None,
        };
        template.spoken = template.as_literal().and_then(Text::sanitize);
        template
    }

    /// The template as spoken text: shared when it has no placeholders, rendered with `scope`
    /// otherwise. `None` when nothing speakable is left (see [`Text::sanitize`]).
    pub fn speak(&self, scope: &Scope<'_>) -> Option<Text> {
        match &self.spoken {
            Some(text) => Some(text.clone()),
            None => Text::sanitize_owned(self.render(scope)),
        }
    }

    /// The text if the template has no placeholders.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// The variables the template reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder {
                source: Source::Var(name),
                ..
            } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Renders the template; unset variables render as nothing.
    pub fn render(&self, scope: &Scope<'_>) -> String {
        if let Some(text) = self.as_literal() {
            return text.to_owned();
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder { source, spell } => {
                    let value = match source {
                        Source::Caller => scope.caller,
                        Source::Called => scope.called,
                        Source::Digits => scope.digits,
                        Source::Var(name) => scope.vars.get(name).map_or("", String::as_str),
                    };
                    if *spell {
                        for (i, c) in value.chars().enumerate() {
                            if i > 0 {
                                out.push(' ');
                            }
                            let _ = write!(out, "{c}");
                        }
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// The template as written: literal text with its placeholders (`{{vars.guests}}`), for tools
/// that show a flow (`switchboard flow graph`).
impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Placeholder { source, spell } => {
                    let name = match source {
                        Source::Caller => "caller",
                        Source::Called => "called",
                        Source::Digits => "digits",
                        Source::Var(name) => {
                            f.write_str("{{vars.")?;
                            f.write_str(name)?;
                            close_placeholder(f, *spell)?;
                            continue;
                        }
                    };
                    f.write_str("{{")?;
                    f.write_str(name)?;
                    close_placeholder(f, *spell)?;
                }
            }
        }
        Ok(())
    }
}

/// Closes a placeholder written by [`Template`]'s `Display`, with its filter.
fn close_placeholder(f: &mut std::fmt::Formatter<'_>, spell: bool) -> std::fmt::Result {
    f.write_str(if spell { "|spell}}" } else { "}}" })
}

/// Variable names: ASCII letters, digits and `_`, starting with a letter, at most 64 long.
pub fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_prompt_is_spoken_from_one_shared_copy_and_a_templated_one_is_rendered() {
        let vars = BTreeMap::from([("guests".to_owned(), "4".to_owned())]);
        let scope = Scope {
            caller: "+6591234567",
            called: "+6568888888",
            digits: "",
            vars: &vars,
        };
        let fixed = Template::parse("Welcome to the restaurant.").unwrap();
        let (a, b) = (fixed.speak(&scope).unwrap(), fixed.speak(&scope).unwrap());
        assert_eq!(a.as_str(), "Welcome to the restaurant.");
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "one copy, shared");
        let templated = Template::parse("A table for {{vars.guests}}.").unwrap();
        assert_eq!(templated.speak(&scope).unwrap().as_str(), "A table for 4.");
        assert_eq!(Template::parse("").unwrap().speak(&scope), None);
        assert_eq!(
            Template::parse("bell\u{7}")
                .unwrap()
                .speak(&scope)
                .unwrap()
                .as_str(),
            "bell "
        );
    }

    #[test]
    fn a_template_displays_as_written() {
        let text = "Hello {{caller}}, {{vars.guests}} guests, code {{digits|spell}}.";
        assert_eq!(Template::parse(text).unwrap().to_string(), text);
    }

    fn scope(vars: &BTreeMap<String, String>) -> Scope<'_> {
        Scope {
            caller: "+6591110000",
            called: "+6568888888",
            digits: "4815",
            vars,
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let mut vars = BTreeMap::new();
        vars.insert("name".to_owned(), "Ada".to_owned());
        let t = Template::parse("Hi {{ vars.name }}, you called {{called}} from {{caller}}; you entered {{digits|spell}}.{{vars.unset}}").unwrap();
        assert_eq!(
            t.render(&scope(&vars)),
            "Hi Ada, you called +6568888888 from +6591110000; you entered 4 8 1 5."
        );
        assert_eq!(t.vars().collect::<Vec<_>>(), ["name", "unset"]);
    }

    #[test]
    fn literal_fast_path() {
        let t = Template::parse("plain text").unwrap();
        assert_eq!(t.as_literal(), Some("plain text"));
        assert_eq!(t.render(&scope(&BTreeMap::new())), "plain text");
    }

    proptest::proptest! {
        /// Text without `{{` is a literal and renders as itself.
        #[test]
        fn text_without_placeholders_renders_as_itself(text in "[^{]*") {
            let t = Template::parse(&text).unwrap();
            proptest::prop_assert_eq!(t.as_literal(), Some(text.as_str()));
            proptest::prop_assert_eq!(t.render(&scope(&BTreeMap::new())), text);
        }

        /// A variable renders as its value, and `spell` puts one space between characters.
        #[test]
        fn variables_render_as_their_values(value in "[0-9A-Za-z#*]{0,20}") {
            let mut vars = BTreeMap::new();
            vars.insert("v".to_owned(), value.clone());
            let plain = Template::parse("<{{vars.v}}>").unwrap();
            proptest::prop_assert_eq!(plain.render(&scope(&vars)), format!("<{value}>"));
            let spelled = Template::parse("{{ vars.v | spell }}").unwrap();
            let expected: Vec<String> = value.chars().map(String::from).collect();
            proptest::prop_assert_eq!(spelled.render(&scope(&vars)), expected.join(" "));
        }
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert!(
            Template::parse("{{callr}}")
                .unwrap_err()
                .contains("unknown placeholder {{callr}}")
        );
        assert!(
            Template::parse("{{caller")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            Template::parse("{{digits|upper}}")
                .unwrap_err()
                .contains("unknown filter")
        );
        assert!(Template::parse("{{vars.}}").is_err());
        assert!(Template::parse("{{vars.9x}}").is_err());
    }
}
