//! Templates: `{{caller}}`, `{{called}}`, `{{digits}}` and `{{vars.NAME}}` in any spoken text or
//! number, parsed once at load into literal and placeholder parts.
//!
//! A fetch node's URL and headers may also read `{{env.NAME}}`, a value of the server's
//! environment allow-listed in its configuration (`fetch_env`). Such a template renders into
//! an [`EnvText`], which keeps the names and leaves the values to the runtime, so a secret
//! never enters the flow engine, its traces or anything that prints a flow.
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
    /// `{{env.NAME}}`: only where [`Template::parse_with_env`] parsed it.
    Env(String),
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
        Self::parse_inner(text, false)
    }

    /// Parses `text` where `{{env.NAME}}` is allowed too (a fetch node's URL and headers).
    pub fn parse_with_env(text: &str) -> Result<Self, String> {
        Self::parse_inner(text, true)
    }

    fn parse_inner(text: &str, allow_env: bool) -> Result<Self, String> {
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
                env if env.starts_with("env.") && allow_env && is_env_name(&env[4..]) => {
                    Source::Env(env[4..].to_owned())
                }
                env if env.starts_with("env.") && allow_env => {
                    return Err(format!(
                        "{{{{{env}}}}} is not an environment variable name; use capitals, digits and '_'"
                    ));
                }
                env if env.starts_with("env.") => {
                    return Err(format!(
                        "{{{{{env}}}}} is only allowed in a fetch node's url and headers"
                    ));
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

    /// The environment variables the template reads.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder {
                source: Source::Env(name),
                ..
            } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Renders the template, leaving `{{env.NAME}}` for the runtime; with `percent_encode`,
    /// the values of the other placeholders are percent-encoded (for a URL).
    pub fn render_env(&self, scope: &Scope<'_>, percent_encode: bool) -> EnvText {
        let mut pieces = Vec::new();
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => text.push_str(literal),
                Part::Placeholder {
                    source: Source::Env(name),
                    ..
                } => {
                    if !text.is_empty() {
                        pieces.push(EnvPiece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(EnvPiece::Env(name.clone()));
                }
                Part::Placeholder { .. } => {
                    let single = Self {
                        parts: vec![part.clone()],
                        spoken: None,
                    };
                    let value = single.render(scope);
                    if percent_encode {
                        encode_into(&value, &mut text);
                    } else {
                        text.push_str(&value);
                    }
                }
            }
        }
        if !text.is_empty() || pieces.is_empty() {
            pieces.push(EnvPiece::Text(text));
        }
        EnvText { pieces }
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
                        // Never reached: the checker allows env only in fetch URLs and headers,
                        // which render through `render_env`.
                        Source::Env(_) => "",
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
                        Source::Env(name) => {
                            f.write_str("{{env.")?;
                            f.write_str(name)?;
                            close_placeholder(f, *spell)?;
                            continue;
                        }
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

/// Text rendered by [`Template::render_env`]: literal text and the names of environment
/// variables still to fill. Its `Display` shows the names (`{{env.TOKEN}}`), never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvText {
    pieces: Vec<EnvPiece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EnvPiece {
    Text(String),
    Env(String),
}

impl EnvText {
    /// Plain text.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            pieces: vec![EnvPiece::Text(text.into())],
        }
    }

    /// The text if it reads no environment variable.
    pub fn as_plain(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [EnvPiece::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// The text with `suffix` appended.
    pub fn append(mut self, suffix: &str) -> Self {
        match self.pieces.last_mut() {
            Some(EnvPiece::Text(text)) => text.push_str(suffix),
            _ => self.pieces.push(EnvPiece::Text(suffix.to_owned())),
        }
        self
    }

    /// Fills the environment variables with `lookup`; `Err` names the first it has no value for.
    pub fn resolve<'a>(
        &'a self,
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, &'a str> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                EnvPiece::Text(text) => out.push_str(text),
                EnvPiece::Env(name) => out.push_str(lookup(name).ok_or(name.as_str())?),
            }
        }
        Ok(out)
    }
}

impl std::fmt::Display for EnvText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for piece in &self.pieces {
            match piece {
                EnvPiece::Text(text) => f.write_str(text)?,
                EnvPiece::Env(name) => write!(f, "{{{{env.{name}}}}}")?,
            }
        }
        Ok(())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_into(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// Environment variable names: capitals, digits and `_`, not starting with a digit.
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
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
    fn env_placeholders_are_left_for_the_runtime() {
        let mut vars = BTreeMap::new();
        vars.insert("acct".to_owned(), "12 34/5".to_owned());
        let t = Template::parse_with_env("https://h/{{vars.acct}}?k={{env.API_KEY}}").unwrap();
        assert_eq!(t.env_names().collect::<Vec<_>>(), ["API_KEY"]);
        let text = t.render_env(&scope(&vars), true);
        assert_eq!(text.to_string(), "https://h/12%2034%2F5?k={{env.API_KEY}}");
        assert_eq!(text.as_plain(), None);
        assert_eq!(
            text.resolve(|n| (n == "API_KEY").then_some("s3cret")),
            Ok("https://h/12%2034%2F5?k=s3cret".to_owned())
        );
        assert_eq!(text.resolve(|_| None), Err("API_KEY"));
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
        assert!(
            Template::parse("{{env.TOKEN}}")
                .unwrap_err()
                .contains("only allowed in a fetch")
        );
        assert!(Template::parse_with_env("{{env.lower}}").is_err());
        assert!(Template::parse("{{vars.9x}}").is_err());
    }
}
