//! Compiling prompts per language: the flow's `language: { var, default }`, the voices of
//! `defaults.voices`, and texts written as a mapping of language codes to text.

use super::Compiler;
use crate::model::{Language, Prompt, Speech};
use crate::template::is_var_name;
use crate::yaml::{self, Value};

/// Longest language code (`en`, `es`, `pt-BR`, `zh-Hant-TW`).
const MAX_CODE: usize = 16;

/// Whether `code` looks like a language code: letters, digits and `-`, starting with a letter.
fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE
        && code.starts_with(|c: char| c.is_ascii_alphabetic())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Compiler<'_> {
    /// Reads `language:` and `defaults.voices`, fills `speech.languages` and remembers the
    /// languages for the texts compiled next. `None` when there is an error (reported).
    pub(super) fn languages(
        &mut self,
        language: Option<&yaml::Node>,
        voices: Option<&yaml::Node>,
        speech: &mut Speech,
    ) -> Option<()> {
        let (language, voices) = match (language, voices) {
            (None, None) => return Some(()),
            (Some(language), None) => {
                self.error(
                    language.pos,
                    "a flow with `language` needs the voice of each language in `defaults.voices`, e.g. `voices: { en: en-US-JennyNeural, es: es-ES-ElviraNeural }`",
                );
                return None;
            }
            (None, Some(voices)) => {
                self.error(
                    voices.pos,
                    "defaults.voices needs a flow-level `language: { var: lang, default: en }` naming the variable that picks the language",
                );
                return None;
            }
            (Some(language), Some(voices)) => (language, voices),
        };
        let mut codes = Vec::new();
        let mut ok = true;
        match &voices.value {
            Value::Map(pairs) if !pairs.is_empty() => {
                for (key, value) in pairs {
                    let code = key.scalar_text().unwrap_or_default();
                    if !is_code(&code) {
                        self.error(
                            key.pos,
                            format!("{code:?} is not a language code; use e.g. en, es or pt-BR"),
                        );
                        ok = false;
                        continue;
                    }
                    if codes.contains(&code) {
                        self.error(key.pos, format!("language '{code}' is listed twice"));
                        ok = false;
                        continue;
                    }
                    match self.language_voice(value, speech) {
                        Some(voice) => speech.languages.push(voice),
                        None => ok = false,
                    }
                    codes.push(code);
                }
            }
            _ => {
                self.error(
                    voices.pos,
                    "defaults.voices must be a non-empty mapping of language codes to voices",
                );
                return None;
            }
        }
        let entries = self.mapping(language, "language", &["var", "default"])?;
        let get = |key: &str| super::entry(&entries, key);
        let var = match get("var") {
            Some(n) => self.string(n, "language.var").and_then(|v| {
                if is_var_name(v) {
                    Some(v.to_owned())
                } else {
                    self.error(n.pos, format!("language.var {v:?} is not a variable name"));
                    None
                }
            }),
            None => {
                self.error(
                    language.pos,
                    "language needs 'var', the variable holding the caller's language code",
                );
                None
            }
        };
        let default = match get("default") {
            Some(n) => self
                .string(n, "language.default")
                .and_then(|d| match codes.iter().position(|c| c == d) {
                    Some(i) => Some(i),
                    None if !ok => None,
                    None => {
                        self.error(
                            n.pos,
                            format!(
                                "the default language '{d}' has no voice in defaults.voices (which lists {})",
                                codes.join(", ")
                            ),
                        );
                        None
                    }
                }),
            None => {
                self.error(
                    language.pos,
                    "language needs 'default', the language used until the variable is set",
                );
                None
            }
        };
        let (var, default) = (var?, default?);
        ok.then_some(())?;
        self.language = Some(Language {
            var,
            codes,
            default,
        });
        Some(())
    }

    /// One language's voice: a voice name, or `{ voice, speed }` (either may be left out).
    fn language_voice(
        &mut self,
        node: &yaml::Node,
        base: &Speech,
    ) -> Option<(
        switchboard_protocol::VoiceProfile,
        Option<switchboard_protocol::Speed>,
    )> {
        if let Value::Str(_) = node.value {
            return self.voice(node).map(|v| (v, base.speed));
        }
        let entries = self.mapping(node, "a language's voice", &["voice", "speed"])?;
        let mut voice = Some(base.voice.clone());
        let mut speed = Some(base.speed);
        for (key, value) in entries {
            if key == "voice" {
                voice = self.voice(value);
            } else {
                speed = self.speed(value).map(Some);
            }
        }
        Some((voice?, speed?))
    }

    /// Spoken text: a string, or (in a flow with languages) a mapping of language codes to
    /// strings that covers the default language.
    pub(super) fn text(&mut self, node: &yaml::Node, what: &str) -> Option<Prompt> {
        let Value::Map(pairs) = &node.value else {
            return self.template_text(node, what).map(Prompt::One);
        };
        let Some(language) = &self.language else {
            self.error(
                node.pos,
                format!(
                    "{what} is given per language, but the flow declares no languages; add `language: {{ var: lang, default: en }}` and `defaults.voices`"
                ),
            );
            return None;
        };
        let codes = language.codes.clone();
        let default = language.default;
        let mut texts: Vec<Option<_>> = vec![None; codes.len()];
        let mut ok = true;
        for (key, value) in pairs {
            let code = key.scalar_text().unwrap_or_default();
            let Some(i) = codes.iter().position(|c| *c == code) else {
                self.error(
                    key.pos,
                    format!(
                        "unknown language '{code}' in {what}; the flow speaks {} (defaults.voices)",
                        codes.join(", ")
                    ),
                );
                ok = false;
                continue;
            };
            if texts[i].is_some() {
                self.error(
                    key.pos,
                    format!("language '{code}' is given twice in {what}"),
                );
                ok = false;
                continue;
            }
            match self.template_text(value, &format!("{what} ({code})")) {
                Some(t) => texts[i] = Some(t),
                None => ok = false,
            }
        }
        if texts[default].is_none() && ok {
            self.error(
                node.pos,
                format!(
                    "{what} has no text in '{}', the default language; every text per language must cover it",
                    codes[default]
                ),
            );
            return None;
        }
        ok.then_some(())?;
        let fallback = texts[default].clone()?;
        Some(Prompt::PerLanguage {
            texts: texts
                .into_iter()
                .map(|t| t.unwrap_or_else(|| fallback.clone()))
                .collect(),
            default,
        })
    }
}
