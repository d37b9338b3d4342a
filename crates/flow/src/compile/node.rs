//! One node: its kind (exactly one of the kind keys), the keys that kind allows, and the
//! node kinds simple enough to compile here (say, play, transfer, branch, set); the others
//! have their own modules.

use std::collections::HashMap;

use chrono_tz::Tz;
use switchboard_protocol::FileUrl;

use super::{Compiler, Entries, entry as get};
use crate::model::{
    Branch, NodeId, NodeKind, PlayNode, Prompt, SayNode, SetNode, Speech, Target, Transfer,
};
use crate::template::{Template, is_var_name};
use crate::yaml::{self, Value};

/// The kinds of node, each named by the key that makes a node of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Menu,
    Say,
    Play,
    Transfer,
    Capture,
    Branch,
    Set,
    Split,
    Subflow,
    Fetch,
}

impl Kind {
    /// Every kind, in the order messages list them.
    const ALL: [Kind; 10] = [
        Kind::Menu,
        Kind::Say,
        Kind::Play,
        Kind::Transfer,
        Kind::Capture,
        Kind::Branch,
        Kind::Set,
        Kind::Split,
        Kind::Subflow,
        Kind::Fetch,
    ];

    /// The key that gives a node this kind.
    pub(super) fn key(self) -> &'static str {
        match self {
            Kind::Menu => "menu",
            Kind::Say => "say",
            Kind::Play => "play",
            Kind::Transfer => "transfer",
            Kind::Capture => "capture",
            Kind::Branch => "branch",
            Kind::Set => "set",
            Kind::Split => "split",
            Kind::Subflow => "subflow",
            Kind::Fetch => "fetch",
        }
    }

    fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The keys a node of this kind may have (its kind key included).
    fn allowed_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Menu => &["menu", "description"],
            Kind::Say => &["say", "next", "voice", "speed", "repeat", "description"],
            Kind::Play => &["play", "next", "repeat", "description"],
            Kind::Transfer => &[
                "transfer",
                "next",
                "on_busy",
                "on_no_answer",
                "on_error",
                "description",
            ],
            Kind::Capture => &["capture", "next", "description"],
            Kind::Branch => &["branch", "default", "description"],
            Kind::Set => &["set", "next", "description"],
            Kind::Split => &["split", "description"],
            Kind::Subflow => &["subflow", "next", "description"],
            Kind::Fetch => &[
                "fetch",
                "next",
                "on_error",
                "on_timeout",
                "cases",
                "description",
            ],
        }
    }

    /// `menu, say, ...`, for messages.
    fn listed() -> String {
        Kind::ALL.map(Kind::key).join(", ")
    }
}

impl Compiler<'_> {
    pub(super) fn node_kind(
        &mut self,
        value: &yaml::Node,
        index: &HashMap<String, NodeId>,
        defaults: &Speech,
        tz: Tz,
    ) -> Option<NodeKind> {
        let kind = self.kind_of(value)?;
        let entries = self.mapping(
            value,
            &format!("a {} node", kind.key()),
            kind.allowed_keys(),
        )?;
        let body = get(&entries, kind.key())?;
        let next = match get(&entries, "next") {
            Some(n) => self.target(n, "next", index),
            None => Some(Target::Hangup),
        };
        match kind {
            Kind::Menu => self.menu(body, index, defaults).map(NodeKind::Menu),
            Kind::Say => self.say(body, &entries, defaults, next),
            Kind::Play => self.play(body, &entries, next),
            Kind::Transfer => self.transfer(body, &entries, index, next),
            Kind::Capture => self
                .capture(body, index, defaults, next)
                .map(NodeKind::Capture),
            Kind::Branch => self.branch(value, body, &entries, index, tz),
            Kind::Set => self.set(body, next),
            Kind::Split => self.split(body, index).map(NodeKind::Split),
            Kind::Subflow => self.subflow(body, next).map(NodeKind::Subflow),
            Kind::Fetch => self
                .fetch_node(body, &entries, index, next, tz)
                .map(|f| NodeKind::Fetch(Box::new(f))),
        }
    }

    /// The node's one kind, from its keys.
    fn kind_of(&mut self, value: &yaml::Node) -> Option<Kind> {
        let Value::Map(pairs) = &value.value else {
            self.error(
                value.pos,
                format!(
                    "a node must be a mapping with one of {}, got {}",
                    Kind::listed(),
                    value.kind()
                ),
            );
            return None;
        };
        let kinds: Vec<Kind> = pairs
            .iter()
            .filter_map(|(k, _)| k.as_str().and_then(Kind::from_key))
            .collect();
        match kinds.as_slice() {
            [one] => Some(*one),
            [] => {
                self.error(
                    value.pos,
                    format!("the node has no kind; give it one of {}", Kind::listed()),
                );
                None
            }
            many => {
                let many: Vec<&str> = many.iter().map(|k| k.key()).collect();
                self.error(
                    value.pos,
                    format!(
                        "the node has several kinds ({}); split it into one node per kind",
                        many.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn say(
        &mut self,
        body: &yaml::Node,
        entries: &Entries<'_>,
        defaults: &Speech,
        next: Option<Target>,
    ) -> Option<NodeKind> {
        // Every key is checked before giving up, so all of a node's errors are reported.
        let text = self.text(body, "say");
        let speech = self.speech_overrides(entries, defaults);
        let repeat = get(entries, "repeat").map(|r| self.repeat(r));
        Some(NodeKind::Say(SayNode {
            text: text?,
            repeat: repeat.map_or(Some(None), |r| r.map(Some))?,
            speech: speech?,
            next: next?,
        }))
    }

    fn play(
        &mut self,
        body: &yaml::Node,
        entries: &Entries<'_>,
        next: Option<Target>,
    ) -> Option<NodeKind> {
        let url = self.string(body, "play").and_then(|u| {
            FileUrl::new(u)
                .map_err(|e| self.error(body.pos, format!("play: {e}")))
                .ok()
        });
        let repeat = get(entries, "repeat").map(|r| self.repeat(r));
        Some(NodeKind::Play(PlayNode {
            url: url?,
            repeat: repeat.map_or(Some(None), |r| r.map(Some))?,
            next: next?,
        }))
    }

    fn transfer(
        &mut self,
        body: &yaml::Node,
        entries: &Entries<'_>,
        index: &HashMap<String, NodeId>,
        next: Option<Target>,
    ) -> Option<NodeKind> {
        let t = self.mapping(body, "transfer", &["to", "from", "record"])?;
        let to = match get(&t, "to") {
            Some(n) => self.number(n, "transfer.to"),
            None => {
                self.error(
                    body.pos,
                    "transfer needs 'to', the number to connect the caller to",
                );
                None
            }
        };
        let from = get(&t, "from").map(|n| self.number(n, "transfer.from"));
        let record = match get(&t, "record") {
            Some(n) => self.boolean(n, "transfer.record"),
            None => Some(false),
        };
        let on = |c: &mut Self, key: &str| match get(entries, key) {
            Some(n) => c.target(n, key, index),
            None => next,
        };
        let on_busy = on(self, "on_busy");
        let on_no_answer = on(self, "on_no_answer");
        let on_error = on(self, "on_error");
        Some(NodeKind::Transfer(Transfer {
            to: to?,
            from: from.map_or(Some(None), |f| f.map(Some))?,
            record: record?,
            next: next?,
            on_busy: on_busy?,
            on_no_answer: on_no_answer?,
            on_error: on_error?,
        }))
    }

    fn branch(
        &mut self,
        value: &yaml::Node,
        body: &yaml::Node,
        entries: &Entries<'_>,
        index: &HashMap<String, NodeId>,
        tz: Tz,
    ) -> Option<NodeKind> {
        let default = match get(entries, "default") {
            Some(n) => self.target(n, "default", index),
            None => {
                self.error(
                    value.pos,
                    "a branch needs a 'default' target, taken when no rule matches",
                );
                None
            }
        };
        let Value::Seq(items) = &body.value else {
            self.error(
                body.pos,
                format!(
                    "branch must be a list of rules (`- when: ...` / `goto: ...`), got {}",
                    body.kind()
                ),
            );
            return None;
        };
        let mut rules = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(rule) = self.mapping(item, "a branch rule", &["when", "goto"]) else {
                ok = false;
                continue;
            };
            let (Some(when), Some(goto)) = (get(&rule, "when"), get(&rule, "goto")) else {
                self.error(item.pos, "a branch rule needs both 'when' and 'goto'");
                ok = false;
                continue;
            };
            let cond = self.condition(when, tz);
            let target = self.target(goto, "goto", index);
            match (cond, target) {
                (Some(c), Some(t)) => rules.push((c, t)),
                _ => ok = false,
            }
        }
        ok.then_some(())?;
        Some(NodeKind::Branch(Branch {
            rules,
            default: default?,
        }))
    }

    fn set(&mut self, body: &yaml::Node, next: Option<Target>) -> Option<NodeKind> {
        let Value::Map(pairs) = &body.value else {
            self.error(
                body.pos,
                format!(
                    "set must be a mapping of variable names to values, got {}",
                    body.kind()
                ),
            );
            return None;
        };
        let mut vars = Vec::new();
        let mut ok = true;
        for (key, value) in pairs {
            let name = key.scalar_text().unwrap_or_default();
            if !is_var_name(&name) {
                self.error(key.pos, format!("variable name {name:?} must start with a letter and hold only letters, digits and '_'"));
                ok = false;
                continue;
            }
            let raw = match value.scalar_text() {
                Some(raw) if !matches!(value.value, Value::Null) => raw,
                _ => {
                    self.error(
                        value.pos,
                        format!(
                            "the value of '{name}' must be text or a number, got {}",
                            value.kind()
                        ),
                    );
                    ok = false;
                    continue;
                }
            };
            match Template::parse(&raw) {
                Ok(t) => vars.push((name, t)),
                Err(e) => {
                    self.error(value.pos, format!("{name}: {e}"));
                    ok = false;
                }
            }
        }
        ok.then_some(())?;
        Some(NodeKind::Set(SetNode { vars, next: next? }))
    }

    pub(super) fn speech_overrides(
        &mut self,
        entries: &Entries<'_>,
        defaults: &Speech,
    ) -> Option<Speech> {
        let mut speech = defaults.clone();
        let mut ok = true;
        for (key, value) in entries {
            match *key {
                "voice" => match self.voice(value) {
                    Some(voice) => {
                        // A node's own voice speaks every language.
                        for (v, _) in &mut speech.languages {
                            v.clone_from(&voice);
                        }
                        speech.voice = voice;
                    }
                    None => ok = false,
                },
                "speed" => match self.speed(value) {
                    Some(speed) => {
                        for (_, s) in &mut speech.languages {
                            *s = Some(speed);
                        }
                        speech.speed = Some(speed);
                    }
                    None => ok = false,
                },
                _ => {}
            }
        }
        ok.then_some(speech)
    }

    pub(super) fn timeouts(
        &mut self,
        body: &yaml::Node,
        entries: &Entries<'_>,
        default_timeout: u32,
    ) -> Option<(u32, Option<u32>)> {
        let get = |key: &str| get(entries, key);
        let timeout = match get("timeout_ms") {
            Some(n) => self.uint(n, "timeout_ms", 1000, 600_000).map(|t| t as u32),
            None => Some(default_timeout),
        };
        let digit = get("digit_timeout_ms").map(|n| {
            self.uint(n, "digit_timeout_ms", 500, 600_000)
                .map(|d| d as u32)
        });
        let (timeout, digit) = (timeout?, digit.map_or(Some(None), |d| d.map(Some))?);
        if let Some(d) = digit
            && d >= timeout
        {
            let pos = get("digit_timeout_ms").map_or(body.pos, |n| n.pos);
            self.error(
                pos,
                format!("digit_timeout_ms ({d}) must be less than timeout_ms ({timeout})"),
            );
            return None;
        }
        Some((timeout, digit))
    }

    pub(super) fn optional_text(
        &mut self,
        entries: &Entries<'_>,
        key: &str,
    ) -> Result<Option<Prompt>, ()> {
        match entries.iter().find(|(k, _)| *k == key) {
            Some((_, n)) => self.text(n, key).map(Some).ok_or(()),
            None => Ok(None),
        }
    }
}
